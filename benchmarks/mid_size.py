"""The mid-size model every CPU benchmark measures, and its fastav engines, built once per work folder.

A random-weight Qwen2 of `MID_SIZE` (hidden 512, 8 layers, FFN 1536, 8 query / 2 KV heads,
vocab 1024, seed 0, std 0.02) with the full VideoLLaMA2 layout (2,892 tokens). Imported by
`peers.py` and `serving_load.py` (run as scripts, so this folder is on sys.path).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from fastav_export.testing.models import MID_SIZE

ENGINE_MODEL_NAME = "videollama2-mid"


def mid_size_layout():
    """The full VideoLLaMA2-AV layout (16 frames, 30 s of audio): the longest prompt the engines take."""
    from fastav_export.models import get_model_spec

    return get_model_spec("videollama2").default_layout()


def mid_size_model():
    """The seeded random-weight Qwen2ForCausalLM of `MID_SIZE` (the same weights on every call)."""
    from fastav_export.models.model_factory import random_qwen2

    return random_qwen2(MID_SIZE, seed=0, std=0.02)


def build_mid_engine(model, layout, policy: str, out: Path, max_new_tokens: int, log, weights: str | None = None) -> None:
    """An fp32 fastav engine of `model` with VideoLLaMA2's preset under `policy` ("positional" or
    "rollout"), for prompts up to `layout` and `max_new_tokens` new tokens, with `weights` ("int4",
    "int8": `build --weights`'s defaults) or fp32 weights; kept when `out` already holds one of this
    format, these weights and as many new tokens."""
    from fastav_export.contract.weights import WeightQuantization
    from fastav_export.engine.build import build_engine
    from fastav_export.engine.manifest import FORMAT_VERSION, MANIFEST
    from fastav_export.models import get_model_spec

    quantization = WeightQuantization(weights, "ort-contrib") if weights else None
    manifest = out / MANIFEST
    if manifest.is_file():
        built = json.loads(manifest.read_text())
        if (built.get("format_version") == FORMAT_VERSION and built["limits"]["max_new_tokens"] >= max_new_tokens
                and built.get("weights") == (quantization.to_json() if quantization else None)):
            return
    config = replace(get_model_spec("videollama2").preset, global_policy=policy).resolve(MID_SIZE.num_layers)
    log(f"building the fastav {policy} engine{f' ({weights} weights)' if weights else ''} into {out}")
    started = time.perf_counter()
    build_engine(model, model_name=ENGINE_MODEL_NAME, source={"kind": "random", "seed": 0}, dims=MID_SIZE,
                 precision="fp32", layout=layout, config=config, max_tokens=layout.n_tokens,
                 max_new_tokens=max_new_tokens, out=out, weights=quantization)
    log(f"  built in {time.perf_counter() - started:.1f} s")
