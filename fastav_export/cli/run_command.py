"""Generate with FastAV pruning: prints the schedule, the generated tokens and FLOPs.

With ENGINE_DIR (from `fastav-export build`) the engine runs on TensorRT when it holds
TensorRT engines and a GPU with TensorRT is present, on ONNX Runtime otherwise; without it the PyTorch reference runs the model given by --model or --checkpoint.
Inputs are seeded synthetic embeddings over the layout unless --embeds gives real ones
(float32 [N, D] or [B, N, D], the encoder outputs already spliced in).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..errors import FastAVError
from ..layout import TokenLayout
from .options import add_model_arguments, add_pruning_arguments, load_decoder, pruning_config_from_args, resolve_model

EXAMPLES = """examples:
  fastav-export run engines/videollama2-tiny-fp32 --json out.json
  fastav-export run engines/videollama2-tiny-fp32 --fine-ratio 0.3 --batch 2
  fastav-export run --model videollama2-tiny --backend torch
  fastav-export run --model video-salmonn2-tiny --global-policy rollout --global-budget 0.3
  fastav-export run --checkpoint ./VideoLLaMA2.1-7B-AV --embeds embeds.npy --device cuda --dtype bfloat16
"""

BACKENDS = ("torch", "ort", "trt")
DTYPES = ("float32", "float16", "bfloat16")
log = logging.getLogger("fastav_export")


def add_arguments(parser) -> None:
    parser.add_argument("engine", metavar="ENGINE_DIR", nargs="?", type=Path,
                        help="engine directory from `fastav-export build` (runs on ONNX Runtime)")
    add_model_arguments(parser)
    add_pruning_arguments(parser)
    group = parser.add_argument_group("inputs and generation")
    group.add_argument("--embeds", metavar="FILE.npy", type=Path, help="decoder input embeddings, float32 [N, D] or [B, N, D]")
    group.add_argument("--batch", type=int, default=1, help="rows of synthetic inputs (default 1)")
    group.add_argument("--seed", type=int, default=0, help="seed of the synthetic inputs and tiny weights (default 0)")
    group.add_argument("--max-new-tokens", type=int, default=16, help="tokens to generate greedily (default 16)")
    group.add_argument("--json", metavar="FILE", type=Path, help="write kept tokens, generated ids, first logits, FLOPs")
    group = parser.add_argument_group("execution")
    group.add_argument("--backend", choices=BACKENDS,
                       help="runtime backend (default with ENGINE_DIR: trt where its engines can run, else ort; "
                            "torch without)")
    group.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads (default: all cores)")
    group.add_argument("--device", default="cpu", help="torch backend: cpu or cuda[:N] (default cpu)")
    group.add_argument("--dtype", choices=DTYPES, default="float32", help="torch backend: weights/activations (default float32; engines have their own)")
    group.add_argument("--attn-implementation", choices=("sdpa", "eager", "flash_attention_2"), default="sdpa",
                       help="torch backend: transformers attention kernel (default sdpa)")
    group.add_argument("--rollout-impl", choices=("streaming", "dense"), default="streaming",
                       help="torch backend: rollout without (streaming) or with N x N maps (default streaming)")
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


def main(args) -> int:
    if args.max_new_tokens < 1:
        raise FastAVError(f"--max-new-tokens {args.max_new_tokens}: generate at least 1 token")
    if args.batch < 1:
        raise FastAVError(f"--batch {args.batch}: use at least 1 row")
    if args.engine is not None:
        return _run_engine(args)
    if args.backend in ("ort", "trt"):
        raise FastAVError(f"--backend {args.backend} runs an engine directory: build one with "
                          "`fastav-export build`, then `fastav-export run ENGINE_DIR`")
    return _run_torch(args)


def _check_inputs(args, layout, dims):
    """Validate --embeds and the token budget before anything slow happens."""
    embeds = load_embeds(args.embeds, dims.hidden_size) if args.embeds is not None else None
    layout.check_matches(embeds.shape[1] if embeds is not None else layout.n_tokens)
    if layout.n_tokens + args.max_new_tokens > dims.max_position_embeddings:
        raise FastAVError(f"{layout.n_tokens} tokens + {args.max_new_tokens} new exceed the model's "
                          f"{dims.max_position_embeddings} positions: shorten the input or --max-new-tokens")
    return embeds


def _run_torch(args) -> int:
    import torch

    from ..synthetic_inputs import synthetic_embeds
    from ..torch_backend.reference import TorchReference

    device, dtype = _device(args.device), getattr(torch, args.dtype)
    spec, layout, dims, config = resolve_model(args)
    embeds = _check_inputs(args, layout, dims)
    started = time.perf_counter()
    model = load_decoder(args, spec, dtype, device, args.attn_implementation)
    log.debug(f"loaded {args.checkpoint or spec.name} in {time.perf_counter() - started:.1f} s")
    if embeds is None:
        embeds = synthetic_embeds(model.model.embed_tokens.weight, layout, args.batch, args.seed)
    backend = TorchReference(model, layout, config, rollout_impl=args.rollout_impl)
    title = f"{args.checkpoint or spec.name}, torch backend on {device} ({args.dtype})"
    return _generate_and_report(args, backend, embeds, layout, config, dims, title)


def _run_engine(args) -> int:
    from ..backends import check_request, default_backend, open_engine_backend
    from ..engine_dir import load_engine_dir
    from ..synthetic_inputs import synthetic_embeds

    if args.model or args.checkpoint:
        raise FastAVError("ENGINE_DIR already fixes the model: drop --model/--checkpoint")
    if args.backend == "torch":
        raise FastAVError("ENGINE_DIR runs on ort or trt, not --backend torch: "
                          "drop ENGINE_DIR to run the torch reference")
    manifest = load_engine_dir(args.engine)
    backend_name = args.backend or default_backend(manifest)
    dims = manifest.dims
    layout = TokenLayout.load(args.layout) if args.layout is not None else manifest.layout
    config = pruning_config_from_args(args, None, dims.num_layers, base=manifest.pruning)
    check_request(manifest, layout, config, args.max_new_tokens)
    embeds = _check_inputs(args, layout, dims)
    backend = open_engine_backend(manifest, layout, config, backend_name, threads=args.threads)
    if embeds is None:
        embeds = synthetic_embeds(backend.embedding_table(), layout, args.batch, args.seed)
    title = f"{manifest.model} engine {args.engine}, {backend_name} backend on {backend.device} ({manifest.precision})"
    return _generate_and_report(args, backend, embeds, layout, config, dims, title)


def _generate_and_report(args, backend, embeds, layout, config, dims, title: str) -> int:
    from ..flops import flops_report
    from ..generation import generate

    started = time.perf_counter()
    result = generate(backend, embeds, args.max_new_tokens)
    elapsed = time.perf_counter() - started
    report = flops_report(dims, backend.schedule)
    result.flops_ratio = report.to_json()

    print(f"model: {title}, batch {embeds.shape[0]}")
    print(f"layout: {layout.describe()}")
    print(f"pruning: {config.describe()}")
    print("schedule (tokens each layer processes):")
    for first, last, tokens, candidates in backend.schedule.rows():
        layers = f"{first}" if first == last else f"{first}-{last}"
        print(f"  layers {layers:>7}: {tokens:>6} tokens ({candidates} audio-visual)")
    for row, tokens in enumerate(result.tokens):
        print(f"tokens[{row}]: {' '.join(map(str, tokens))}")
    print(f"FLOPs ratio (pruned / dense): {report.describe()}")
    log.info(f"generated {args.max_new_tokens} tokens in {elapsed:.2f} s")
    if args.json:
        result.write_json(args.json)
        log.info(f"wrote {args.json}")
    return 0
