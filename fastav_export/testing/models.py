"""The models tests and benchmarks run on: the tiny seed models (and their engines), and the
mid-size dims of the CPU benchmarks."""

from __future__ import annotations

import functools

import torch

from ..contract.dims import DecoderDims
from ..contract.precision import TORCH_DTYPES
from ..models import get_model_spec

# Mid-size random Qwen2 of every CPU benchmark: big enough that attention and MLP dominate.
MID_SIZE = DecoderDims(hidden_size=512, intermediate_size=1536, num_layers=8, num_heads=8, num_kv_heads=2,
                       vocab_size=1024)

TINY_MODELS = ("videollama2-tiny", "video-salmonn2-tiny")


@functools.cache
def tiny_model(name: str, seed: int = 0, attn_implementation: str = "sdpa", dtype=torch.float32):
    """A tiny seed model with seeded random weights, as its family loads it (Qwen2ForCausalLM, or the
    Qwen2.5-Omni thinker's M-RoPE decoder), so engines and the `run --backend torch` reference share
    weights (cached: tests must not modify it)."""
    from ..models.families import load_decoder

    return load_decoder(get_model_spec(name), None, seed, dtype, "cpu", attn_implementation)


def build_tiny_engine(out, name: str, precision: str = "fp32", rollout: bool = True, export_only: bool = False,
                      max_tokens: int | None = None, max_new_tokens: int = 20, backend: str = "ort",
                      flavour: str | None = None, media: bool = False, weights: str | None = None):
    """Build `name`'s tiny seed model (seed 0) into `out` and return its manifest.

    With rollout=True the pre graph returns the importance, so the engine serves both
    global policies (positional just ignores it). media=True adds the encoders (seed 0) and the
    tokenizer, as `fastav-export build` does for a model with a media path. max_tokens: default 128,
    256 with video-salmonn2-tiny's encoders (its layout grows with the clip: a question and 8 s fit),
    and where the family's layout or longest clip needs more (Qwen2.5-Omni), what `fastav-export build`
    gives it. weights: "int4" or "int8" (`build --weights`'s defaults), or None for the precision's.
    """
    import copy
    from dataclasses import replace

    from ..contract.graph_io import DEFAULT_FLAVOUR
    from ..contract.weights import WeightQuantization
    from ..engine.build import MediaBuild, build_engine

    spec = get_model_spec(name)
    max_tokens = max_tokens or _default_max_tokens(spec, media)
    media_build = None
    if media:
        from ..models.families import load_media_parts

        media_build = MediaBuild.from_parts(spec, load_media_parts(spec, spec.dims))
    model = tiny_model(name)
    dtype = TORCH_DTYPES[precision]
    if dtype != torch.float32:
        model = copy.deepcopy(model).to(dtype)
    config = replace(spec.preset, global_policy="rollout" if rollout else "positional")
    return build_engine(model, model_name=name, source={"kind": "random", "seed": 0}, dims=spec.dims,
                        precision=precision, layout=spec.default_layout(),
                        config=config.resolve(spec.dims.num_layers), max_tokens=max_tokens,
                        max_new_tokens=max_new_tokens, out=out, export_only=export_only, backend=backend,
                        max_batch=2, flavour=flavour, media=media_build,
                        weights=WeightQuantization(weights, flavour or DEFAULT_FLAVOUR[backend]) if weights else None)


def _default_max_tokens(spec, media: bool) -> int:
    """128 (256 for video-salmonn2-tiny's clips), or where the layout, or with encoders the longest clip's
    prompt, is longer, what `fastav-export build` gives: that many tokens (plus room for the question)."""
    from ..cli.build_command import QUESTION_ROOM
    from ..models.families import longest_prompt

    default = 256 if media and spec.interleave is not None else 128
    layout = spec.default_layout()
    longest = longest_prompt(spec, layout, None) if media else layout.n_tokens
    return default if longest <= default else longest + (QUESTION_ROOM if media else 0)
