"""The `fastav-export` command line.

Building the parser imports nothing heavy: each command's module is imported when
that command runs, so `--help` works (and is fast) without optional packages.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from ..errors import FastAVError

# command -> (module, one-line help). Each module defines add_arguments() and main().
COMMANDS = {
    "build": ("fastav_export.cli.build_command", "export the decoder as FastAV graphs and build an engine directory"),
    "run": ("fastav_export.cli.run_command", "generate with FastAV pruning and print the schedule"),
    "flops": ("fastav_export.cli.flops_command", "print per-layer token counts and FLOPs ratios"),
    "bench": ("fastav_export.cli.bench_command", "time an engine's prefill and decode, pruned vs dense"),
    "compare": ("fastav_export.cli.compare_command", "check an engine against a reference with Polygraphy"),
    "triton": ("fastav_export.cli.triton_command", "render a Triton Inference Server model repository for an engine"),
    "serve-openai": ("fastav_export.cli.serve_openai_command",
                     "serve an OpenAI-compatible chat API in front of a running tritonserver"),
    "calibrate": ("fastav_export.cli.calibrate_command", "derive a positional pruning preset from attention rollout"),
    "eval": ("fastav_export.cli.eval_command", "accuracy of pruning policies on a dataset of video questions, with FLOPs"),
    "sample-clip": ("fastav_export.cli.sample_clip_command", "write a sample video clip (moving colours, 440 Hz tone)"),
    "sample-dataset": ("fastav_export.cli.sample_dataset_command", "write sample clips and questions to try eval on"),
}

EPILOG = """examples:
  fastav-export build
  fastav-export sample-clip clip.mp4
  fastav-export run engines/videollama2-tiny-fp32 --video clip.mp4 --question "What is happening?"
  fastav-export run engines/videollama2-tiny-fp32 --json out.json
  fastav-export run --model videollama2-tiny --backend torch
  fastav-export run --model videollama2-tiny --global-policy rollout --json out.json
  fastav-export flops --model videollama2
  fastav-export flops --model video-salmonn2 --keep-frames 8
  fastav-export bench engines/videollama2-tiny-fp32 --json bench.json
  fastav-export compare engines/videollama2-tiny-fp32 --against torch
  fastav-export triton engines/videollama2-tiny-fp32 --out model_repository
  fastav-export serve-openai --triton localhost:8001 --model videollama2-tiny-fp32
  fastav-export calibrate --model videollama2-tiny --samples samples/ --out preset.json
  fastav-export eval engines/videollama2-tiny-fp32 --data questions.jsonl --policies dense,preset,rollout:0.3
"""


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse prints usage + error; users get one line that points at --help."""

    def error(self, message):
        sys.stderr.write(f"error: {message} (see `{self.prog} --help`)\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="fastav-export",
        description="Export, run and check FastAV token pruning for audio-visual LLM decoders.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"fastav-export {__version__}")
    verbosity = argparse.ArgumentParser(add_help=False)
    verbosity.add_argument("-v", "--verbose", action="store_true", help="print debug messages")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="print only results and errors")
    verbosity.add_argument("--log-file", metavar="FILE", help="also write log messages to FILE")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineErrorParser)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(name, help=help_text, description=module.__doc__, parents=[verbosity],
                             epilog=getattr(module, "EXAMPLES", None),
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(cmd)
        cmd.set_defaults(_main=module.main)
    return parser


def _setup_logging(args) -> None:
    """Our messages at the chosen level; other libraries' only from WARNING up (the
    ONNX exporter and optimiser are chatty at INFO)."""
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    handlers = [logging.StreamHandler(sys.stderr)]
    if args.log_file:
        from .output_checks import check_output_files

        check_output_files(args, {"--log-file": args.log_file})
        handlers.append(logging.FileHandler(args.log_file))
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=handlers, force=True)
    logging.getLogger("fastav_export").setLevel(level)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        _setup_logging(args)
        code = args._main(args) or 0
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
        return code
    except FastAVError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader left (`fastav-export flops | head -3`): what it wanted was printed. Point
        # stdout at /dev/null so Python's own flush at exit does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141  # 128 + SIGPIPE, as a shell reports a command a closed pipe ended
