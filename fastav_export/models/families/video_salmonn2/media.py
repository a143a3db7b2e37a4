"""video-SALMONN 2's media rules: Whisper features of the clip's span, and a layout that follows the clip.

Frames are sampled at 1 fps (at most `max_frames`); the audio of the clip's span is cut into 30 s
Whisper chunks; the encoders' rows are arranged per frame, [182 video][k audio] each, by the
`FrameInterleave` rule the build recorded (`contract/interleave.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ....contract.layout import TokenLayout
from ....media.settings import AudioSettings
from ..media_rules import AudioFeatures, MediaRules, MediaTensors, Source

if TYPE_CHECKING:
    import numpy as np
    import torch

WHISPER_FEATURE_FRAMES = 3000  # log-mel frames of one 30 s chunk


class WhisperFeatures(AudioFeatures):
    """input_features [C, 128, 3000]: Whisper's log-mel features of each 30 s chunk of the clip's span."""

    name = "whisper"

    def decoded_seconds(self, settings: AudioSettings, clip_seconds: float | None) -> float | None:
        return clip_seconds

    def read_track(self, video: Source, settings: AudioSettings, clip_seconds: float | None) -> np.ndarray:
        from ....media.decode import read_audio

        return read_audio(video, settings.sample_rate, max_seconds=clip_seconds)

    def features(self, waveform: np.ndarray, settings: AudioSettings, clip_seconds: float | None,
                 from_file: bool) -> torch.Tensor:
        from ....media.whisper_features import whisper_chunks

        # Upstream keeps the audio of the clip's span only (av_dataset.py: audio[:round(sr * real_time)]).
        return whisper_chunks(waveform[:round(settings.sample_rate * clip_seconds)])

    def sample(self, settings: AudioSettings) -> torch.Tensor:
        import torch

        return torch.zeros(2, settings.mel_bins, WHISPER_FEATURE_FRAMES)


class InterleavedMediaRules(MediaRules):
    """Per frame [video rows][audio rows], counts from the clip's frames and duration (`record.interleave`)."""

    audio_io = (("input_features",), ("audio_embeds",))

    @property
    def static_encoders(self) -> bool:
        return False  # any frame and chunk count

    def layout_before_decoding(self, video: Source, prefix_tokens: int, suffix_tokens: int
                               ) -> tuple[TokenLayout, float] | None:
        """From the clip's length, frames / rate as `read_frames_at_fps` measures it, which the demuxer
        gives without decoding (a 2-hour clip would otherwise be decoded and encoded, 240 Whisper chunks,
        before it is found not to fit)."""
        from ....media.decode import video_rate
        from ....media.frames import sample_at_fps

        rule, settings = self.record.interleave, self.video_settings
        total, rate = video_rate(video)
        seconds = total / rate
        frames = len(sample_at_fps(total, rate, settings.fps, settings.num_frames))
        # The chunks of the clip's span: an audio track shorter than the video could give fewer, never more.
        return rule.media_layout(frames, rule.chunks(seconds), seconds, prefix_tokens, suffix_tokens), seconds

    def media_layout(self, tensors: MediaTensors, video_rows: np.ndarray, audio_rows: np.ndarray,
                     prefix_tokens: int, suffix_tokens: int) -> tuple[TokenLayout, np.ndarray, np.ndarray]:
        rule = self.record.interleave
        frames, clip, chunks = tensors.pixel_values.shape[0], tensors.clip_seconds, tensors.fbank.shape[0]
        layout = rule.media_layout(frames, chunks, clip, prefix_tokens, suffix_tokens)
        return layout, video_rows, rule.arrange_audio(audio_rows, frames, clip)
