"""A video file (and optionally a separate audio file) -> the tensors the encoders take.

Decoding is PyAV's (`media/decode.py`); the preprocessing is the model's own (SigLIP image
processing of uniformly sampled frames, the log-mel filterbank of the audio track). The
same function serves `run --video` and the Triton model (which passes the file's bytes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Union

import numpy as np
import torch

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
    silent_audio: a video without an audio track gets silence instead of `NoAudioTrack`.
    Raises `media.decode.NoAudioTrack` (no advice: the caller knows which flags or fields fix it) when
    the audio file, or the video without silent_audio, has no sound.
    """
    from ..media.decode import (NoAudioTrack, has_audio, read_audio, read_audio_spans, read_frames_at_fps,
                                 read_video_frames)
    from ..media.frames import decoded_frame_pixels, preprocess_frames

    started = time.perf_counter()
    clip_seconds = None
    frame_pixels = decoded_frame_pixels(video_settings)
    if video_settings.fps is not None:
        frames, clip_seconds = read_frames_at_fps(video, video_settings.fps, video_settings.num_frames, frame_pixels)
    else:
        frames = read_video_frames(video, video_settings.num_frames, frame_pixels)
    pixel_values = preprocess_frames(frames, video_settings)
    rate = audio_settings.sample_rate
    # The seconds of audio the features use: the clip's span (video-SALMONN 2), else the window (an
    # audio file's first `seconds`); decoding stops there. A video's own track for the filterbank is
    # sampled over its whole length, so only the sampled clips are kept while it is streamed.
    used_seconds = clip_seconds if audio_settings.features == "whisper" else audio_settings.seconds
    if audio is not None:
        waveform = read_audio(audio, rate, max_seconds=used_seconds)
    elif has_audio(video):
        if audio_settings.features == "fbank":
            from ..media.filterbank import video_audio_spans

            # A video's own track is sampled as upstream does: 8 clips of 2 s spread over it, joined
            # (`video_audio_clips` of the whole track, without holding it).
            waveform = read_audio_spans(video, partial(video_audio_spans, sample_rate=rate), rate)
        else:
            waveform = read_audio(video, rate, max_seconds=clip_seconds)
    elif silent_audio:
        waveform = np.zeros(round(rate * (clip_seconds or audio_settings.seconds)), np.float32)
    else:
        raise NoAudioTrack(f"{_name(video)} has no audio track")
    if audio_settings.features == "whisper":
        from ..media.whisper_features import whisper_chunks

        # Upstream keeps the audio of the clip's span only (av_dataset.py: audio[:round(sr * real_time)]).
        features = whisper_chunks(waveform[:round(rate * clip_seconds)])
    else:
        from ..media.filterbank import AUDIO_FILE_DTYPE, audio_features

        if audio is not None:  # upstream reads an audio file as float64 and filters it in that dtype
            waveform = waveform.astype(AUDIO_FILE_DTYPE)
        features = audio_features(waveform, audio_settings)
    return MediaTensors(pixel_values, features, {"media_decode": time.perf_counter() - started}, clip_seconds)


def _name(source: Source) -> str:
    if isinstance(source, (bytes, bytearray)):
        return getattr(source, "name", "the video")  # media.decode.MediaBytes: a request's input
    return str(source)
