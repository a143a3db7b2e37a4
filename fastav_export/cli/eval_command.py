"""Accuracy of pruning policies on a dataset of questions about videos, against their FLOPs.

Every sample runs under every policy in --policies through the same code path as
`fastav-export run --video --question` (greedy decoding, so a prediction is reproducible:
predictions.jsonl records the question as asked). The answer is matched to the reference
(a lettered option, yes/no, or a normalised open answer: docs/eval.md states the rules) and
--out gets predictions.jsonl, summary.json, summary.md and, with matplotlib, accuracy_vs_flops.png.

Policies: dense (pruning off), preset (the engine's own), rollout[:B], positional:cutoff=N,keep_audio=K,
keep_chunks:F and preset:FILE; a key=value piece continues the policy before it.

Datasets are read from local files (nothing is downloaded): jsonl (this project's), music-avqa,
avqa and avhbench (their public JSON). On random-weight tiny models the accuracy means nothing:
the command is for real checkpoints.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..errors import FastAVError
from ..user_io.output_paths import write_text_atomic
from .arg_types import positive_int, seed, thread_count
from .options import add_model_arguments
from .output_checks import check_output_dirs

EXAMPLES = """examples:
  fastav-export eval engines/videollama2-tiny-fp32 --data questions.jsonl --out eval-run
  fastav-export eval engines/videollama2-fp16 --data avqa_val.json --format avqa --media-root videos/ --limit 500
  fastav-export eval ENGINE_DIR --data music_avqa_test.json --format music-avqa --media-root MUSIC-AVQA/videos \\
      --policies dense,preset,rollout:0.1,rollout:0.2,rollout:0.4 --out sweep
  fastav-export eval ENGINE_DIR --data questions.jsonl --policies dense,keep_chunks:2 --preset preset.json
  fastav-export eval --checkpoint ./VideoLLaMA2.1-7B-AV --data questions.jsonl --device cuda --dtype bfloat16
  fastav-export eval ENGINE_DIR --data questions.jsonl --out eval-run --resume   # continue an interrupted run
"""

DEFAULT_POLICIES = "dense,preset"
OUTPUTS = ("summary.json", "summary.md", "accuracy_vs_flops.png")
log = logging.getLogger("fastav_export")


def add_arguments(parser) -> None:
    from ..evaluation.datasets import FORMATS

    parser.add_argument("engine", metavar="ENGINE_DIR", nargs="?", type=Path,
                        help="engine directory from `fastav-export build` (default: the torch reference of --model or "
                             "--checkpoint)")
    add_model_arguments(parser)
    group = parser.add_argument_group("dataset")
    group.add_argument("--data", metavar="FILE", type=Path, required=True, help="the questions (a local file)")
    group.add_argument("--format", choices=FORMATS, metavar="F",
                       help=f"the file's format: {', '.join(FORMATS)} (default: jsonl for a .jsonl file)")
    group.add_argument("--media-root", metavar="DIR", type=Path,
                       help="where the dataset's media paths start (default: the data file's directory)")
    group.add_argument("--limit", type=positive_int, metavar="N", help="the first N samples only")
    group = parser.add_argument_group("policies and generation")
    group.add_argument("--policies", metavar="LIST", default=DEFAULT_POLICIES,
                       help=f"comma-separated pruning policies (default {DEFAULT_POLICIES})")
    group.add_argument("--preset", metavar="FILE", type=Path,
                       help="also run the policy of this preset file (`fastav-export calibrate --out`)")
    group.add_argument("--max-new-tokens", type=positive_int, default=16, metavar="N", help="longest answer (default 16)")
    group = parser.add_argument_group("output")
    group.add_argument("--out", metavar="DIR", type=Path,
                       help="directory of predictions.jsonl and the summaries (default eval-<data file's stem>)")
    group.add_argument("--resume", action="store_true",
                       help="continue the run in --out: samples already in predictions.jsonl are skipped")
    group = parser.add_argument_group("execution")
    group.add_argument("--backend", choices=("torch", "ort", "trt"),
                       help="default with ENGINE_DIR: trt where its engines can run, else ort; torch without")
    group.add_argument("--threads", type=thread_count, help="ENGINE_DIR on ONNX Runtime: intra-op threads")
    group.add_argument("--device", help="torch backend: cpu or cuda[:N] (default cpu)")
    group.add_argument("--dtype", choices=("float32", "float16", "bfloat16"),
                       help="torch backend: weights and activations (default float32)")
    group.add_argument("--vision-tower", metavar="DIR", type=Path,
                       help="--checkpoint: a local SigLIP snapshot, when the checkpoint does not hold the vision tower")
    group.add_argument("--seed", type=seed, default=0, help="seed of the tiny models' random weights (default 0)")


def main(args) -> int:
    from ..contract.pruning_policy import parse_policies, parse_policy
    from ..evaluation.datasets import read_dataset
    from ..evaluation.run import PREDICTIONS, check_predictions_file

    out = args.out if args.out is not None else Path(f"eval-{args.data.stem}")
    args.out = out
    _check_flags(args)
    check_output_dirs(args, {"--out": out}, extra=[("--data", args.data)] + (
        [("--media-root", args.media_root)] if args.media_root is not None else []))
    check_predictions_file(out / PREDICTIONS, args.resume)
    policies = parse_policies(args.policies)
    if args.preset is not None:
        policies.append(parse_policy(f"preset:{args.preset}"))
    samples = read_dataset(args.data, args.format, args.media_root, args.limit)  # before any model loads
    with _open_engine(args) as engine:
        engine.check(max_new_tokens=args.max_new_tokens)  # an engine without encoders answers no sample
        runs = _policy_runs(engine, policies, args.max_new_tokens)
        return _evaluate(args, engine, samples, runs, out)


def _check_flags(args) -> None:
    if args.layout is not None:
        raise FastAVError("--layout does not apply to eval: each sample's layout comes from its clip and question")
    if not args.data.is_file():
        raise FastAVError(f"--data {args.data} is not a file")
    if args.media_root is not None and not args.media_root.is_dir():
        raise FastAVError(f"--media-root {args.media_root} is not a directory")
    if args.preset is not None and not args.preset.is_file():
        raise FastAVError(f"--preset {args.preset} is not a file")
    if args.engine is not None:
        if args.model or args.checkpoint:
            raise FastAVError("ENGINE_DIR already fixes the model: drop --model/--checkpoint")
        if args.backend == "torch":
            raise FastAVError("ENGINE_DIR runs on ort or trt, not --backend torch: drop ENGINE_DIR to run the torch "
                              "reference")
        given = [flag for flag, value in (("--device", args.device), ("--dtype", args.dtype),
                                          ("--vision-tower", args.vision_tower)) if value is not None]
        if given:
            raise FastAVError(f"{', '.join(given)} only apply to the torch backend: drop them")
    else:
        if args.backend in ("ort", "trt"):
            raise FastAVError(f"--backend {args.backend} runs an engine directory: pass ENGINE_DIR")
        if args.threads is not None:
            raise FastAVError("--threads sets ONNX Runtime's threads for ENGINE_DIR: drop it for the torch backend")
        if args.vision_tower is not None and args.checkpoint is None:
            raise FastAVError("--vision-tower goes with --checkpoint")


def _open_engine(args):
    """The Engine that answers: ENGINE_DIR's, or the torch reference of --model / --checkpoint."""
    from ..api.engine import Engine
    from ..api.runners import EngineDirRunner, ReferenceRunner
    from .options import check_weights_available, decoder_dims, resolve_spec

    if args.engine is not None:
        from ..engine.manifest import load_engine_dir

        return Engine(EngineDirRunner(load_engine_dir(args.engine), args.backend, args.threads))
    spec = resolve_spec(args)
    if spec is None or not spec.has_media:
        raise FastAVError(f"{getattr(spec, 'name', 'a plain Qwen2 checkpoint')} has no encoders or tokenizer: "
                          "eval answers questions about videos")
    check_weights_available(args, spec)
    name = Path(args.checkpoint).resolve().name if args.checkpoint else spec.name
    return Engine(ReferenceRunner.load(spec, decoder_dims(args, spec), name, args.checkpoint, args.vision_tower,
                                       seed=args.seed, device=args.device or "cpu", dtype=args.dtype or "float32"))


def _policy_runs(engine, policies, max_new_tokens: int):
    """Each policy resolved against the engine and checked (K, rollout graph, new tokens) before any sample."""
    from ..evaluation.run import PolicyRun

    runs = []
    for policy in policies:
        try:
            config = engine.check(policy, max_new_tokens, name=lambda setting: setting)
        except FastAVError as exc:
            raise FastAVError(f"policy {policy.name!r}: {exc}") from None
        runs.append(PolicyRun(policy.name, config))
    return runs


def _evaluate(args, engine, samples, runs, out: Path) -> int:
    from ..evaluation.plot import matplotlib_available, plot_accuracy_vs_flops
    from ..evaluation.run import PREDICTIONS, run_evaluation
    from ..evaluation.scoring import summarize, summary_markdown

    out.mkdir(parents=True, exist_ok=True)
    log.info(f"eval: {len(samples)} samples x {len(runs)} policies on {engine.description}")

    def progress(work):
        import sys

        from tqdm import tqdm

        # A log file gets a line every 30 s, a terminal a live bar.
        return tqdm(work, desc="eval", unit="answer", disable=args.quiet or not work, dynamic_ncols=True,
                    mininterval=0.1 if sys.stderr.isatty() else 30.0)

    try:
        records = run_evaluation(engine, samples, runs, out / PREDICTIONS, args.max_new_tokens, args.resume,
                                 progress)
    except KeyboardInterrupt:
        log.warning(f"interrupted: every answer so far is in {out / PREDICTIONS}; run the same command with "
                    "--resume to continue")
        raise
    summary = summarize(records, [run.name for run in runs])
    summary = {"model": engine.model, "backend": engine.backend, "data": str(args.data),
               "samples": len(samples), **summary}
    title = f"{engine.model} on {args.data.name} ({len(samples)} samples, {engine.backend})"
    markdown = summary_markdown(summary, title)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_text_atomic(out / "summary.md", markdown)
    figure = plot_accuracy_vs_flops(summary, out / "accuracy_vs_flops.png", title)
    if figure is None and not matplotlib_available():
        log.info("accuracy_vs_flops.png skipped: matplotlib is not installed (`pip install fastav-export[plots]`)")
    print(markdown, end="" if markdown.endswith("\n") else "\n")
    print(f"wrote {out / PREDICTIONS}, {out / 'summary.json'}, {out / 'summary.md'}"
          + (f", {figure}" if figure is not None else ""))
    return 0
