"""Generate with FastAV pruning: prints the schedule, the generated tokens and FLOPs.

With --video FILE --question TEXT the whole model runs: the video's frames and audio
track are decoded and encoded, the question goes through the tokenizer and chat template,
and the answer is printed as text (ENGINE_DIR needs nothing else; without it the PyTorch
reference runs the model's own modules).

With ENGINE_DIR (from `fastav-export build`) the engine runs on TensorRT when it holds
TensorRT engines and a GPU with TensorRT is present, on ONNX Runtime otherwise; without it the PyTorch reference runs the model given by --model or --checkpoint.
Inputs are seeded synthetic embeddings over the layout unless --embeds gives real ones
(float32 [N, D] or [B, N, D], the encoder outputs already spliced in).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from ..contract.layout import TokenLayout
from ..errors import FastAVError
from ..user_io.output_paths import write_text_atomic
from .arg_types import positive_int, seed, thread_count
from .media_run import add_media_arguments, check_media_arguments
from .options import (
    add_family_arguments,
    add_model_arguments,
    add_pruning_arguments,
    check_layout_positions,
    check_run_memory,
    engine_preset_target,
    given_family_flags,
    load_decoder,
    pruning_config_from_args,
    resolve_model,
)
from .output_checks import check_output_files

EXAMPLES = """examples:
  fastav-export run engines/videollama2-tiny-fp32 --video clip.mp4 --question "What is happening?"
  fastav-export run --model videollama2-tiny --backend torch --video clip.mp4 --question "What is happening?"
  fastav-export run engines/videollama2-tiny-fp32 --video clip.mp4 --audio speech.wav --question "Who speaks?"
  fastav-export run engines/videollama2-tiny-fp32 --json out.json
  fastav-export run engines/videollama2-tiny-fp32 --fine-ratio 0.3 --batch 2
  fastav-export run --model videollama2-tiny --backend torch
  fastav-export run --model video-salmonn2-tiny --global-policy rollout --global-budget 0.3
  fastav-export run engines/video-salmonn2-tiny-fp32 --video clip.mp4 --question "What is happening?"
  fastav-export run --model video-salmonn2-tiny --video clip.mp4 --question "What?" --audio-window 0.25
  fastav-export run --checkpoint ./VideoLLaMA2.1-7B-AV --embeds embeds.npy --device cuda --dtype bfloat16
"""

BACKENDS = ("torch", "ort", "trt")
DTYPES = ("float32", "float16", "bfloat16")
# Options of the torch backend and their defaults: with ENGINE_DIR they would do nothing.
TORCH_ONLY = {"device": "cpu", "dtype": "float32", "attn_implementation": "sdpa", "rollout_impl": "streaming",
              "random_weights": False}
log = logging.getLogger("fastav_export")


def add_arguments(parser) -> None:
    parser.add_argument("engine", metavar="ENGINE_DIR", nargs="?", type=Path,
                        help="engine directory from `fastav-export build` (runs on ONNX Runtime)")
    add_model_arguments(parser)
    add_pruning_arguments(parser)
    add_media_arguments(parser)
    add_family_arguments(parser)
    group = parser.add_argument_group("inputs and generation")
    group.add_argument("--embeds", metavar="FILE.npy", type=Path, help="decoder input embeddings, float32 [N, D] or [B, N, D]")
    group.add_argument("--batch", type=positive_int, default=1, help="rows of synthetic inputs (default 1)")
    group.add_argument("--seed", type=seed, default=0, help="seed of the synthetic inputs and tiny weights (default 0)")
    group.add_argument("--max-new-tokens", type=positive_int, default=16,
                       help="tokens to generate greedily (default 16)")
    group.add_argument("--json", metavar="FILE", type=Path,
                       help="write kept tokens, generated ids, first logits, FLOPs (with --video: the answer's "
                            "text, ids and per-stage seconds)")
    group = parser.add_argument_group("execution")
    group.add_argument("--backend", choices=BACKENDS,
                       help="runtime backend (default with ENGINE_DIR: trt where its engines can run, else ort; "
                            "torch without)")
    group.add_argument("--threads", type=thread_count,
                       help="ENGINE_DIR on ONNX Runtime: intra-op threads (default 0: all cores)")
    # The torch-only options default to None, so that one given with ENGINE_DIR (where it
    # would do nothing) is refused instead of ignored.
    group.add_argument("--device", help="torch backend: cpu or cuda[:N] (default cpu)")
    group.add_argument("--dtype", choices=DTYPES,
                       help="torch backend: weights/activations (default float32; engines have their own)")
    group.add_argument("--attn-implementation", choices=("sdpa", "eager", "flash_attention_2"),
                       help="torch backend: transformers attention kernel (default sdpa)")
    group.add_argument("--rollout-impl", choices=("streaming", "dense"),
                       help="torch backend: rollout without (streaming) or with N x N maps (default streaming)")
    group.add_argument("--random-weights", action="store_true",
                       help="allow seeded random weights for a full-size model (benchmarks)")


def _check_attn_implementation(name: str) -> None:
    """transformers raises an ImportError deep inside model construction without flash-attn."""
    import importlib.util

    if name == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise FastAVError("--attn-implementation flash_attention_2 needs the flash-attn package (and a CUDA GPU): "
                          "install flash-attn, or use sdpa")


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
    check_output_files(args, {"--json": args.json})
    media = check_media_arguments(args)
    if args.vision_tower is not None and (args.engine is not None or getattr(args, "checkpoint", None) is None):
        raise FastAVError("--vision-tower goes with --checkpoint (the engine directory holds its encoders)")
    family_flags = given_family_flags(args)
    if family_flags and (args.engine is not None or not media):
        raise FastAVError(f"{', '.join(family_flags)} set up the model's encoders for --video with "
                          "--model/--checkpoint; an engine directory fixed them at build time: drop them")
    if args.engine is not None:
        return _run_engine(args, media)
    if args.backend in ("ort", "trt"):
        raise FastAVError(f"--backend {args.backend} runs an engine directory: build one with "
                          "`fastav-export build`, then `fastav-export run ENGINE_DIR`")
    if args.threads is not None:
        raise FastAVError("--threads sets ONNX Runtime's threads for ENGINE_DIR: drop it for the torch backend")
    for name, default in TORCH_ONLY.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    return _run_torch(args, media)


def check_run_inputs(args, layout, dims, config, dtype_bytes: int):
    """Validate --embeds, the token budget and the memory the run needs before anything slow happens."""
    from ..user_io.embeds_file import load_embeds

    check_layout_positions(layout, dims, args.max_new_tokens)
    embeds = load_embeds(args.embeds, dims.hidden_size) if args.embeds is not None else None
    layout.check_matches(embeds.shape[1] if embeds is not None else layout.n_tokens)
    batch = embeds.shape[0] if embeds is not None else args.batch
    check_run_memory(layout, config, dims, batch, args.max_new_tokens, dtype_bytes, synthetic=embeds is None)
    return embeds


def _run_torch(args, media: bool = False) -> int:
    import torch

    from ..contract.synthetic_inputs import synthetic_embeds
    from ..reference.torch_reference import TorchReference

    device, dtype = _device(args.device), getattr(torch, args.dtype)
    _check_attn_implementation(args.attn_implementation)
    spec, layout, dims, config = resolve_model(args)
    if media:
        from .media_run import run_torch

        return run_torch(args, spec, dims, config, dtype, device)
    embeds = check_run_inputs(args, layout, dims, config, dtype.itemsize)
    started = time.perf_counter()
    model = load_decoder(args, spec, dtype, device, args.attn_implementation)
    log.debug(f"loaded {args.checkpoint or spec.name} in {time.perf_counter() - started:.1f} s")
    if embeds is None:
        embeds = synthetic_embeds(model.model.embed_tokens.weight, layout, args.batch, args.seed)
    backend = TorchReference(model, layout, config, rollout_impl=args.rollout_impl)
    title = f"{args.checkpoint or spec.name}, torch backend on {device} ({args.dtype})"
    return _generate_and_report(args, backend, embeds, layout, config, dims, title)


def _run_engine(args, media: bool = False) -> int:
    from ..contract.precision import BYTES
    from ..contract.synthetic_inputs import synthetic_embeds
    from ..engine.manifest import load_engine_dir
    from ..runtime.backends import default_backend, open_engine_backend

    if args.model or args.checkpoint:
        raise FastAVError("ENGINE_DIR already fixes the model: drop --model/--checkpoint")
    if args.backend == "torch":
        raise FastAVError("ENGINE_DIR runs on ort or trt, not --backend torch: "
                          "drop ENGINE_DIR to run the torch reference")
    torch_only = [f"--{name.replace('_', '-')}" for name in TORCH_ONLY if getattr(args, name) not in (None, False)]
    if torch_only:
        raise FastAVError(f"{', '.join(torch_only)} only apply to the torch backend: an engine runs where its "
                          "backend runs (trt: the GPU, ort: the CPU) in its built precision; drop them")
    if media:
        from .media_run import run_engine

        return run_engine(args)
    manifest = load_engine_dir(args.engine)
    backend_name = args.backend or default_backend(manifest)
    dims = manifest.dims
    layout = TokenLayout.load(args.layout) if args.layout is not None else manifest.layout
    config = pruning_config_from_args(args, None, dims.num_layers, base=manifest.pruning,
                                      target=engine_preset_target(manifest, layout))
    embeds = check_run_inputs(args, layout, dims, config, BYTES[manifest.precision])
    backend = open_engine_backend(manifest, layout, config, backend_name, threads=args.threads,
                                  max_new_tokens=args.max_new_tokens)
    if embeds is None:
        embeds = synthetic_embeds(backend.embedding_table(), layout, args.batch, args.seed)
    title = f"{manifest.model} engine {args.engine}, {backend_name} backend on {backend.device} ({manifest.numerics})"
    return _generate_and_report(args, backend, embeds, layout, config, dims, title)


def _generate_and_report(args, backend, embeds, layout, config, dims, title: str) -> int:
    from ..contract.flops import flops_report
    from ..runtime.generation import generate

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
        write_text_atomic(args.json, json.dumps({**result.to_json(), "layout": layout.to_json()}) + "\n")
        log.info(f"wrote {args.json}")
    return 0
