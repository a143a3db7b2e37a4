"""Export the decoder as FastAV graphs and build them into an engine directory.

Writes engines/<model>-<precision>/ (or --out): onnx/ (embed, pre, post_K..post_{L-1};
weights in external files; what ONNX Runtime runs, checked to load with --backend ort),
onnx/<graph>.engine (TensorRT engines, strongly typed, with the TopKGather plugin, which
is compiled on first use; --backend trt, needs TensorRT and a GPU) and config.json
(model, graph flavour, layout, limits, pruning defaults, I/O names, versions, sha256 of
every file). The build happens in a hidden directory that is renamed at the end, so
an interrupted build leaves no engine directory behind.

Graph flavours (--graphs): every layer's attention is one fused op, either ONNX
Runtime's com.microsoft GroupQueryAttention writing the KV buffer in place
(ort-contrib, the default for --backend ort) or the standard ONNX Attention op of
opset 23 (onnx-standard: what TensorRT imports; ONNX Runtime runs it too).

The pruning options set the engine's defaults; `run` can override all of them except
--global-layer (the graphs split the decoder there) and the rollout graph (built only
with --global-policy rollout).
"""

from __future__ import annotations

import logging
import shlex
import time
from pathlib import Path

from ..contract.graph_io import DEFAULT_FLAVOUR, FLAVOURS
from ..contract.weights import (
    ACCURACY_LEVELS,
    BLOCK_SIZES,
    DEFAULT_ACCURACY_LEVEL,
    DEFAULT_BLOCK_SIZE,
    WEIGHT_KINDS,
    WeightQuantization,
)
from ..errors import FastAVError
from .arg_types import positive_int, seed
from .options import (
    add_family_arguments,
    add_model_arguments,
    add_pruning_arguments,
    check_layout_positions,
    family_options,
    given_family_flags,
    load_decoder,
    pruning_source,
    resolve_model,
)
from .output_checks import check_replaced_dir

EXAMPLES = """examples:
  fastav-export build                                   # videollama2-tiny, fp32, ONNX Runtime, with encoders
  fastav-export build --model video-salmonn2-tiny --global-policy rollout
  fastav-export build --model videollama2-tiny --fp16 --out engines/vl2-tiny-fp16
  fastav-export build --graphs onnx-standard --out engines/videollama2-tiny-standard
  fastav-export build --weights int4 --out engines/videollama2-tiny-int4   # MatMulNBits, int8 activations
  fastav-export build --checkpoint ./VideoLLaMA2.1-7B-AV --fp16 --max-new-tokens 256
  fastav-export build --checkpoint ./VideoLLaMA2.1-7B-AV --vision-tower ./siglip-so400m-patch14-384
  fastav-export build --model videollama2 --bf16 --export-only --random-weights
  fastav-export build --checkpoint ./video-SALMONN-2 --model video-salmonn2 --fp16 --audio-window 0.5
  fastav-export build --checkpoint ./VideoLLaMA2.1-7B-AV --backend trt --fp16 --max-batch 4   # on a GPU
"""

log = logging.getLogger("fastav_export")
# A media build's default --max-tokens: the layout's media rows plus this much prompt text.
QUESTION_ROOM = 256


def add_arguments(parser) -> None:
    add_model_arguments(parser)
    add_family_arguments(parser)
    add_pruning_arguments(parser)
    group = parser.add_argument_group("build")
    precision = group.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true", help="graphs typed in float16 (norms, softmax in fp32)")
    precision.add_argument("--bf16", action="store_true", help="graphs typed in bfloat16 (TensorRT; ORT CPU cannot run them)")
    group.add_argument("--backend", choices=("ort", "trt"), default="ort",
                       help="ort: ONNX Runtime graphs (CPU, default); trt: TensorRT engines (GPU, needs TensorRT)")
    group.add_argument("--graphs", choices=FLAVOURS, metavar="FLAVOUR",
                       help="attention ops of the graphs: ort-contrib (GroupQueryAttention; default for --backend "
                            "ort) or onnx-standard (opset-23 Attention; default and required for --backend trt)")
    group.add_argument("--max-batch", type=positive_int, default=4, help="trt: most rows per request (default 4)")
    weights = parser.add_argument_group("weight-only quantization (the decoder's linear layers)")
    weights.add_argument("--weights", choices=WEIGHT_KINDS,
                         help="store the linear weights as int4 or int8 (default: the graph precision); "
                              "ort-contrib graphs: MatMulNBits; onnx-standard graphs: int4 DequantizeLinear "
                              "(TensorRT's weight-only form, int4 only)")
    weights.add_argument("--weight-block-size", type=int, choices=BLOCK_SIZES, metavar="N",
                         help=f"values per scale: {', '.join(map(str, BLOCK_SIZES))} (default {DEFAULT_BLOCK_SIZE})")
    weights.add_argument("--accuracy-level", type=int, choices=ACCURACY_LEVELS, metavar="N",
                         help="ort-contrib: MatMulNBits' compute type, 1 fp32, 2 fp16, 3 bf16, 4 int8 "
                              f"activations (default {DEFAULT_ACCURACY_LEVEL}, as onnxruntime-genai's CPU models)")
    weights.add_argument("--quantize-lm-head", action="store_true",
                         help="quantize the lm_head too (default: it keeps the graph precision)")
    group.add_argument("--timing-cache", metavar="FILE", type=Path,
                       help="trt: TensorRT timing cache, shared across builds (default: in ~/.cache/fastav-export)")
    group.add_argument("--export-only", action="store_true", help="write the ONNX graphs and config.json only")
    group.add_argument("--out", metavar="DIR", type=Path, help="engine directory (default engines/<model>-<precision>)")
    group.add_argument("--max-tokens", type=positive_int,
                       help=f"longest prompt the engine accepts (default: --layout's N; else the model's longest "
                            f"prompt, plus {QUESTION_ROOM} for the question with encoders)")
    group.add_argument("--decoder-only", action="store_true",
                       help="leave out the encoders and the tokenizer (requests then send embeddings)")
    group.add_argument("--vision-tower", metavar="DIR", type=Path,
                       help="--checkpoint: a local SigLIP snapshot, when the checkpoint does not hold the vision "
                            "tower's weights (its config names it by hub id)")
    group.add_argument("--max-new-tokens", type=positive_int, default=64, help="longest generation (default 64)")
    group.add_argument("--seed", type=seed, default=0, help="seed of random weights (tiny models; default 0)")
    group.add_argument("--random-weights", action="store_true",
                       help="allow seeded random weights for a full-size model (benchmarks)")


def main(args) -> int:
    out, manifest, seconds = build_from_args(args, say=print)
    size = sum(manifest.file(f).stat().st_size for f in manifest.files) / 2**20
    print(f"built {out} in {seconds:.1f} s: {len(manifest.graphs)} graphs, "
          f"{len(manifest.files)} files, {size:.1f} MiB")
    if args.export_only:  # nothing here can run it yet: say what it is for instead
        print(f"the ONNX graphs only (--export-only) are in {shlex.quote(str(Path(out) / 'onnx'))}: "
              "`fastav-export run` needs a build without --export-only")
    elif manifest.media is not None:
        print(f"run it: fastav-export run {shlex.quote(str(out))} --video FILE --question TEXT")
    else:
        print(f"run it: fastav-export run {shlex.quote(str(out))}")
    return 0


def build(**options) -> Path:
    """`fastav-export build` from Python: each keyword is the flag's name with underscores
    (`build(model="video-salmonn2-tiny", fp16=True, weights="int4", out="engines/x")`); True sets a
    switch. Returns the engine directory. The same checks run as on the command line, and a bad
    option raises FastAVError with the same one line."""
    import argparse

    class RaisingParser(argparse.ArgumentParser):
        def error(self, message):
            raise FastAVError(message)

    parser = RaisingParser(prog="fastav_export.build", add_help=False)
    add_arguments(parser)
    known = {action.dest: action for action in parser._actions}
    argv: list[str] = []
    for name, value in options.items():
        action = known.get(name)
        if action is None or not action.option_strings:
            raise FastAVError(f"unknown build option {name!r}: use the flags of `fastav-export build --help` with "
                              "underscores, e.g. max_new_tokens=64")
        flag = action.option_strings[0]
        if action.nargs == 0:  # a switch
            if value is True:
                argv.append(flag)
            elif value not in (False, None):
                raise FastAVError(f"build option {name} is a switch: pass True or False, not {value!r}")
        elif value is not None:
            argv += [flag, str(value)]
    args = parser.parse_args(argv)
    out, _, _ = build_from_args(args, say=log.info)
    return Path(out)


def build_from_args(args, say=print):
    """Build what `args` (the parsed flags) ask for: (engine directory, manifest, seconds).
    say: where the loading report goes (the command line prints it)."""
    from ..contract.precision import TORCH_DTYPES
    from ..engine.build import build_engine, check_target, default_engine_dir

    precision = "fp16" if args.fp16 else "bf16" if args.bf16 else "fp32"
    if precision == "bf16" and args.backend == "ort" and not args.export_only:
        raise FastAVError("ONNX Runtime's CPU provider cannot run bf16 graphs: use --fp16 (or fp32) for "
                          "--backend ort, or --bf16 --backend trt (or --export-only) for TensorRT")
    if args.backend == "trt" and args.graphs == "ort-contrib" and not args.export_only:
        raise FastAVError("TensorRT cannot build ort-contrib graphs (ONNX Runtime's contrib ops): "
                          "drop --graphs or use --graphs onnx-standard with --backend trt")
    weights = weight_quantization(args)
    if args.backend == "trt" and not args.export_only:
        from ..engine.trt.tensorrt_env import require_trt_build_environment

        require_trt_build_environment()  # before the export, which takes minutes at full size
    spec, layout, dims, config = resolve_model(args)
    if spec is None:
        raise FastAVError("a plain Qwen2 checkpoint needs --model of its family (videollama2 or video-salmonn2)")
    check_layout_positions(layout, dims)
    with_media = spec.has_media and not args.decoder_only
    if with_media and args.checkpoint is None and not spec.is_tiny:
        # Random encoders could be drawn, but no tokenizer fits a random full-size vocabulary.
        log.info(f"{spec.name} with --random-weights: the encoders and tokenizer come from a checkpoint, so only "
                 "the decoder is built (as with --decoder-only)")
        with_media = False
    if args.vision_tower is not None and (args.checkpoint is None or not with_media):
        raise FastAVError("--vision-tower goes with --checkpoint of a model with encoders: drop it")
    if with_media and args.layout is not None:
        raise FastAVError("--layout replaces the model's layout, which its encoders fix: drop it, or add "
                          "--decoder-only")
    options = family_options(args, spec)
    if options is not None and not with_media:
        raise FastAVError(f"{', '.join(given_family_flags(args))} set up the encoders, which this build "
                          "leaves out: drop them")
    if args.layout is not None:  # the requests follow this layout, not the model's clips (only without encoders)
        default_tokens = layout.n_tokens
    else:
        default_tokens = _longest_prompt(spec, layout, options) + (QUESTION_ROOM if with_media else 0)
    max_tokens = args.max_tokens if args.max_tokens is not None else default_tokens
    if max_tokens < layout.n_tokens:
        raise FastAVError(f"--max-tokens {max_tokens} is below the layout's {layout.n_tokens} tokens")
    if max_tokens + args.max_new_tokens > dims.max_position_embeddings:
        raise FastAVError(f"--max-new-tokens {args.max_new_tokens} must fit the model's "
                          f"{dims.max_position_embeddings} positions with {max_tokens} prompt tokens")
    # The engine records the model it is (placeholder id, family, presets follow from it); a checkpoint's
    # directory name only names the default output directory.
    name = spec.name
    out = args.out or default_engine_dir(Path(args.checkpoint).resolve().name if args.checkpoint else name,
                                         precision, weights.kind if weights is not None else None)
    check_replaced_dir(args, "--out", out)  # a build replaces `out` whole
    check_target(out)
    if args.timing_cache is not None and args.timing_cache.is_dir():
        raise FastAVError(f"--timing-cache {args.timing_cache} is a directory: give a file name")

    started = time.perf_counter()
    media = _media_build(args, spec, dims, say) if with_media else None
    model = load_decoder(args, spec, TORCH_DTYPES[precision])
    source = ({"kind": "checkpoint", "path": str(Path(args.checkpoint).resolve())} if args.checkpoint
              else {"kind": "random", "seed": args.seed})
    quantized = f", {weights.describe()}" if weights is not None else ""
    log.info(f"building {out} ({name}, {precision}{quantized}, {dims.num_layers} layers split at "
             f"{config.global_layer})")
    manifest = build_engine(model, model_name=name, source=source, dims=dims, precision=precision, layout=layout,
                            config=config, max_tokens=max_tokens, max_new_tokens=args.max_new_tokens, out=out,
                            export_only=args.export_only, backend=args.backend, max_batch=args.max_batch,
                            timing_cache=args.timing_cache, flavour=args.graphs, media=media,
                            pruning_source=pruning_source(args, dims.num_layers), weights=weights,
                            progress=log.info)
    return out, manifest, time.perf_counter() - started


def weight_quantization(args) -> WeightQuantization | None:
    """--weights and its options, checked before any work (None: weights at the graph precision)."""
    flavour = args.graphs or DEFAULT_FLAVOUR[args.backend]
    if args.weights is None:
        given = [flag for flag, value in (("--weight-block-size", args.weight_block_size),
                                          ("--accuracy-level", args.accuracy_level),
                                          ("--quantize-lm-head", args.quantize_lm_head or None)) if value is not None]
        if given:
            raise FastAVError(f"{', '.join(given)} set up quantized weights: add --weights int4 or int8, or drop them")
        return None
    if args.accuracy_level is not None and flavour != "ort-contrib":
        raise FastAVError(f"--accuracy-level sets MatMulNBits' compute type, which {flavour} graphs do not use: "
                          "drop it")
    return WeightQuantization(args.weights, flavour,
                              args.weight_block_size if args.weight_block_size is not None else DEFAULT_BLOCK_SIZE,
                              args.accuracy_level if args.accuracy_level is not None else DEFAULT_ACCURACY_LEVEL,
                              args.quantize_lm_head)


def _longest_prompt(spec, layout, options) -> int:
    """Tokens of the longest prompt the model's encoders give (the family's rule: the layout's, or where
    the media rows follow the clip, those of its longest clip)."""
    from ..models.families import longest_prompt

    return longest_prompt(spec, layout, options)


def _media_build(args, spec, dims, say=print):
    """The encoders and tokenizer to export beside the decoder, with the loading report said."""
    from ..engine.build import MediaBuild
    from ..models.families import load_media_parts

    parts = load_media_parts(spec, dims, args.checkpoint, args.vision_tower, seed=args.seed,
                             options=family_options(args, spec))
    say("loaded:")
    for part, where in parts.sources.items():
        say(f"  {part}: {where}")
    return MediaBuild.from_parts(spec, parts)
