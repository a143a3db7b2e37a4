"""Model families as plug-ins: one folder each, behind one `Family` interface (`base.py`).

    base.py          the `Family` interface and its registry (get_family, family_for_model_type)
    media_rules.py   clip -> encoder inputs -> prompt media rows (MediaRules, AudioFeatures, MediaTensors)
    videollama2/     VideoLLaMA2-AV
    video_salmonn2/  video-SALMONN 2
    qwen2_5_omni/    Qwen2.5-Omni's thinker (M-RoPE positions, per 2 s chunk video and audio)

A family folder holds its specs, snapshot key names and loading, encoders, media preprocessing and
layout rule, and family-only options; importing it registers its specs and its `Family`. The
helpers below are what the other layers call: none of them, and nothing outside `models/`, asks
which family it has.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ...contract.dims import DecoderDims
from ...errors import FastAVError
from ..media_parts import MediaParts
from ..registry import ModelSpec
from . import qwen2_5_omni, video_salmonn2, videollama2  # noqa: F401  (registration side effects)
from .base import (
    ClipLayout,
    Family,
    all_families,
    family_for_model_type,
    family_names,
    find_family,
    get_family,
    load_qwen2_decoder,
    qwen2_decoder_dims,
)
from .media_rules import MediaRecord, MediaRules

__all__ = ["ClipLayout", "Family", "MediaRecord", "MediaRules", "add_family_options", "all_families", "checkpoint_decoder_dims",
           "family_for_model_type", "load_decoder",
           "family_names", "family_of_media_section", "family_options", "find_family", "get_family",
           "given_family_flags", "layout_for_duration", "load_media_parts", "longest_prompt"]


def add_family_options(parser: argparse.ArgumentParser) -> None:
    """Every family's own argument group (each family's flags are refused for the others' models)."""
    for family in all_families():
        family.add_options(parser)


def given_family_flags(args: argparse.Namespace) -> list[str]:
    """The family-only flags the command line set, of every family."""
    return [flag for family in all_families() for flag in family.given_flags(args)]


def family_options(args: argparse.Namespace, spec: ModelSpec | None):
    """The options object of `spec`'s family from the flags (None when none is given: the defaults);
    a flag of another family is one line naming it."""
    for family in all_families():
        given = family.given_flags(args)
        if given and (spec is None or spec.family != family.name):
            verb = "applies" if len(given) == 1 else "apply"
            raise FastAVError(f"{', '.join(given)} {verb} to {family.name} models only: drop "
                              f"{'it' if len(given) == 1 else 'them'}")
    family = find_family(spec.family) if spec is not None else None
    return family.options_from_args(args) if family is not None else None


def load_media_parts(spec: ModelSpec, dims: DecoderDims, checkpoint: Path | None = None,
                     vision_tower: Path | None = None, seed: int = 0, options=None) -> MediaParts:
    """The encoders and tokenizer of `spec` (seeded random for tiny models) or of `checkpoint`.

    options: the family's options object (`family_options`; None: its defaults)."""
    family = find_family(spec.family)
    if family is None or not spec.has_media:
        raise FastAVError(f"{spec.name} has no media path in fastav-export: pass --embeds")
    if checkpoint is None:
        if not spec.is_tiny:
            raise FastAVError(f"{spec.name}'s encoders need real weights: pass --checkpoint DIR")
        if vision_tower is not None:
            raise FastAVError("--vision-tower applies to --checkpoint: drop it for a tiny model")
    return family.load_media_parts(spec, dims, checkpoint, vision_tower, seed, options)


def checkpoint_decoder_dims(spec: ModelSpec | None, config: dict, where: str) -> DecoderDims:
    """The decoder dimensions of a checkpoint's config.json, read by `spec`'s family (plain Qwen2: none)."""
    family = find_family(spec.family) if spec is not None else None
    return family.decoder_dims(config, where) if family is not None else qwen2_decoder_dims(config, where)


def load_decoder(spec: ModelSpec | None, checkpoint: Path | None, seed: int, dtype, device="cpu",
                 attn_implementation: str = "sdpa"):
    """The decoder of `checkpoint` or `spec`'s seeded random weights, loaded by `spec`'s family."""
    family = find_family(spec.family) if spec is not None else None
    if family is None:
        return load_qwen2_decoder(spec, checkpoint, seed, dtype, device, attn_implementation)
    return family.load_decoder(spec, checkpoint, seed, dtype, device, attn_implementation)


def longest_prompt(spec: ModelSpec, layout, options) -> int:
    """Tokens of the longest prompt `spec`'s encoders give on `layout` (`Family.longest_prompt`)."""
    family = find_family(spec.family)
    return family.longest_prompt(spec, layout, options) if family is not None else layout.n_tokens


def layout_for_duration(spec: ModelSpec, seconds: float) -> ClipLayout:
    """The layout of a `seconds` long clip of `spec`'s model, with its default layout's text around the media
    (`Family.layout_for_duration`); one FastAVError line where its media rows do not follow the clip."""
    family = find_family(spec.family)
    default = spec.default_layout()
    found = (family.layout_for_duration(spec, seconds, default.segments[0].length, default.segments[-1].length)
             if family is not None and spec.has_media else None)
    if found is None:
        raise FastAVError(f"--duration applies to models whose layout follows the clip's length; {spec.name}'s "
                          "media rows are fixed: drop it")
    return found


def family_of_media_section(media: dict) -> str:
    """The family of an engine manifest's media section: its `family`, or for manifests written before
    that was recorded, the family whose media section it matches."""
    if media.get("family") is not None:
        return media["family"]
    for family in all_families():
        if family.wrote_media_section(media):
            return family.name
    raise FastAVError("the engine's media section names no model family: rebuild it with `fastav-export build`")
