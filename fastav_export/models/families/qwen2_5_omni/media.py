"""One clip -> Qwen2.5-Omni's encoder inputs, as its own processing prepares them with `use_audio_in_video=True`.

The released usage (qwen-omni-utils, then `Qwen2_5OmniProcessor`): frames sampled at 2 fps in an even
count (`video_frames`), resized with `smart_resize` and torchvision's antialiased bicubic (`frame_resize`),
rescaled, normalised and cut into 2 x 14 x 14 patches (`video_patches`); the audio track at 16 kHz mono
through Whisper's log-mel features (`audio_features`). PyAV decodes (`media.decode`: untrusted-media
rules), and each sampled frame is resized as soon as it is decoded, so a clip holds at most `max_frames`
resized frames, whatever its length or frame size.

Where this differs from upstream: FFmpeg resamples the audio to 16-bit mono (librosa resamples to
float there), and a clip without an audio track runs without audio (qwen-omni-utils refuses it) or,
with `silent_audio`, with silence as long as the clip.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ....media.decode import Source, has_audio, read_audio, read_frames_at, video_rate
from .audio_features import WINDOW_SECONDS, omni_audio_features
from .frame_resize import resize_frame
from .video_frames import frame_count, frame_indices, frame_size
from .video_patches import CLIP_MEAN, CLIP_STD, video_patches
from .video_sampling import (
    AUDIO_SAMPLE_RATE,
    FRAME_FACTOR,
    MAX_FRAMES,
    PATCH_SIZE,
    SampledVideo,
)


@dataclass(frozen=True)
class OmniMediaSettings:
    """max_frames: the most frames sampled from a clip (qwen-omni-utils' 768, or an engine's lower limit).
    merge_size: the vision tower's spatial merge (frame sides are multiples of 14 x merge_size).
    image_mean, image_std: the processor's normalisation (CLIP's)."""

    max_frames: int = MAX_FRAMES
    merge_size: int = 2
    image_mean: tuple[float, float, float] = CLIP_MEAN
    image_std: tuple[float, float, float] = CLIP_STD


@dataclass
class OmniMediaTensors:
    """pixel_values_videos: [t * h * w, 3 * 2 * 14 * 14] float32, the vision tower's input.
    video_grid_thw: (t, h, w), temporal groups of 2 frames and 14-pixel patches a side.
    second_per_grid: seconds one temporal group spans (2 frames / the sampled rate), for TMRoPE.
    input_features: [128, feature_length] float32 log-mel frames, the audio tower's input; None without audio.
    feature_length: valid mel frames (10 ms each); None without audio.
    sampled: the frame count, sampled rate and resized frame size.
    clip_seconds: the video's length (frames / frame rate).
    seconds: wall time of each stage ("video_decode", "video_patches", "audio_decode", "audio_features")."""

    pixel_values_videos: torch.Tensor
    video_grid_thw: tuple[int, int, int]
    second_per_grid: float
    input_features: torch.Tensor | None
    feature_length: int | None
    sampled: SampledVideo
    clip_seconds: float
    seconds: dict[str, float]


def omni_media_tensors(video: Source, audio: Source | None = None, silent_audio: bool = False,
                       settings: OmniMediaSettings = OmniMediaSettings()) -> OmniMediaTensors:
    """Decode and preprocess one clip for Qwen2.5-Omni's vision and audio towers.

    audio: a separate audio file that replaces the video's own track (default: the track).
    silent_audio: a video without an audio track gets silence of the clip's length; without it, such a
    clip gets no audio inputs (None). An audio file or track that is present but empty raises
    `media.decode.NoAudioTrack`, for the caller to add its advice."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    total, rate = video_rate(video)
    count = frame_count(total, rate, settings.max_frames)
    factor = PATCH_SIZE * settings.merge_size

    def resized(frame: np.ndarray) -> np.ndarray:  # every frame has the first one's decoded size
        return resize_frame(frame, frame_size(frame.shape[0], frame.shape[1], count, factor))

    frames = read_frames_at(video, frame_indices(total, count), keep=resized)
    seconds["video_decode"] = _lap(started)
    started = time.perf_counter()
    pixel_values, grid = video_patches(frames, PATCH_SIZE, FRAME_FACTOR, settings.merge_size,
                                       settings.image_mean, settings.image_std)
    seconds["video_patches"] = _lap(started)
    sampled = SampledVideo(frames=count, sample_fps=count / total * rate, height=frames.shape[2],
                           width=frames.shape[3])
    clip_seconds = total / rate

    started = time.perf_counter()
    waveform = _waveform(video, audio, silent_audio, clip_seconds)
    seconds["audio_decode"] = _lap(started)
    features = length = None
    if waveform is not None:
        started = time.perf_counter()
        features, length = omni_audio_features(waveform)
        seconds["audio_features"] = _lap(started)
    return OmniMediaTensors(pixel_values, grid, sampled.second_per_grid, features, length, sampled, clip_seconds,
                            seconds)


def _waveform(video: Source, audio: Source | None, silent_audio: bool, clip_seconds: float) -> np.ndarray | None:
    """[S] float32 at 16 kHz: the audio file's, else the video's track, else silence or None; at most the
    feature extractor's 300 s window is decoded (it truncates there)."""
    if audio is not None:
        return read_audio(audio, AUDIO_SAMPLE_RATE, max_seconds=WINDOW_SECONDS)
    if has_audio(video):
        return read_audio(video, AUDIO_SAMPLE_RATE, max_seconds=WINDOW_SECONDS)
    if silent_audio:
        return np.zeros(max(1, round(AUDIO_SAMPLE_RATE * min(clip_seconds, WINDOW_SECONDS))), np.float32)
    return None


def _lap(started: float) -> float:
    return time.perf_counter() - started
