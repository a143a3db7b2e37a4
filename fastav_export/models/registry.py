"""Model registry: one declarative `ModelSpec` per supported model.

A family's `spec.py` (`families/<name>/spec.py`) declares each model's decoder dimensions,
default token layout, paper-like pruning preset and media settings, and calls `register`; its
`Family` object (`families/base.py`) registers the checkpoint model_types it loads. Adding a
family is one folder under `models/families/` (specs, `Family` subclass, encoders, media rules)
plus its import in `families/__init__.py`; the CLI, build, runtime and serving reach it through
the `Family` interface, and the tests through one row of `tests/families.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..contract.dims import DecoderDims
from ..contract.interleave import FrameInterleave
from ..contract.layout import TokenLayout
from ..contract.pruning_config import PruningConfig
from ..errors import FastAVError
from ..media.settings import AudioSettings, VideoSettings

# LLaVA's IMAGE_TOKEN_INDEX, which video-SALMONN 2 (LLaVA-OneVision base) and plain
# checkpoints use for the multimodal placeholder; VideoLLaMA2 uses its own.
DEFAULT_PLACEHOLDER_ID = -200


@dataclass(frozen=True)
class ModelSpec:
    """One registered model.

    name:             registry name (`videollama2`, `videollama2-tiny`, ...).
    family:           the family's name (`families.get_family`); checkpoints map to it by model_type.
    dims:             decoder dimensions.
    default_layout:   builds the model's default layout.
    preset:           the paper-like pruning config (positional rule) for this model.
    hf_id:            the upstream checkpoint this spec describes (documentation only).
    random_init_std:  tiny variants: std of the seeded random weights (None: real model,
                      needs --checkpoint for real weights).
    placeholder_id:   the token id that marks the video/audio rows in a prompt's input ids.
    video, audio:     the media preprocessing of the model's encoders (None: the model has no
                      media path yet, only the decoder).
    interleave:       a per-frame layout whose counts follow the clip's duration (video-SALMONN 2);
                      None: the media rows are the default layout's, whatever the clip.
    """

    name: str
    family: str
    dims: DecoderDims
    default_layout: Callable[[], TokenLayout]
    preset: PruningConfig = field(default_factory=PruningConfig)
    hf_id: str = ""
    description: str = ""
    random_init_std: float | None = None
    placeholder_id: int = DEFAULT_PLACEHOLDER_ID
    video: VideoSettings | None = None
    audio: AudioSettings | None = None
    interleave: FrameInterleave | None = None

    @property
    def has_media(self) -> bool:
        return self.video is not None and self.audio is not None

    @property
    def is_tiny(self) -> bool:
        return self.random_init_std is not None


_REGISTRY: dict[str, ModelSpec] = {}
# config.json `model_type` -> family, declared by each family module.
_CHECKPOINT_TYPES: dict[str, str] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def register_checkpoint_type(model_type: str, family: str) -> None:
    _CHECKPOINT_TYPES[model_type] = family


def checkpoint_types() -> list[str]:
    """The config.json model_type values a checkpoint may have (plain Qwen2's and every family's)."""
    return sorted(_CHECKPOINT_TYPES)


def get_model_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise FastAVError(f"unknown model {name!r}: choose one of {', '.join(model_names())}") from None


def model_names() -> list[str]:
    return sorted(_REGISTRY)


def all_specs() -> list[ModelSpec]:
    return [_REGISTRY[n] for n in model_names()]


def family_for_model_type(model_type: str) -> str | None:
    return _CHECKPOINT_TYPES.get(model_type)


def placeholder_id_for(model: str) -> int:
    """The placeholder id of a registered model (DEFAULT_PLACEHOLDER_ID for other names, e.g. an engine
    built from a checkpoint directory)."""
    spec = _REGISTRY.get(model)
    return spec.placeholder_id if spec is not None else DEFAULT_PLACEHOLDER_ID


def family_of(model: str) -> str | None:
    """The family of a registered model name (None for other names, e.g. an engine built from a checkpoint
    directory)."""
    spec = _REGISTRY.get(model)
    return spec.family if spec is not None else None
