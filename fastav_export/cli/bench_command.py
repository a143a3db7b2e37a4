"""Time an engine: prefill and decode with its pruning config and with pruning off, in one run.

Loads the engine once, then runs --warmup untimed rounds and --rounds timed rounds; each
round is one prefill and --decode-steps greedy decode steps for every variant, the
variants interleaved (pruned, dense, pruned, dense, ...) so that both see the same
machine. Both variants run the same graphs: "dense" is the engine with pruning off.
Prints prefill ms, decode ms/token and the round's peak RSS (median [min-max] over the
rounds) for each, their ratios, and the FLOPs ratio of the pruned schedule.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

from ..errors import FastAVError
from ..user_io.output_paths import write_text_atomic
from .arg_types import non_negative_int, positive_int, seed, thread_count
from .options import add_pruning_arguments, engine_preset_target, pruning_config_from_args
from .output_checks import check_output_files

EXAMPLES = """examples:
  fastav-export bench engines/videollama2-tiny-fp32
  fastav-export bench engines/videollama2-tiny-fp32 --rounds 10 --decode-steps 64 --json bench.json
  fastav-export bench engines/videollama2-fp16 --embeds embeds.npy --layout layout.json
"""

log = logging.getLogger("fastav_export")
VARIANTS = ("pruned", "dense")


def add_arguments(parser) -> None:
    parser.add_argument("engine", metavar="ENGINE_DIR", type=Path, help="engine directory from `fastav-export build`")
    parser.add_argument("--layout", metavar="FILE", type=Path, help="token layout JSON (default: the engine's)")
    add_pruning_arguments(parser)
    group = parser.add_argument_group("benchmark")
    group.add_argument("--embeds", metavar="FILE.npy", type=Path,
                       help="decoder input embeddings, float32 [N, D] or [B, N, D] (default: synthetic)")
    group.add_argument("--batch", type=positive_int, default=1, help="rows of synthetic inputs (default 1)")
    group.add_argument("--seed", type=seed, default=0, help="seed of the synthetic inputs (default 0)")
    group.add_argument("--rounds", type=positive_int, default=5, help="timed rounds per variant (default 5)")
    group.add_argument("--warmup", type=non_negative_int, default=1,
                       help="untimed rounds per variant first (default 1)")
    group.add_argument("--decode-steps", type=positive_int, default=32,
                       help="greedy decode steps per round (default 32)")
    group.add_argument("--backend", choices=("ort", "trt"), help="default: trt where its engines can run, else ort")
    group.add_argument("--threads", type=thread_count, help="ONNX Runtime intra-op threads (default: all cores)")
    group.add_argument("--json", metavar="FILE", type=Path, help="also write every round's figures as JSON")


def main(args) -> int:
    from ..contract.flops import flops_report
    from ..contract.layout import TokenLayout
    from ..contract.precision import BYTES
    from ..contract.pruning_config import PruningConfig
    from ..contract.synthetic_inputs import synthetic_embeds
    from ..engine.manifest import load_engine_dir
    from ..runtime.backends import default_backend, open_engine_backend
    from ..runtime.bench import Series, format_stats, run_round
    from .run_command import check_run_inputs

    check_output_files(args, {"--json": args.json})
    manifest = load_engine_dir(args.engine)
    dims = manifest.dims
    layout = TokenLayout.load(args.layout) if args.layout is not None else manifest.layout
    pruned = pruning_config_from_args(args, None, dims.num_layers, base=manifest.pruning,
                                      target=engine_preset_target(manifest, layout))
    dense = replace(PruningConfig.dense(), global_layer=manifest.global_layer).resolve(dims.num_layers)
    if args.decode_steps + 1 > manifest.max_new_tokens:  # named by this command's flag, not run's
        raise FastAVError(f"--decode-steps {args.decode_steps}: {args.decode_steps + 1} new tokens exceed the engine's "
                          f"limit of {manifest.max_new_tokens}: use at most {manifest.max_new_tokens - 1} steps, "
                          f"or rebuild it with `fastav-export build --max-new-tokens {args.decode_steps + 1}`")
    args.max_new_tokens = args.decode_steps + 1  # what run's input checks size the buffers by
    embeds = check_run_inputs(args, layout, dims, dense, BYTES[manifest.precision])

    backend_name = args.backend or default_backend(manifest)
    backends = {"pruned": open_engine_backend(manifest, layout, pruned, backend_name, args.threads,
                                              max_new_tokens=args.max_new_tokens)}
    backends["dense"] = open_engine_backend(manifest, layout, dense, graphs=backends["pruned"].graphs,
                                            max_new_tokens=args.max_new_tokens)  # the same loaded graphs
    if embeds is None:
        embeds = synthetic_embeds(backends["pruned"].embedding_table(), layout, args.batch, args.seed)
    report = flops_report(dims, backends["pruned"].schedule)
    print(f"engine: {args.engine} ({manifest.model}, {manifest.numerics}, {manifest.flavour} graphs), "
          f"{backend_name} backend on {backends['pruned'].device}, batch {embeds.shape[0]}")
    print(f"layout: {layout.describe()}")
    print(f"pruned: {pruned.describe()}")
    print(f"rounds: {args.warmup} warm-up + {args.rounds} timed, each one prefill + {args.decode_steps} "
          "decode steps per variant, interleaved")

    series = {name: Series() for name in VARIANTS}
    for index in range(args.warmup + args.rounds):
        results = {name: run_round(backends[name], embeds, args.decode_steps) for name in VARIANTS}
        if index >= args.warmup:
            for name, result in results.items():
                series[name].rounds.append(result)
        log.info(f"round {index + 1}/{args.warmup + args.rounds}{' (warm-up)' if index < args.warmup else ''}: "
                 + ", ".join(f"{name} prefill {result.prefill_ms:.1f} ms" for name, result in results.items()))

    print(f"{'variant':<8} {'prefill ms':>24} {'decode ms/token':>24} {'peak RSS MiB':>24}   (median [min-max])")
    for name in VARIANTS:
        print(f"{name:<8} {format_stats(series[name], 'prefill_ms'):>24} "
              f"{format_stats(series[name], 'decode_ms_per_token', 2):>24} "
              f"{format_stats(series[name], 'peak_rss_mb', 0):>24}")
    ratios = {key: series["pruned"].stats(key)[0] / series["dense"].stats(key)[0]
              for key in ("prefill_ms", "decode_ms_per_token")}
    print(f"ratio (pruned / dense, medians): prefill {ratios['prefill_ms']:.3f}, "
          f"decode {ratios['decode_ms_per_token']:.3f}")
    print(f"FLOPs ratio (pruned / dense): {report.describe()}")
    if args.json is not None:
        write_text_atomic(args.json, json.dumps({
            "engine": str(args.engine), "backend": backend_name, "batch": int(embeds.shape[0]),
            "n_tokens": layout.n_tokens, "decode_steps": args.decode_steps,
            "variants": {name: series[name].to_json() for name in VARIANTS},
            "ratio": ratios, "flops_ratio": report.to_json()}, indent=1) + "\n")
        log.info(f"wrote {args.json}")
    return 0
