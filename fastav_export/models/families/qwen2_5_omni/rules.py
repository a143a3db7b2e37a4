"""Qwen2.5-Omni's media rules: a clip -> its encoders' inputs -> the chunked prompt and its TMRoPE positions.

    clip --PyAV, qwen-omni-utils' sampling and sizes--> patches + grid (t, h, w), Whisper features
         --tables of the grid / feature length (vision_tables, audio_tables)--> encoder graph inputs
         --encoders--> video rows (grid order), audio rows (time order)
         --chunk_layout--> [prefix][chunk 0: video, audio][chunk 1: ...][suffix], positions [3, N]

A clip without sound runs without audio rows (the prompt then lacks `<|audio_bos|>` / `<|audio_eos|>`),
as Qwen's processing does without `use_audio_in_video`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING

from ....contract.layout import TokenLayout
from ....media.settings import AudioSettings
from ..media_rules import AudioFeatures, EncoderSample, MediaRecord, MediaRules, MediaTensors, Source

if TYPE_CHECKING:
    import numpy as np
    import torch

# The manifest's media options: the towers' settings the tables are computed from.
VISION_KEYS = ("spatial_merge_size", "window_size", "patch_size", "temporal_patch_size", "in_channels")
AUDIO_KEYS = ("n_window", "num_mel_bins")


def tower_options(vision_config, audio_config) -> dict:
    """What a build records of the towers' configs, for the tables a run computes."""
    return {"vision": {key: getattr(vision_config, key) for key in VISION_KEYS},
            "audio": {key: getattr(audio_config, key) for key in AUDIO_KEYS}}


class OmniAudioFeatures(AudioFeatures):
    """input_features [128, L]: Whisper's log-mel features of the whole track (at most 300 s), L its
    valid frames, as Qwen2.5-Omni's processor computes them (`audio_features.py`)."""

    name = "qwen2.5-omni"

    def decoded_seconds(self, settings: AudioSettings, clip_seconds: float | None) -> float | None:
        return settings.seconds

    def read_track(self, video: Source, settings: AudioSettings, clip_seconds: float | None) -> np.ndarray:
        from ....media.decode import read_audio

        return read_audio(video, settings.sample_rate, max_seconds=settings.seconds)

    def features(self, waveform: np.ndarray, settings: AudioSettings, clip_seconds: float | None,
                 from_file: bool) -> torch.Tensor:
        from .audio_features import omni_audio_features

        return omni_audio_features(waveform)[0]

    def sample(self, settings: AudioSettings) -> torch.Tensor:
        import torch

        return torch.zeros(settings.mel_bins, 237)


@dataclass
class OmniTensors(MediaTensors):
    """MediaTensors whose pixel_values / fbank are the encoder graphs' inputs (tuples), plus the clip's
    grid and audio length (`media.OmniMediaTensors`), which the layout and positions follow."""

    clip: object = None


class OmniMediaRules(MediaRules):
    vision_io = None  # set from encoders.VISION_GRAPH_IO / AUDIO_GRAPH_IO in __init__
    audio_io = None

    def __init__(self, record: MediaRecord):
        super().__init__(record)
        from .encoders import AUDIO_GRAPH_IO, VISION_GRAPH_IO

        self.vision_io = tuple(tuple(names) for names in VISION_GRAPH_IO)
        self.audio_io = tuple(tuple(names) for names in AUDIO_GRAPH_IO)
        options = record.options
        self.vision_config = SimpleNamespace(**options.get("vision", {}))
        self.audio_config = SimpleNamespace(**options.get("audio", {}))

    @property
    def static_encoders(self) -> bool:
        return False  # the grid and the track's length follow the clip

    def warm_up(self) -> None:
        from .audio_features import omni_feature_extractor

        omni_feature_extractor()

    def prompt_parts(self, tokenizer, question: str, modal_token: str, with_audio: bool = True):
        from .chat import omni_prompt_parts

        return omni_prompt_parts(tokenizer, question, with_audio)

    def encoder_inputs(self, video: Source, audio: Source | None = None, silent_audio: bool = False) -> OmniTensors:
        from .audio_tables import audio_graph_inputs
        from .media import OmniMediaSettings, omni_media_tensors
        from .vision_tables import vision_graph_inputs

        clip = omni_media_tensors(video, audio, silent_audio, OmniMediaSettings(max_frames=self.video_settings.num_frames))
        vision = tuple(vision_graph_inputs(clip.pixel_values_videos, clip.video_grid_thw, self.vision_config).values())
        sound = None
        if clip.input_features is not None:
            sound = tuple(audio_graph_inputs(clip.input_features, self.audio_config).values())
        # One decode stage, as every family reports it (the clip's own split stays in clip.seconds).
        seconds = {"media_decode": sum(clip.seconds.values())}
        return OmniTensors(vision, sound, seconds, clip.clip_seconds, clip=clip)

    def encoder_samples(self, vision: torch.nn.Module, audio: torch.nn.Module) -> dict[str, EncoderSample]:
        """vision, audio: the family's media parts, `encoders.OmniVisionGraph` / `OmniAudioGraph`."""
        from .encoders import (AUDIO_DYNAMIC_AXES, VISION_DYNAMIC_AXES, OmniAudioGraph, OmniVisionGraph,
                               audio_export_sample, vision_export_sample)

        assert isinstance(vision, OmniVisionGraph) and isinstance(audio, OmniAudioGraph), "the family's media parts"
        return {"vision": EncoderSample(vision, vision_export_sample(vision.encoder.config), *self.vision_io,
                                        dynamic_axes=VISION_DYNAMIC_AXES),
                "audio": EncoderSample(audio, audio_export_sample(audio.encoder.config), *self.audio_io,
                                       dynamic_axes=AUDIO_DYNAMIC_AXES)}

    def _clip(self, tensors: OmniTensors, audio_tokens: int):
        from .chunk_layout import OmniClip

        t, h, w = (int(v) for v in tensors.clip.video_grid_thw)
        return OmniClip(t, h, w, float(tensors.clip.second_per_grid), audio_tokens or None)

    def media_layout(self, tensors: OmniTensors, video_rows: np.ndarray, audio_rows: np.ndarray,
                     prefix_tokens: int, suffix_tokens: int) -> tuple[TokenLayout, np.ndarray, np.ndarray]:
        from .chunk_layout import omni_layout

        clip = self._clip(tensors, audio_rows.shape[0])
        return omni_layout(clip, prefix_tokens, suffix_tokens), video_rows, audio_rows

    def positions(self, layout: TokenLayout, tensors: OmniTensors) -> np.ndarray:
        """[3, N]: TMRoPE's temporal, height and width rows, as transformers' `get_rope_index` gives them."""
        from .chunk_layout import omni_positions

        audio_tokens = layout.count("audio")
        prefix, suffix = layout.segments[0].length, layout.segments[-1].length
        return omni_positions(self._clip(tensors, audio_tokens), prefix, suffix).position_ids
