"""Derive a positional pruning preset from attention rollout over sample inputs.

For each sample, the PyTorch reference runs the dense layers 0..K-1 and the streaming
rollout (no N x N maps) gives every position's importance; the mean importance over the
samples picks the positional rule (cutoff and first audio tokens; first frames for
interleaved layouts) that keeps the fewest candidates while holding at least --keep-mass
of the candidates' rollout mass. The preset (`--out`) records the rule and its provenance;
`build --preset` and `run --preset` use it. Also printed: how stable the rule is (the rule
of each half of the samples, the mass it holds per sample), its FLOPs ratio at the 7B
dimensions, and with --held-out the overlap of online rollout with the rule.

Samples: .npy embeddings files ([N, D] or [B, N, D], the model's layout), directories or
globs of them, or video files with --question (the media path builds their prompts).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..errors import FastAVError
from .arg_types import seed, utf8_text

EXAMPLES = """examples:
  fastav-export calibrate --model videollama2-tiny --samples samples/ --out preset.json
  fastav-export calibrate --model videollama2-tiny --samples 'samples/*.npy' --alpha 0.5,0.8 --plots plots/
  fastav-export calibrate --model videollama2-tiny --samples clips/*.mp4 --question "What happens?" --out preset.json
  fastav-export calibrate --checkpoint ./VideoLLaMA2.1-7B-AV --samples embeds/ --held-out heldout/ --out vl2.json
  fastav-export build --preset preset.json && fastav-export run --model videollama2-tiny --preset preset.json
"""
DEFAULT_KEEP_MASS = 0.9
log = logging.getLogger("fastav_export")


def _unit_interval(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is outside (0, 1]")
    return value


def _alphas(text: str) -> list[float]:
    import argparse

    values = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not a number (give alphas like 0.5 or 0.5,0.8)") from None
        if not 0.0 <= value <= 1.0:
            raise argparse.ArgumentTypeError(f"alpha {value} is outside [0, 1]")
        if value not in values:
            values.append(value)
    return values


def add_arguments(parser) -> None:
    from .options import add_model_arguments

    add_model_arguments(parser)
    group = parser.add_argument_group("calibration")
    group.add_argument("--samples", metavar="PATH", nargs="+", required=True,
                       help=".npy embeddings files, directories or globs of them, or video files (with --question)")
    group.add_argument("--question", metavar="TEXT", type=utf8_text,
                       help="the question of video samples (one layout for all)")
    group.add_argument("--global-layer", type=int, metavar="K", help="the layer the rule prunes before (default L/2)")
    group.add_argument("--alpha", type=_alphas, default=[0.5], metavar="A[,A...]",
                       help="rollout residual weight(s); the preset uses the first, the others are reported "
                            "(default 0.5)")
    group.add_argument("--keep-mass", type=_unit_interval, default=DEFAULT_KEEP_MASS, metavar="F",
                       help=f"share of the candidates' mean rollout mass the rule must keep, in (0, 1] "
                            f"(default {DEFAULT_KEEP_MASS})")
    group.add_argument("--rollout-queries", choices=("all", "text", "last"), default="all",
                       help="query rows averaged into the importance (default all)")
    group.add_argument("--held-out", metavar="PATH", nargs="+",
                       help="samples to compare online rollout with the rule on (Jaccard of the kept candidates)")
    group.add_argument("--out", metavar="FILE", type=Path, required=True, help="the preset JSON to write")
    group.add_argument("--plots", metavar="DIR", type=Path,
                       help="write the paper's Figure 2 for this model and the importance plot as PNG files "
                            "(needs matplotlib: pip install fastav-export[plots])")
    group.add_argument("--json", metavar="FILE", type=Path, help="also write the full report as JSON")
    group.add_argument("--seed", type=seed, default=0, help="seed of the tiny models' weights (default 0)")
    group.add_argument("--random-weights", action="store_true",
                       help="allow seeded random weights for a full-size model (benchmarks)")


def main(args) -> int:
    import torch

    from ..calibration.calibrate import calibrate, held_out_overlap, mass_summary
    from ..calibration.samples import sample_paths
    from ..contract.preset import PresetTarget
    from ..user_io.output_paths import write_text_atomic
    from .options import check_weights_available, decoder_dims, load_decoder, resolve_spec
    from .output_checks import check_output_dirs, check_output_files

    # Everything the user gave is checked before the model is loaded; the samples are found
    # first so that no output can overwrite one of them.
    paths = sample_paths(args.samples)
    held = sample_paths(args.held_out, "--held-out") if args.held_out else []
    samples_read = [("--samples", path) for path in paths] + [("--held-out", path) for path in held]
    check_output_files(args, {"--out": args.out, "--json": args.json}, samples_read)
    if args.plots is not None:
        from ..calibration.plots import check_plots_available

        check_plots_available()
        check_output_dirs(args, {"--plots": args.plots}, samples_read)
    spec = resolve_spec(args)
    if spec is not None:
        check_weights_available(args, spec)
    dims = decoder_dims(args, spec)
    K = args.global_layer if args.global_layer is not None else dims.num_layers // 2
    if not 1 <= K <= dims.num_layers - 1:
        raise FastAVError(f"--global-layer {K} is outside 1..{dims.num_layers - 1} (the decoder has "
                          f"{dims.num_layers} layers)")
    model = load_decoder(args, spec, torch.float32) if spec is not None else None
    if model is None:
        raise FastAVError("a plain Qwen2 checkpoint needs --model of its family (videollama2 or video-salmonn2)")
    samples, layout = _load_samples(args, spec, dims, model, paths, "--samples")
    held_samples = _load_samples(args, spec, dims, model, held, "--held-out", layout)[0] if held else []

    result = calibrate(model, layout, samples, K, args.alpha, args.keep_mass, args.rollout_queries,
                       progress=log.info)
    report = _report(args, spec, dims, result)
    if held_samples:
        overlaps = held_out_overlap(model, layout, result.rule, held_samples, K, result.alpha, args.rollout_queries)
        report["held_out_overlap"] = {"samples": [s.name for s in held_samples], "jaccard": overlaps,
                                      **mass_summary(overlaps)}
    _print(report, result)
    name = Path(args.checkpoint).resolve().name if args.checkpoint else spec.name
    target = PresetTarget.of(name, spec.family, result.layout, dims.num_layers)
    write_text_atomic(args.out, _preset_text(result, report, target))
    print(f"wrote {args.out}: use it with `fastav-export build --preset {args.out}` or `run --preset {args.out}`")
    if args.plots is not None:
        for path in _plots(args, model, result, samples[0]):
            print(f"wrote {path}")
    if args.json is not None:
        write_text_atomic(args.json, json.dumps(report, indent=2) + "\n")
    return 0


def _load_samples(args, spec, dims, model, paths, flag, layout=None):
    """([Sample], layout): embeddings files on the model's layout (or --layout), videos on their prompt's."""
    from ..calibration.calibrate import Sample
    from ..calibration.samples import is_embeddings
    from ..contract.layout import INTERLEAVED
    from ..user_io.embeds_file import load_embeds
    from .options import resolve_layout

    samples = []
    videos = [path for path in paths if not is_embeddings(path)]
    if videos:
        if args.question is None:
            raise FastAVError(f"{flag} {videos[0]} is a video: give the question of the video samples with --question")
        prompts_layout, video_samples = _video_samples(args, spec, dims, model, videos, flag)
        # Interleaved clips each keep their own layout (their rule is in frames); others must share one.
        if layout is not None and prompts_layout != layout and not (
                layout.arrangement == prompts_layout.arrangement == INTERLEAVED):
            raise FastAVError(f"{flag}: the video samples' layout differs from the other samples'")
        layout = layout or prompts_layout
        samples += video_samples
    layout = layout or resolve_layout(args, spec)
    for path in (p for p in paths if is_embeddings(p)):
        embeds = load_embeds(path, dims.hidden_size, flag)
        if embeds.shape[1] != layout.n_tokens:
            raise FastAVError(f"{flag} {path} has {embeds.shape[1]} tokens but the layout {layout.describe()} has "
                              f"{layout.n_tokens}: pass samples of the model's layout, or the matching --layout")
        for row in range(embeds.shape[0]):
            name = path.name if embeds.shape[0] == 1 else f"{path.name}[{row}]"
            samples.append(Sample(name, embeds[row:row + 1]))
    return samples, layout


def _video_samples(args, spec, dims, model, videos, flag):
    """The videos' prompts, built as `run` and `eval` build them (`Engine.prompt_inputs`) on the loaded model."""
    import torch

    from ..api.engine import Engine
    from ..api.runners import ReferenceRunner
    from ..calibration.calibrate import Sample
    from ..media.decode import NoAudioTrack
    from ..models.families import load_media_parts

    if not spec.has_media:
        raise FastAVError(f"{spec.name} has no media path: pass .npy embeddings samples")
    parts = load_media_parts(spec, dims, args.checkpoint, None, seed=args.seed)
    samples, layout = [], None
    with Engine(ReferenceRunner(spec, dims, parts, model, spec.name, torch.device("cpu"), torch.float32)) as engine:
        for path in videos:
            try:
                prompt, embeds, _ = engine.prompt_inputs(path, args.question)
            except NoAudioTrack as exc:  # calibrate takes no separate audio: the sample itself must change
                raise FastAVError(f"{exc}: calibrate's video samples need their own audio track; drop it from "
                                  f"{flag}, or pass the samples as .npy embeddings") from None
            layout = layout or prompt.layout
            samples.append(Sample(path.name, embeds, prompt.layout,
                                  None if prompt.positions is None else torch.as_tensor(prompt.positions)))
    return layout, samples


def _report(args, spec, dims, result) -> dict:
    from .. import __version__
    from ..calibration.calibrate import flops_at_7b, mass_summary

    candidates = int(result.layout.candidate_mask().sum())
    rule = result.rule
    flops = flops_at_7b(result.layout, rule)
    return {
        "model": str(args.checkpoint) if args.checkpoint else spec.name,
        "fastav_export": __version__,
        "layout": result.layout.to_json(),
        "samples": result.samples,
        "global_layer": result.global_layer,
        "alpha": result.alpha,
        "rollout_queries": args.rollout_queries,
        "keep_mass": result.keep_mass,
        "rule": {"cutoff": rule.cutoff, "keep_audio": rule.keep_audio, "keep_frames": rule.keep_frames},
        "kept_candidates": rule.kept,
        "candidates": candidates,
        "mass_retained": rule.mass,
        "per_sample_mass": mass_summary(result.per_sample_mass),
        "halves": [None if r is None else {"rule": r.describe(), "kept": r.kept} for r in result.halves],
        "alphas": {str(alpha): {"rule": r.describe(), "kept": r.kept, "mass": r.mass}
                   for alpha, r in result.rules.items()},
        "flops_ratio_7b": flops.to_json(),
    }


def _print(report: dict, result) -> None:
    rule = result.rule
    count = len(result.samples)
    print(f"calibrated on {count} sample{'s' if count != 1 else ''} of {report['model']} ({result.layout.describe()}), "
          f"global layer {result.global_layer}, keep-mass {result.keep_mass}")
    if len(set(result.layouts)) > 1:
        print(f"  the clips differ in length ({len(set(result.layouts))} layouts; the first is shown): the rule in "
              "frames is chosen over the importance of each frame")
    for alpha, each in result.rules.items():
        mark = "  <- preset" if alpha == result.alpha else ""
        print(f"  alpha {alpha}: {each.describe()}: keeps {each.kept} of {report['candidates']} candidates, "
              f"{each.mass:.1%} of the rollout mass{mark}")
    if not result.halves:
        print("stability: the halves need 2 samples or more")
    else:
        print(f"stability: first half -> {result.halves[0].describe()} ({result.halves[0].kept} kept); "
              f"second half -> {result.halves[1].describe()} ({result.halves[1].kept} kept)")
    masses = report["per_sample_mass"]
    print(f"mass the rule holds per sample: min {masses['min']:.1%}, median {masses['median']:.1%}")
    flops = report["flops_ratio_7b"]
    print(f"FLOPs ratio at the 7B dims (this layout, K = 14): paper formula {flops['paper']:.4f}, "
          f"exact MACs {flops['exact_macs']:.4f}")
    held = report.get("held_out_overlap")
    if held:
        print("held-out: online rollout at the same budget vs the calibrated rule (Jaccard of kept candidates)")
        for name, value in zip(held["samples"], held["jaccard"]):
            print(f"  {name:<40} {value:.3f}")
        print(f"  {'min / median':<40} {held['min']:.3f} / {held['median']:.3f}")
    print(f"rule: {rule.describe()}")


def _preset_text(result, report: dict, target) -> str:
    from ..contract.preset import preset_json
    from ..contract.pruning_config import PruningConfig

    config = result.rule.config(PruningConfig(global_layer=result.global_layer, alpha=result.alpha,
                                              rollout_queries=report["rollout_queries"]))
    return preset_json(config, {"calibrate": report}, target)


def _plots(args, model, result, sample) -> list[Path]:
    from ..calibration.figure import figure_layers, rollout_maps
    from ..calibration.plots import plot_attention_and_rollout, plot_importance
    from ..contract.pruning_config import PruningConfig
    from ..contract.selection import positional_keep_mask

    layers = figure_layers(model.config.num_hidden_layers, result.global_layer)
    maps = rollout_maps(model, result.layout, sample.embeds, layers, result.alpha, sample.position_ids())
    config = result.rule.config(PruningConfig(global_layer=result.global_layer))
    kept = positional_keep_mask(result.layout, config)
    return [
        plot_attention_and_rollout(maps, result.layout, args.plots / "attention_rollout.png",
                                   f"{sample.name}: head-mean attention A_l and rollout R_l (alpha {result.alpha})"),
        plot_importance(result.mean_importance(), result.layout, args.plots / "importance.png",
                        f"mean rollout importance at layer {result.global_layer} over {len(result.samples)} samples",
                        kept=kept, cutoff=result.rule.cutoff),
    ]
