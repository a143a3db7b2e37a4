"""Options shared by commands: which model, which layout, which pruning settings.

Every pruning flag starts from the model's paper-like preset and overrides one value,
so `--cutoff 500` keeps the preset's other rules.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path

from ..contract.layout import TokenLayout
from ..contract.run_limits import check_layout_positions, check_run_memory  # noqa: F401 (the commands' import)
from ..contract.pruning_config import (
    GLOBAL_POLICIES,
    ROLLOUT_QUERIES,
    PruningConfig,
    cli_flag,
)
from ..errors import FastAVError
from ..models import get_model_spec, model_names
from ..models.registry import ModelSpec

DEFAULT_MODEL = "videollama2-tiny"
log = logging.getLogger("fastav_export")


def add_model_arguments(parser: argparse.ArgumentParser, checkpoint: bool = True,
                        default: str = DEFAULT_MODEL) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", metavar="NAME", choices=model_names(),
                       help=f"registered model: {', '.join(model_names())} (default {default})")
    if checkpoint:
        group.add_argument("--checkpoint", metavar="DIR", type=Path,
                           help="local Hugging Face snapshot (Qwen2, VideoLLaMA2 or video-SALMONN 2; safetensors or "
                                "weights-only .bin)")
    group.add_argument("--layout", metavar="FILE", type=Path,
                       help='token layout JSON: [{"kind": "text|video|audio", "length": N, "frame": F}, ...]')


def add_family_arguments(parser: argparse.ArgumentParser) -> None:
    """Each model family's own argument group (settings only that family's models take)."""
    from ..models.families import add_family_options

    add_family_options(parser)


def family_options(args, spec):
    """The options object of `spec`'s family from its flags (None when none is given: the defaults);
    one line for a flag of another family."""
    from ..models.families import family_options as options_of

    return options_of(args, spec)


def given_family_flags(args) -> list[str]:
    """The family-only flags the command line set."""
    from ..models.families import given_family_flags as given

    return given(args)


def add_pruning_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pruning (defaults: the model's paper-like preset)")
    group.add_argument("--global-layer", type=int, metavar="K", help="layer that first sees the global cut (default L/2)")
    group.add_argument("--fine-ratio", type=float, metavar="P", help="share of candidates dropped per later layer (default 0.2)")
    group.add_argument("--alpha", type=float, help="rollout residual weight (default 0.5)")
    group.add_argument("--global-policy", choices=GLOBAL_POLICIES, help="global cut policy (default positional)")
    group.add_argument("--global-budget", type=str, metavar="B",
                       help="rollout: candidates to keep, a count (300) or a fraction (0.25 or 25%%; a "
                            "whole decimal like 1.0 is refused); default: as many as the positional rule keeps")
    group.add_argument("--rollout-queries", choices=ROLLOUT_QUERIES, help="query rows averaged by rollout (default all)")
    group.add_argument("--cutoff", type=int, help="positional: keep candidates below this position")
    group.add_argument("--keep-audio", type=int, metavar="K", help="positional: keep the first K audio tokens")
    group.add_argument("--keep-frames", "--keep-chunks", dest="keep_frames", type=int, metavar="F",
                       help="positional: keep every candidate of frames 0..F-1 (a layout's frame: video-SALMONN 2's "
                            "1 s frame, Qwen2.5-Omni's 2 s chunk of video and audio, hence --keep-chunks)")
    group.add_argument("--no-prune", action="store_true", help="dense model: no global or fine pruning")
    group.add_argument("--preset", metavar="FILE", type=Path,
                       help="start from a pruning preset file (`fastav-export calibrate --out`); flags still "
                            "override one value each")


def resolve_spec(args) -> ModelSpec | None:
    """The spec that gives the default layout and preset: --model's, else the checkpoint family's
    full-size spec (None for a plain Qwen2 checkpoint, which has no layout of its own), with what
    the checkpoint's config.json sets (VideoLLaMA2: num_frames)."""
    checkpoint = getattr(args, "checkpoint", None)
    if checkpoint is None:
        return get_model_spec(args.model or DEFAULT_MODEL)
    from ..api.models import checkpoint_spec

    return checkpoint_spec(checkpoint, args.model)


def resolve_layout(args, spec: ModelSpec | None) -> TokenLayout:
    if args.layout is not None:
        return TokenLayout.load(args.layout)
    if spec is None:
        raise FastAVError("a plain Qwen2 checkpoint has no default layout: pass --layout FILE (or --model of its family)")
    return spec.default_layout()


PRUNING_FLAGS = ("global_layer", "fine_ratio", "alpha", "global_policy", "rollout_queries", "cutoff", "keep_audio",
                 "keep_frames", "global_budget")


def engine_preset_target(manifest, layout: TokenLayout | None = None):
    """The preset target of an engine directory: its model (the family where the name is registered)
    on `layout` (default: the layout it was built for)."""
    from ..contract.preset import PresetTarget
    from ..models.registry import family_of

    return PresetTarget.of(manifest.model, family_of(manifest.model), layout or manifest.layout,
                         manifest.dims.num_layers)


def pruning_config_from_args(args, spec: ModelSpec | None, num_layers: int,
                             base: PruningConfig | None = None, target=None) -> PruningConfig:
    """`base` (an engine's built config) or the model preset, with the command line's
    overrides, validated and resolved.

    target: the PresetTarget a `--preset` is applied to: a preset for another layout kind or model
    family is refused, one for another size of the same model logged as a warning.
    """
    overrides = {name: getattr(args, name) for name in PRUNING_FLAGS if getattr(args, name) is not None}
    preset = getattr(args, "preset", None)
    if preset is not None:
        if args.no_prune:
            raise FastAVError("--no-prune turns pruning off, so --preset would be ignored: drop one")
        from ..contract.preset import load_preset

        loaded = load_preset(preset, num_layers, target)
        if loaded.warning:
            log.warning(f"warning: {loaded.warning}")
        base = loaded.config
    if args.no_prune:
        ignored = [cli_flag(name) for name in overrides if name != "global_layer"]
        if ignored:  # silently dropping them would hide a mistake
            raise FastAVError(f"--no-prune turns pruning off, so {', '.join(ignored)} would be ignored: drop one")
        dense = PruningConfig.dense()
        if base is not None:  # an engine's graphs fix K
            dense = replace(dense, global_layer=base.global_layer)
        return dense.with_overrides({k: v for k, v in overrides.items() if k == "global_layer"}, num_layers)
    if base is not None:
        config = base
    elif spec is not None:
        config = spec.preset
    else:  # a plain Qwen2 checkpoint has no preset: rollout keeping a quarter of the candidates
        config = PruningConfig(global_policy="rollout", global_budget=0.25)
    return config.with_overrides(overrides, num_layers)


def pruning_source(args, num_layers: int) -> dict:
    """Where the pruning config of a build came from, for its manifest: a preset file (path, sha256,
    provenance), or the model's preset and the flags that overrode it."""
    flags = sorted(name for name in PRUNING_FLAGS if getattr(args, name, None) is not None)
    if getattr(args, "preset", None) is not None:
        from ..contract.preset import load_preset

        return {**load_preset(args.preset, num_layers).source(), "overridden": flags}
    return {"kind": "flags" if args.no_prune else "model preset", "overridden": flags}


def decoder_dims(args, spec: ModelSpec | None):
    """The decoder's dimensions, read from --checkpoint's config when given."""

    if getattr(args, "checkpoint", None) is None:
        return spec.dims
    from ..api.models import checkpoint_dims

    return checkpoint_dims(spec, args.checkpoint)


def check_weights_available(args, spec: ModelSpec) -> None:
    if args.checkpoint is None and not spec.is_tiny and not args.random_weights:
        raise FastAVError(f"{spec.name} has no built-in weights: pass --checkpoint DIR, use {spec.name}-tiny, "
                          "or --random-weights for benchmarks")


def resolve_model(args):
    """(spec, layout, dims, pruning config) of --model/--checkpoint and the pruning flags,
    all validated before any weights are loaded. spec is None for a plain Qwen2 checkpoint."""
    spec = resolve_spec(args)
    layout = resolve_layout(args, spec)
    if spec is not None:
        check_weights_available(args, spec)
    dims = decoder_dims(args, spec)
    model = Path(args.checkpoint).resolve().name if getattr(args, "checkpoint", None) else spec.name
    from ..contract.preset import PresetTarget

    target = PresetTarget.of(model, spec.family if spec is not None else None, layout, dims.num_layers)
    return spec, layout, dims, pruning_config_from_args(args, spec, dims.num_layers, target=target)


def load_decoder(args, spec: ModelSpec | None, dtype, device="cpu", attn_implementation: str = "sdpa"):
    """The decoder of --checkpoint, or `spec`'s seeded random weights (its family's loading)."""
    from ..models.families import load_decoder as family_decoder

    return family_decoder(spec, getattr(args, "checkpoint", None), getattr(args, "seed", 0), dtype, device,
                          attn_implementation)
