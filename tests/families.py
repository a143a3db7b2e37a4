"""The model families the tests run, one row each (as optimum's PYTORCH_EXPORT_MODELS_TINY).

A test that holds for every family takes its family from `TINY_FAMILIES` (`family_cases`); a new
family joins by one row here. What only one family does is tested in tests/models/families/<name>/.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest
import torch

from fastav_export.models import get_model_spec
from fastav_export.models.registry import ModelSpec


def fbank_window(spec: ModelSpec, count: int | None, generator: torch.Generator) -> torch.Tensor:
    """VideoLLaMA2-AV's audio input: one filterbank window [1, T, M] (filterbank values are large)."""
    return 10 * torch.randn(1, spec.audio.fbank_frames, spec.audio.mel_bins, generator=generator)


def whisper_chunks(spec: ModelSpec, count: int | None, generator: torch.Generator) -> torch.Tensor:
    """video-SALMONN 2's audio input: `count` Whisper feature chunks [C, 128, 3000]."""
    return torch.randn(count or 2, spec.audio.mel_bins, 3000, generator=generator)


def _omni_towers():
    from fastav_export.models.families.qwen2_5_omni.tiny_config import tiny_thinker_config

    config = tiny_thinker_config()
    return config.vision_config, config.audio_config


def omni_patches(spec: ModelSpec, count: int | None, generator: torch.Generator) -> tuple:
    """Qwen2.5-Omni's vision input: the patches of a grid of `count` temporal patches (4 x 6 each) and
    the tables of that grid, in the vision graph's input order."""
    from fastav_export.models.families.qwen2_5_omni.vision_tables import vision_graph_inputs

    vision, _ = _omni_towers()
    grid = (count or 2, 4, 6)
    width = vision.in_channels * vision.temporal_patch_size * vision.patch_size ** 2
    patches = torch.randn(grid[0] * grid[1] * grid[2], width, generator=generator)
    return tuple(vision_graph_inputs(patches, [grid], vision).values())


def omni_features(spec: ModelSpec, count: int | None, generator: torch.Generator) -> tuple:
    """Qwen2.5-Omni's audio input: `count` (default 2) encoder windows of log-mel features [128, L] (the
    last one partial) and their tables, in the audio graph's input order."""
    from fastav_export.models.families.qwen2_5_omni.audio_tables import audio_graph_inputs

    _, audio = _omni_towers()
    frames = 2 * audio.n_window * ((count or 2) - 1) + 37
    return tuple(audio_graph_inputs(torch.randn(audio.num_mel_bins, frames, generator=generator), audio).values())


@dataclass(frozen=True)
class FamilyCase:
    """family: the registered family name; model: its tiny model (seeded random weights).
    audio_sample: (spec, count, generator) -> an audio encoder input of `count` chunks (None: its one shape).
    vision_counts, audio_counts: the frame / chunk counts its encoder graphs must take ((None,): one clip's
        static shapes).
    slow_answer: the engine-vs-reference answer over a clip takes more than a few seconds.
    family_flags: one of its family-only flags with a value (() when it has none).
    static_encoders: its encoder graphs have one clip's shapes, so TensorRT builds them engines too.
    video_sample: (spec, count, generator) -> a vision encoder input of `count` frames (None: frames of
        the spec's image size).
    positions_rows: rows of its decoder's position ids (3: M-RoPE, [3, B, N]).
    layout_follows_clip: a clip's length sets its media rows (`flops --duration` applies).
    needs_sound: a clip without an audio track needs --audio or --silent-audio (False: the model runs it
        on its video rows alone, as Qwen2.5-Omni's processor does without `use_audio_in_video`)."""

    family: str
    model: str
    audio_sample: Callable[[ModelSpec, int | None, torch.Generator], torch.Tensor]
    vision_counts: tuple[int | None, ...] = (None,)
    audio_counts: tuple[int | None, ...] = (None,)
    slow_answer: bool = False
    family_flags: tuple[str, ...] = ()
    static_encoders: bool = True
    video_sample: Callable[[ModelSpec, int | None, torch.Generator], torch.Tensor | tuple] | None = None
    positions_rows: int = 1
    layout_follows_clip: bool = False
    needs_sound: bool = True

    @property
    def spec(self) -> ModelSpec:
        return get_model_spec(self.model)

    @property
    def full_size_spec(self) -> ModelSpec:
        """The family's real model (counts need no weights: `flops` runs it anywhere)."""
        from fastav_export.models.families import get_family

        return get_family(self.family).full_size_spec()

    def vision_sample(self, count: int | None, generator: torch.Generator) -> torch.Tensor | tuple:
        if self.video_sample is not None:
            return self.video_sample(self.spec, count, generator)
        video = self.spec.video
        return torch.randn(count or video.num_frames, 3, video.image_size, video.image_size, generator=generator)


TINY_FAMILIES = (
    FamilyCase("videollama2", "videollama2-tiny", fbank_window),
    FamilyCase("video-salmonn2", "video-salmonn2-tiny", whisper_chunks, vision_counts=(1, 5), audio_counts=(1, 3),
               slow_answer=True, family_flags=("--audio-window", "0.25"), static_encoders=False,
               layout_follows_clip=True),
    FamilyCase("qwen2.5-omni", "qwen2.5-omni-tiny", omni_features, vision_counts=(1, 3), audio_counts=(1, 3),
               slow_answer=True, static_encoders=False, video_sample=omni_patches, positions_rows=3,
               layout_follows_clip=True, needs_sound=False),
)


def family_cases(where: Callable[[FamilyCase], bool] = lambda case: True, slow: Callable[[FamilyCase], bool] =
                 lambda case: False) -> list:
    """The rows for `pytest.mark.parametrize`, ids by family; rows for which `slow` holds are marked slow."""
    return [pytest.param(case, id=case.family, marks=[pytest.mark.slow] if slow(case) else [])
            for case in TINY_FAMILIES if where(case)]


def other_family(case: FamilyCase) -> FamilyCase:
    """Another row than `case` (for flags that belong to one family only)."""
    return next(other for other in TINY_FAMILIES if other.family != case.family)
