"""Decode a media file's video frames and audio track with PyAV.

Replaces upstream VideoLLaMA2's decoders (decord for frames, the `ffmpeg` CLI for the audio
of a video: videollama2/mm_utils.py `process_video`, `load_audio_from_video`) with FFmpeg
through PyAV, so nothing is needed besides the `av` wheel.

`source` is a path or the file's bytes (what the Triton server receives). Every failure a user
can cause (missing or unreadable file, not a media file, no video or audio stream, no frames)
raises FastAVError with one line saying what to do; no PyAV traceback gets through.
"""

from __future__ import annotations

import io
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

import numpy as np

from ..errors import FastAVError
from .frames import sample_frame_indices

Source = Union[str, os.PathLike, bytes]

NO_AUDIO_ADVICE = ("pass the audio separately with --audio FILE, "
                   "or use --silent-audio to run the model with silence")


@contextmanager
def _opened(source: Source) -> Iterator[tuple[object, str]]:
    """(av container, name for messages); FFmpeg errors while it is open become FastAVError."""
    import av

    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise FastAVError("the media data is empty: send the contents of a video or audio file")
        name, target = "the media data", io.BytesIO(bytes(source))
    else:
        path = Path(source)
        name, target = str(path), str(path)
        if not path.exists():
            raise FastAVError(f"{path} does not exist: check the path of the video or audio file")
        if path.is_dir():
            raise FastAVError(f"{path} is a directory: pass a video or audio file")
        try:  # FFmpeg opens the file itself; a probe through Python gives the OS's reason in one line
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise FastAVError(f"cannot read {path} ({exc.strerror or exc}): check its permissions") from None
    try:
        container = av.open(target, mode="r")
    except av.error.FFmpegError as exc:
        raise FastAVError(f"{name} is not a media file FFmpeg can read ({_reason(exc)}): "
                          "pass a video (e.g. .mp4) or audio (e.g. .wav) file") from None
    try:
        with container:
            yield container, name
    except av.error.FFmpegError as exc:
        raise FastAVError(f"{name} could not be decoded ({_reason(exc)}): the file may be damaged; "
                          "re-encode it (e.g. with ffmpeg) and try again") from None


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or exc)


def _video_stream(container, name: str):
    if not container.streams.video:
        raise FastAVError(f"{name} has no video stream: pass a video file")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame threads: decoding is the cost, and order is kept
    return stream


def _count_frames(source: Source) -> int:
    """Frames of the first video stream, counted by demuxing (one packet a frame, nothing decoded)."""
    with _opened(source) as (container, name):
        stream = _video_stream(container, name)
        return sum(1 for packet in container.demux(stream) if packet.size)


def _decode_wanted(source: Source, wanted: list[int]) -> tuple[dict[int, np.ndarray], int]:
    """Decode in order, keeping only the `wanted` indices as [H, W, 3] uint8 RGB (memory: one frame
    a wanted index). Returns (kept, frames decoded); stops after the last wanted index."""
    needed, last = set(wanted), max(wanted)
    kept: dict[int, np.ndarray] = {}
    decoded = 0
    with _opened(source) as (container, name):
        size = None
        for index, frame in enumerate(container.decode(_video_stream(container, name))):
            decoded = index + 1
            if index in needed:
                size = size or (frame.width, frame.height)  # every frame at the first one's size
                kept[index] = frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
            if index >= last:
                break
    return kept, decoded


def video_rate(source: Source) -> tuple[int, float]:
    """(frames, frames per second) of the first video stream: the count from the demuxer, the rate
    from the stream's average (FastAVError for a stream that states none)."""
    with _opened(source) as (container, name):
        stream = _video_stream(container, name)
        rate = stream.average_rate or stream.guessed_rate
    if not rate or float(rate) <= 0:
        raise FastAVError(f"{_label(source)} does not state its frame rate: re-encode it (e.g. with ffmpeg) "
                          "and try again")
    return _count_frames(source), float(rate)


def read_frames_at_fps(source: Source, fps: float, max_frames: int) -> tuple[np.ndarray, float]:
    """([F, H, W, 3] uint8 RGB, the clip's seconds): one frame per 1/fps seconds, at most `max_frames`
    (`sample_at_fps`); the seconds are frames / native rate, as upstream measures a clip."""
    from .frames import sample_at_fps

    total, rate = video_rate(source)
    wanted = sample_at_fps(total, rate, fps, max_frames)
    kept, _ = _decode_wanted(source, wanted)
    if len(kept) != len(set(wanted)):
        raise FastAVError(f"{_label(source)} could not be decoded to its last frame: re-encode it and try again")
    return np.stack([kept[i] for i in wanted]), total / rate


def read_video_frames(source: Source, num_frames: int) -> np.ndarray:
    """[num_frames, H, W, 3] uint8 RGB: the frames at `sample_frame_indices(total, num_frames)`.

    A clip with fewer frames than `num_frames` repeats frames (upstream samples the same index
    more than once; it pads with black only for frame lists, not files). The count comes from the
    demuxer; if decoding yields fewer frames (a damaged tail), indices are drawn again over the
    frames that did decode.
    """
    total = _count_frames(source)
    for _ in range(2):
        if total < 1:
            raise FastAVError(f"{_label(source)} has a video stream with no frames: pass a video with content")
        wanted = sample_frame_indices(total, num_frames)
        kept, decoded = _decode_wanted(source, wanted)
        if len(kept) == len(set(wanted)):
            return np.stack([kept[i] for i in wanted])
        total = decoded
    raise FastAVError(f"{_label(source)} could not be decoded consistently: re-encode it and try again")


def _label(source: Source) -> str:
    return "the media data" if isinstance(source, (bytes, bytearray, memoryview)) else str(source)


def has_audio(source: Source) -> bool:
    """Whether the file has an audio stream (FastAVError if it is no readable media file)."""
    with _opened(source) as (container, _):
        return bool(container.streams.audio)


def read_audio(source: Source, sample_rate: int = 16_000) -> np.ndarray:
    """[S] float32 mono in [-1, 1) at `sample_rate` Hz: the first audio stream, whole.

    Resampled to 16-bit mono and divided by 32768, as upstream's `ffmpeg -ac 1 -ar 16000 -f s16le`
    does: the s16 target also makes FFmpeg's downmix average the channels (a float target sums
    them at 1/sqrt(2) each, which can leave [-1, 1])."""
    import av

    with _opened(source) as (container, name):
        if not container.streams.audio:
            raise FastAVError(f"{name} has no audio stream: {NO_AUDIO_ADVICE}")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
        chunks = []
        for frame in container.decode(container.streams.audio[0]):
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
        chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]  # flush its buffer
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    if not samples.size:
        raise FastAVError(f"{name} has an empty audio stream: {NO_AUDIO_ADVICE}")
    return samples.astype(np.float32) / 32768.0


def media_duration_seconds(source: Source) -> float:
    """The clip's duration in seconds: the container's, else its longest stream's (0.0 if unknown)."""
    import av

    with _opened(source) as (container, _):
        if container.duration:
            return container.duration / av.time_base
        spans = [float(s.duration * s.time_base) for s in container.streams if s.duration and s.time_base]
        return max(spans, default=0.0)
