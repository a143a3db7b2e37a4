"""Compare an engine with a reference through Polygraphy: whole pipeline, then graph by graph.

Both sides run the whole FastAV pipeline (prefill, pruning, greedy decoding) as Polygraphy
runners on the same inputs; Polygraphy's Comparator checks the first-step `logits`
within a tolerance, and the kept-token indices of every layer >= K (`kept.<l>`) and the
generated `tokens` exactly. Inputs are seeded synthetic embeddings over the engine's
layout (`--inputs N` iterations, seeds S..S+N-1), or Polygraphy input JSON.

When the comparison fails, every graph (pre, each TopKGather, each post layer, then one
decode step) is fed the reference's inputs on the engine and compared with the
reference's outputs: the report names the first graph and layer that diverges.
--save-graph-data DIR writes those per-graph inputs and reference outputs in
Polygraphy's JSON formats, with the `polygraphy run` command that checks each graph.

Default logit tolerance (atol; rtol 0): fp32 1e-4, fp16 1e-2, bf16 5e-2. Exit code 0
when the comparison passes, 1 when it fails, 2 on a usage error.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..user_io.output_paths import write_text_atomic
from .arg_types import positive_int, seed, thread_count, tolerance
from .output_checks import check_output_dirs, check_output_files

EXAMPLES = """examples:
  fastav-export compare engines/videollama2-tiny-fp32 --against torch
  fastav-export compare engines/videollama2-tiny-fp32 --against torch --inputs 3 --batch 2 --report report.json
  fastav-export compare engines/videollama2-tiny-fp32 --against torch --save-graph-data graph-data
  fastav-export compare engines/videollama2-tiny-fp32 --against torch --load-inputs inputs.json --atol 1e-3
  fastav-export compare engines/videollama2-7b-fp16 --backend trt --against ort      # on a TensorRT machine
"""

REFERENCES = ("torch", "ort", "trt")
log = logging.getLogger("fastav_export")


def add_arguments(parser) -> None:
    parser.add_argument("engine", metavar="ENGINE_DIR", type=Path, help="engine directory from `fastav-export build`")
    group = parser.add_argument_group("what to compare")
    group.add_argument("--against", choices=REFERENCES, default="torch",
                       help="reference: torch (the fp32 PyTorch model the engine was built from), or another "
                            "backend of the same engine (default torch)")
    group.add_argument("--backend", choices=("ort", "trt"),
                       help="the engine side (default: trt when built with TensorRT and a GPU is present, else ort)")
    group.add_argument("--max-new-tokens", type=positive_int, default=8,
                       help="greedy tokens generated per input (default 8)")
    group.add_argument("--threads", type=thread_count, help="ONNX Runtime intra-op threads (default 0: all cores)")
    group = parser.add_argument_group("inputs")
    source = group.add_mutually_exclusive_group()
    source.add_argument("--inputs", type=positive_int, default=1, metavar="N",
                        help="synthetic inputs: N iterations with seeds S..S+N-1 (default 1)")
    source.add_argument("--load-inputs", metavar="FILE", type=Path,
                        help="Polygraphy input JSON: a list of {inputs_embeds: float32 [B, N, D]}")
    group.add_argument("--batch", type=positive_int, default=1, help="rows per synthetic input (default 1)")
    group.add_argument("--seed", type=seed, default=0, help="seed S of the first synthetic input (default 0)")
    group.add_argument("--save-inputs", metavar="FILE", type=Path,
                       help="write the inputs as Polygraphy input JSON (for --load-inputs, `polygraphy run`)")
    group = parser.add_argument_group("tolerances and reports")
    group.add_argument("--atol", type=tolerance, help="logits: absolute tolerance, finite and >= 0 (default by "
                                                      "precision: fp32 1e-4, fp16 1e-2, bf16 5e-2)")
    group.add_argument("--rtol", type=tolerance, help="logits: relative tolerance, finite and >= 0 (default 0)")
    group.add_argument("--report", metavar="FILE.json", type=Path,
                       help="write the verdict, per-output differences and the first diverging graph")
    group.add_argument("--save-graph-data", metavar="DIR", type=Path,
                       help="write every graph's inputs and reference outputs as Polygraphy JSON, "
                            "with the `polygraphy run` commands that check them")


def main(args) -> int:
    from ..optional import check_installed, require

    require("polygraphy", "fastav-export compare")
    if "trt" in (args.against, args.backend):
        check_installed("tensorrt", "the TensorRT backend")
    check_output_files(args, {"--report": args.report, "--save-inputs": args.save_inputs})
    check_output_dirs(args, {"--save-graph-data": args.save_graph_data})
    from ..compare.session import Comparison

    comparison = Comparison(args.engine, against=args.against, backend=args.backend, threads=args.threads,
                            max_new_tokens=args.max_new_tokens, atol=args.atol, rtol=args.rtol)
    _quiet_polygraphy(args)
    if args.load_inputs is not None:
        feeds = comparison.load_inputs(args.load_inputs)
    else:
        feeds = comparison.synthetic_inputs(args.inputs, args.batch, args.seed)
    report = comparison.run(feeds, save_inputs=args.save_inputs, graph_data=args.save_graph_data)
    if args.report is not None:
        write_text_atomic(args.report, json.dumps(report, indent=2) + "\n")
        log.info(f"wrote {args.report}")
    print(report["summary"])
    return 0 if report["passed"] else 1


def _quiet_polygraphy(args) -> None:
    from polygraphy.logger import G_LOGGER

    if args.quiet:
        G_LOGGER.module_severity = G_LOGGER.WARNING
    elif args.verbose:
        G_LOGGER.module_severity = G_LOGGER.VERBOSE
