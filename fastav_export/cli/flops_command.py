"""Print the pruning schedule (tokens per layer) and FLOPs ratios of a model.

Counts only: no weights are loaded, so the real 7B models work on any machine. Exact
MACs are given with early drop (what the exported graphs compute: a layer whose output
is cut runs its output projection and MLP for the kept tokens only) and without.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..contract.preset import PresetTarget
from ..errors import FastAVError
from ..user_io.output_paths import write_text_atomic
from .arg_types import clip_seconds
from .options import (
    add_model_arguments,
    add_pruning_arguments,
    check_layout_positions,
    pruning_config_from_args,
    resolve_layout,
)
from .output_checks import check_output_files

EXAMPLES = """examples:
  fastav-export flops --model videollama2
  fastav-export flops --model video-salmonn2 --keep-frames 8 --json flops.json
  fastav-export flops --model video-salmonn2 --duration 45
  fastav-export flops --model qwen2.5-omni --duration 30
  fastav-export flops --model videollama2 --global-policy rollout --global-budget 0.1
"""

# Counting needs no weights, so the default is the real model, not its tiny twin.
DEFAULT_MODEL = "videollama2"
log = logging.getLogger("fastav_export")


def add_arguments(parser) -> None:
    add_model_arguments(parser, checkpoint=False, default=DEFAULT_MODEL)
    add_pruning_arguments(parser)
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write the per-layer figures as JSON")
    parser.add_argument("--duration", metavar="SECONDS", type=clip_seconds,
                        help="models whose layout follows the clip (video-salmonn2, qwen2.5-omni): the layout "
                             "of a clip of this length, by the model's own rule (default: a 30 s clip)")


def main(args) -> int:
    from ..contract.flops import flops_report
    from ..contract.schedule import make_schedule
    from ..models import get_model_spec

    check_output_files(args, {"--json": args.json})
    spec = get_model_spec(args.model or DEFAULT_MODEL)
    clip = _clip_layout(args, spec)
    layout = clip.layout if clip is not None else resolve_layout(args, spec)
    check_layout_positions(layout, spec.dims)
    config = pruning_config_from_args(args, spec, spec.dims.num_layers,
                                      target=PresetTarget.of(spec.name, spec.family, layout, spec.dims.num_layers))
    schedule = make_schedule(layout, config, spec.dims.num_layers)
    report = flops_report(spec.dims, schedule)
    print(f"model: {spec.name} ({spec.description})")
    if clip is not None:
        print(f"clip: {clip.description}")
    print(f"layout: {layout.describe()}")
    print(f"pruning: {config.describe()}")
    print(f"{'layer':>5} {'tokens':>7} {'candidates':>10} {'paper GFLOPs':>13} {'exact GMACs':>12} "
          f"{'(no early drop)':>16}")
    for layer, n in enumerate(schedule.tokens):
        print(f"{layer:>5} {n:>7} {schedule.candidates[layer]:>10} {report.paper[layer] / 1e9:>13.2f} "
              f"{report.exact[layer] / 1e9:>12.2f} {report.exact_no_drop[layer] / 1e9:>16.2f}")
    print(f"FLOPs ratio (pruned / dense): {report.describe()}")
    if args.json:
        write_text_atomic(args.json, json.dumps(
            {"model": spec.name, "n_tokens": layout.n_tokens, "tokens": list(schedule.tokens),
             "candidates": list(schedule.candidates), "paper_flops": list(report.paper),
             "exact_macs": list(report.exact), "exact_macs_without_early_drop": list(report.exact_no_drop),
             "flops_ratio": report.to_json(), "pruning": config.to_dict()},
            indent=1))
        log.info(f"wrote {args.json}")
    return 0


def _clip_layout(args, spec):
    """--duration's layout (`ClipLayout`) by the model's family rule; None without --duration."""
    if args.duration is None:
        return None
    from ..models.families import layout_for_duration

    if args.layout is not None:
        raise FastAVError("--duration and --layout both set the layout: drop one")
    return layout_for_duration(spec, args.duration)
