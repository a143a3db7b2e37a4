"""VideoLLaMA2-AV's audio features: Kaldi's log-mel filterbank of one window ("fbank").

A separate audio file gives its first `seconds`; a video's own track is sampled as upstream does
(8 clips of 2 s spread over it, joined: `media/filterbank.py`). Every clip fills the built layout,
so the family's media rules are the base `MediaRules`.
"""

from __future__ import annotations

from functools import partial

from typing import TYPE_CHECKING

from ....media.settings import AudioSettings
from ..media_rules import AudioFeatures, Source

if TYPE_CHECKING:
    import numpy as np
    import torch


class FilterbankFeatures(AudioFeatures):
    """fbank [1, T, M]: the raw log-mel filterbank (the audio tower normalises it, as BEATs does)."""

    name = "fbank"

    def decoded_seconds(self, settings: AudioSettings, clip_seconds: float | None) -> float | None:
        return settings.seconds

    def read_track(self, video: Source, settings: AudioSettings, clip_seconds: float | None) -> np.ndarray:
        from ....media.decode import read_audio_spans
        from ....media.filterbank import video_audio_spans

        # Only the sampled clips are kept while the track is streamed (`video_audio_clips` of the whole
        # track, without holding it).
        return read_audio_spans(video, partial(video_audio_spans, sample_rate=settings.sample_rate),
                                settings.sample_rate)

    def features(self, waveform: np.ndarray, settings: AudioSettings, clip_seconds: float | None,
                 from_file: bool) -> torch.Tensor:
        from ....media.filterbank import AUDIO_FILE_DTYPE, audio_features

        if from_file:  # upstream reads an audio file as float64 and filters it in that dtype
            waveform = waveform.astype(AUDIO_FILE_DTYPE)
        return audio_features(waveform, settings)

    def sample(self, settings: AudioSettings) -> torch.Tensor:
        import torch

        return torch.zeros(1, settings.fbank_frames, settings.mel_bins)
