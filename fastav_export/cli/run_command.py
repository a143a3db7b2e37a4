"""Generate with FastAV pruning: prints the schedule, the generated tokens and FLOPs.

Inputs are seeded synthetic embeddings over the model's layout unless --embeds gives
real ones (float32 [N, D] or [B, N, D], the encoder outputs already spliced in).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..errors import FastAVError
from .options import (add_model_arguments, add_pruning_arguments, pruning_config_from_args, resolve_layout,
                      resolve_spec)

EXAMPLES = """examples:
  fastav-export run --model videollama2-tiny --backend torch
  fastav-export run --model video-salmonn2-tiny --global-policy rollout --global-budget 0.3
  fastav-export run --checkpoint ./VideoLLaMA2.1-7B-AV --embeds embeds.npy --device cuda --dtype bfloat16
  fastav-export run --model videollama2-tiny --json out.json
"""

BACKENDS = ("torch",)
DTYPES = ("float32", "float16", "bfloat16")
log = logging.getLogger("fastav_export")


def add_arguments(parser) -> None:
    add_model_arguments(parser)
    add_pruning_arguments(parser)
    group = parser.add_argument_group("inputs and generation")
    group.add_argument("--embeds", metavar="FILE.npy", type=Path, help="decoder input embeddings, float32 [N, D] or [B, N, D]")
    group.add_argument("--batch", type=int, default=1, help="rows of synthetic inputs (default 1)")
    group.add_argument("--seed", type=int, default=0, help="seed of the synthetic inputs and tiny weights (default 0)")
    group.add_argument("--max-new-tokens", type=int, default=16, help="tokens to generate greedily (default 16)")
    group.add_argument("--json", metavar="FILE", type=Path, help="write kept tokens, generated ids, first logits, FLOPs")
    group = parser.add_argument_group("execution")
    group.add_argument("--backend", choices=BACKENDS, default="torch", help="runtime backend (default torch)")
    group.add_argument("--device", default="cpu", help="torch device: cpu or cuda[:N] (default cpu)")
    group.add_argument("--dtype", choices=DTYPES, default="float32", help="weights/activations (default float32)")
    group.add_argument("--attn-implementation", choices=("sdpa", "eager", "flash_attention_2"), default="sdpa",
                       help="transformers attention kernel (default sdpa)")
    group.add_argument("--rollout-impl", choices=("streaming", "dense"), default="streaming",
                       help="rollout without (streaming) or with N x N maps (default streaming)")
    group.add_argument("--random-weights", action="store_true",
                       help="allow seeded random weights for a full-size model (benchmarks)")


def load_embeds(path: Path, hidden_size: int):
    import numpy as np
    import torch

    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FastAVError(f"cannot read --embeds {path}: {exc}") from None
    if array.dtype != np.float32:
        raise FastAVError(f"--embeds {path} is {array.dtype}, expected float32 [N, D] or [B, N, D]")
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[1] == 0:
        raise FastAVError(f"--embeds {path} has shape {list(array.shape)}, expected [N, D] or [B, N, D] with N > 0")
    if array.shape[2] != hidden_size:
        raise FastAVError(f"--embeds {path} has D = {array.shape[2]} but the model's hidden size is {hidden_size}")
    return torch.from_numpy(array)


def _device(name: str):
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise FastAVError(f"--device {name!r} is not a torch device: use cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FastAVError("--device cuda but this torch has no CUDA device: use --device cpu")
    return device


def _dims(args, spec):
    from ..models.registry import DecoderDims

    if args.checkpoint is None:
        return spec.dims
    from ..checkpoint import qwen2_config_from, read_config

    return DecoderDims.from_qwen2_config(qwen2_config_from(read_config(Path(args.checkpoint))))


def main(args) -> int:
    import torch

    from ..checkpoint import load_qwen2_checkpoint
    from ..flops import flops_report
    from ..generation import generate
    from ..synthetic_inputs import synthetic_embeds
    from ..torch_backend.model_factory import build_model
    from ..torch_backend.reference import TorchReference

    if args.max_new_tokens < 1:
        raise FastAVError(f"--max-new-tokens {args.max_new_tokens}: generate at least 1 token")
    if args.batch < 1:
        raise FastAVError(f"--batch {args.batch}: use at least 1 row")
    spec, _ = resolve_spec(args)
    layout = resolve_layout(args, spec)
    device, dtype = _device(args.device), getattr(torch, args.dtype)
    if args.checkpoint is None and not spec.is_tiny and not args.random_weights:
        raise FastAVError(f"{spec.name} has no built-in weights: pass --checkpoint DIR, use {spec.name}-tiny, "
                          "or --random-weights for benchmarks")
    # Validate everything the user typed before the (possibly slow) model load.
    dims = _dims(args, spec)
    config = pruning_config_from_args(args, spec, dims.num_layers)
    embeds = load_embeds(args.embeds, dims.hidden_size) if args.embeds is not None else None
    layout.check_matches(embeds.shape[1] if embeds is not None else layout.n_tokens)
    if layout.n_tokens + args.max_new_tokens > dims.max_position_embeddings:
        raise FastAVError(f"{layout.n_tokens} tokens + {args.max_new_tokens} new exceed the model's "
                          f"{dims.max_position_embeddings} positions: shorten the input or --max-new-tokens")

    started = time.perf_counter()
    if args.checkpoint is not None:
        loaded = load_qwen2_checkpoint(args.checkpoint, dtype=dtype, device=device,
                                       attn_implementation=args.attn_implementation)
        log.info(f"loaded the decoder of {args.checkpoint}; {loaded.describe_skipped()}")
        model = loaded.model
    else:
        model = build_model(spec, seed=args.seed, dtype=dtype, device=device,
                            attn_implementation=args.attn_implementation)
    log.debug(f"loaded {args.checkpoint or spec.name} in {time.perf_counter() - started:.1f} s")
    if embeds is None:
        embeds = synthetic_embeds(model.model.embed_tokens.weight, layout, args.batch, args.seed)

    backend = TorchReference(model, layout, config, rollout_impl=args.rollout_impl)
    started = time.perf_counter()
    result = generate(backend, embeds, args.max_new_tokens)
    elapsed = time.perf_counter() - started
    report = flops_report(dims, backend.schedule)
    result.flops_ratio = report.to_json()

    print(f"model: {args.checkpoint or spec.name}, {args.backend} backend on {device} ({args.dtype}), "
          f"batch {embeds.shape[0]}")
    print(f"layout: {layout.describe()}")
    print(f"pruning: {config.describe()}")
    print("schedule (tokens each layer processes):")
    for first, last, tokens, candidates in backend.schedule.rows():
        layers = f"{first}" if first == last else f"{first}-{last}"
        print(f"  layers {layers:>7}: {tokens:>6} tokens ({candidates} audio-visual)")
    for row, tokens in enumerate(result.tokens):
        print(f"tokens[{row}]: {' '.join(map(str, tokens))}")
    print(f"FLOPs ratio (pruned / dense): paper formula {report.paper_ratio:.4f}, exact MACs {report.exact_ratio:.4f}")
    log.info(f"generated {args.max_new_tokens} tokens in {elapsed:.2f} s")
    if args.json:
        result.write_json(args.json)
        log.info(f"wrote {args.json}")
    return 0
