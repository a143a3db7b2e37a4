"""A video file (and optionally a separate audio file) -> the tensors the encoders take.

Decoding is PyAV's (`media/decode.py`); the preprocessing is the model family's own (its
`MediaRules.encoder_inputs`: SigLIP image processing of the sampled frames, the audio features its
AudioSettings name). The same code serves `run --video` and the Triton model (which passes the
file's bytes).
"""

from __future__ import annotations

from ..media.settings import AudioSettings, VideoSettings
from ..models.families.media_rules import MediaTensors, Source, clip_tensors

__all__ = ["MediaTensors", "Source", "media_tensors"]


def media_tensors(video: Source, video_settings: VideoSettings, audio_settings: AudioSettings,
                  audio: Source | None = None, silent_audio: bool = False) -> MediaTensors:
    """Decode and preprocess one clip as `video_settings` and `audio_settings` say (`clip_tensors`).

    audio: a separate audio file that replaces the video's own track (default: the track).
    silent_audio: a video without an audio track gets silence instead of `NoAudioTrack`.
    """
    return clip_tensors(video, video_settings, audio_settings, audio, silent_audio)
