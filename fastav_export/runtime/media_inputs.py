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
    fbank:        the audio encoder's input: [1, T, M] fp32, the raw log-mel filterbank (VideoLLaMA2-AV;
                  the audio tower normalises it, as BEATs does), or [C, 128, 3000], the Whisper features
                  of C 30 s chunks (video-SALMONN 2).
    seconds:      time spent per stage (`media_decode`).
    clip_seconds: the clip's length where the layout follows it (frames sampled at a rate), else None."""

    pixel_values: torch.Tensor
    fbank: torch.Tensor
    seconds: dict[str, float] = field(default_factory=dict)
    clip_seconds: float | None = None


def media_tensors(video: Source, video_settings: VideoSettings, audio_settings: AudioSettings,
                  audio: Source | None = None, silent_audio: bool = False) -> MediaTensors:
    """Decode and preprocess one clip.

    audio: a separate audio file that replaces the video's own track (default: the track).
    silent_audio: a video without an audio track gets silence instead of an error.
    """
    from ..media.decode import has_audio, read_audio, read_frames_at_fps, read_video_frames
    from ..media.frames import preprocess_frames

    started = time.perf_counter()
    clip_seconds = None
    if video_settings.fps is not None:
        frames, clip_seconds = read_frames_at_fps(video, video_settings.fps, video_settings.num_frames)
    else:
        frames = read_video_frames(video, video_settings.num_frames)
    pixel_values = preprocess_frames(frames, video_settings)
    rate = audio_settings.sample_rate
    if audio is not None:
        waveform = read_audio(audio, rate)
    elif has_audio(video):
        waveform = read_audio(video, rate)
        if audio_settings.features == "fbank":
            from ..media.filterbank import video_audio_clips

            # A video's own track is sampled as upstream does: 8 clips of 2 s spread over it, joined.
            waveform = video_audio_clips(waveform, rate)
    elif silent_audio:
        waveform = np.zeros(round(rate * (clip_seconds or audio_settings.seconds)), np.float32)
    else:
        raise FastAVError(f"{_name(video)} has no audio track: pass one with --audio FILE, "
                          "or --silent-audio to answer with silence")
    if audio_settings.features == "whisper":
        from ..media.whisper_features import whisper_chunks

        # Upstream keeps the audio of the clip's span only (av_dataset.py: audio[:round(sr * real_time)]).
        features = whisper_chunks(waveform[:round(rate * clip_seconds)])
    else:
        from ..media.filterbank import audio_features

        features = audio_features(waveform, audio_settings)
    return MediaTensors(pixel_values, features, {"media_decode": time.perf_counter() - started}, clip_seconds)


def _name(source: Source) -> str:
    return "the video" if isinstance(source, (bytes, bytearray)) else str(source)
