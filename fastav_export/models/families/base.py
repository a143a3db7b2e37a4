"""The `Family` interface: everything the other layers may ask of a model family, and its registry.

A family (one folder under `models/families/`) registers its ModelSpecs and one `Family` object.
The CLI, the build, the runtime and serving call these methods with a spec's `family` name or an
engine manifest's `media.family`, and never ask which family they hold.
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from pathlib import Path
from typing import NamedTuple

from ...contract.dims import DecoderDims
from ...contract.layout import TokenLayout
from ...errors import FastAVError
from ..registry import ModelSpec, all_specs, register_checkpoint_type


class ClipLayout(NamedTuple):
    """The layout of a clip of some length (`Family.layout_for_duration`), and one line that says how the
    clip became it (frames, chunks, tokens each), for `flops --duration`."""

    layout: TokenLayout
    description: str


class Family(ABC):
    """One model family.

    name:        the family name specs carry (`ModelSpec.family`) and manifests record (`media.family`).
    model_types: the checkpoint config.json `model_type` values this family loads.
    """

    name: str
    model_types: tuple[str, ...] = ()

    def specs(self) -> list[ModelSpec]:
        """The registered models of this family (tiny and full size)."""
        return [spec for spec in all_specs() if spec.family == self.name]

    def full_size_spec(self) -> ModelSpec | None:
        """The real (non-tiny) spec, the one a checkpoint of this family starts from."""
        return next((spec for spec in self.specs() if not spec.is_tiny), None)

    def for_checkpoint(self, spec: ModelSpec, config: dict, where: str) -> ModelSpec:
        """`spec` as a checkpoint whose config.json (`config`, read from `where`) sets it up (default: as is)."""
        return spec

    # The decoder.
    def decoder_dims(self, config: dict, where: str) -> DecoderDims:
        """The decoder dimensions a checkpoint's config.json (`config`, read from `where`) sets (default:
        its Qwen2 settings)."""
        return qwen2_decoder_dims(config, where)

    def load_decoder(self, spec: ModelSpec, checkpoint: Path | None, seed: int, dtype, device,
                     attn_implementation: str):
        """The decoder the reference and the export run (a transformers Qwen2ForCausalLM, or a module shaped
        like one: `.model.layers`, `.model.rotary_emb`, `.model.norm`, `.model.embed_tokens`, `.lm_head`,
        `.config`): the checkpoint's, or `spec`'s seeded random weights (default: Qwen2's loading)."""
        return load_qwen2_decoder(spec, checkpoint, seed, dtype, device, attn_implementation)

    # Family-only command-line options (onnxruntime-genai's `--extra_options` is the precedent: the global
    # CLI stays small, each family adds one argument group).
    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """Add this family's argument group to `parser` (default: none)."""

    def given_flags(self, args: argparse.Namespace) -> list[str]:
        """The family-only flags the command line set, as typed (`--audio-window`); [] when none."""
        return []

    def options_from_args(self, args: argparse.Namespace):
        """This family's options object from the flags, or None when none was given (the defaults)."""
        return None

    # The media path.
    @abstractmethod
    def load_media_parts(self, spec: ModelSpec, dims: DecoderDims, checkpoint: Path | None,
                         vision_tower: Path | None, seed: int, options):
        """The encoders and tokenizer (`media_parts.MediaParts`): seeded random for a tiny spec without
        `checkpoint`, else read from the snapshot (with the loading report in `sources`)."""

    def layout_for_duration(self, spec: ModelSpec, seconds: float, prefix_tokens: int,
                            suffix_tokens: int) -> ClipLayout | None:
        """The layout of a `seconds` long clip with `prefix_tokens` / `suffix_tokens` of text around its media
        (counts only, no clip is read); None where the media rows do not follow the clip's length (default)."""
        return None

    def longest_prompt(self, spec: ModelSpec, layout: TokenLayout, options) -> int:
        """Tokens of the longest prompt the encoders can give (default: the layout's, the clip is fixed)."""
        return layout.n_tokens

    @abstractmethod
    def media_rules(self, media) -> "MediaRules":  # noqa: F821  (media_rules.MediaRules)
        """How a clip becomes encoder inputs and how encoder rows become the prompt's media rows.

        media: what the build recorded (`media_rules.MediaRecord`: settings, layout, options)."""

    def wrote_media_section(self, media: dict) -> bool:
        """True when an engine manifest's media section without `family` (written before it was recorded)
        came from this family; such manifests are read as this family's."""
        return False

    def write_tiny_snapshot(self, directory: Path, seed: int = 0, **variants) -> Path:
        """A tiny snapshot on disk with the real key names and file kinds (tests); `variants` are the
        family's own switches (a missing part, another weights file, ...)."""
        raise FastAVError(f"{self.name} has no tiny snapshot writer")


def qwen2_decoder_dims(config: dict, where: str) -> DecoderDims:
    """The dimensions of a Qwen2 decoder's config.json settings (plain Qwen2 and the Qwen2-based families)."""
    from ..checkpoint import qwen2_config_from

    return DecoderDims.from_qwen2_config(qwen2_config_from(config, where))


def load_qwen2_decoder(spec: ModelSpec | None, checkpoint: Path | None, seed: int, dtype, device,
                       attn_implementation: str):
    """transformers' Qwen2ForCausalLM of `checkpoint`, or `spec`'s seeded random weights."""
    import logging

    if checkpoint is not None:
        from ..checkpoint import load_qwen2_checkpoint

        loaded = load_qwen2_checkpoint(checkpoint, dtype=dtype, device=device, attn_implementation=attn_implementation)
        logging.getLogger("fastav_export").info(f"loaded the decoder of {checkpoint} from {loaded.source}; "
                                                f"{loaded.describe_skipped()}")
        return loaded.model
    from ...user_io.memory import check_fits
    from ..model_factory import build_model

    # Random weights are drawn in fp32, then cast: both copies exist for a moment.
    check_fits(spec.dims.parameter_count() * (4 + dtype.itemsize),
               f"{spec.name}'s random weights ({spec.dims.parameter_count() / 1e9:.2f} B parameters)",
               "use a machine with more memory, or the model's -tiny variant")
    return build_model(spec, seed=seed, dtype=dtype, device=device, attn_implementation=attn_implementation)


_FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Register `family` and the checkpoint model_types it claims."""
    if family.name in _FAMILIES:
        raise ValueError(f"family {family.name!r} registered twice")
    _FAMILIES[family.name] = family
    for model_type in family.model_types:
        register_checkpoint_type(model_type, family.name)
    return family


def family_names() -> list[str]:
    return sorted(_FAMILIES)


def all_families() -> list[Family]:
    return [_FAMILIES[name] for name in family_names()]


def find_family(name: str | None) -> Family | None:
    """The family registered as `name`; None for an unknown name or None (plain Qwen2 has none)."""
    return _FAMILIES.get(name) if name is not None else None


def get_family(name: str) -> Family:
    """The family registered as `name`; one FastAVError line for another name."""
    family = find_family(name)
    if family is None:
        raise FastAVError(f"model family {name!r} has no media path in fastav-export "
                          f"(known: {', '.join(family_names())})")
    return family


def family_for_model_type(model_type: str) -> Family | None:
    """The family that loads checkpoints of config.json `model_type` (None: no family has a media path
    for it, e.g. plain `qwen2`)."""
    return next((family for family in all_families() if model_type in family.model_types), None)
