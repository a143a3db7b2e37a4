"""A video file (and optionally a separate audio file) -> the tensors the encoders take.

Decoding is PyAV's (`media/decode.py`); the preprocessing is the model's own (SigLIP image
processing of uniformly sampled frames, the log-mel filterbank of the audio track). The
same function serves `run --video` and the Triton model (which passes the file's bytes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np
import torch

from ..errors import FastAVError
from ..media.settings import AudioSettings, VideoSettings

Source = Union[str, Path, bytes]  # a file, or a file's contents


@dataclass
class MediaTensors:
    """pixel_values: [F, 3, S, S] fp32, the sampled frames after the image processor.
    fbank:        [1, T, M] fp32, the audio's raw log-mel filterbank (T frames of M bins; the audio tower
                  normalises it, as BEATs does).
    seconds:      time spent per stage (`media_decode`)."""

    pixel_values: torch.Tensor
    fbank: torch.Tensor
    seconds: dict[str, float] = field(default_factory=dict)


def media_tensors(video: Source, video_settings: VideoSettings, audio_settings: AudioSettings,
                  audio: Source | None = None, silent_audio: bool = False) -> MediaTensors:
    """Decode and preprocess one clip.

    audio: a separate audio file that replaces the video's own track (default: the track).
    silent_audio: a video without an audio track gets silence instead of an error.
    """
    from ..media.decode import has_audio, read_audio, read_video_frames
    from ..media.filterbank import audio_features, video_audio_clips
    from ..media.frames import preprocess_frames

    started = time.perf_counter()
    frames = read_video_frames(video, video_settings.num_frames)
    pixel_values = preprocess_frames(frames, video_settings)
    if audio is not None:
        waveform = read_audio(audio, audio_settings.sample_rate)
    elif has_audio(video):
        # A video's own track is sampled as upstream does: 8 clips of 2 s spread over it, joined.
        waveform = video_audio_clips(read_audio(video, audio_settings.sample_rate), audio_settings.sample_rate)
    elif silent_audio:
        waveform = np.zeros(audio_settings.samples, np.float32)
    else:
        raise FastAVError(f"{_name(video)} has no audio track: pass one with --audio FILE, "
                          "or --silent-audio to answer with silence")
    fbank = audio_features(waveform, audio_settings)
    return MediaTensors(pixel_values, fbank, {"media_decode": time.perf_counter() - started})


def _name(source: Source) -> str:
    return "the video" if isinstance(source, (bytes, bytearray)) else str(source)
