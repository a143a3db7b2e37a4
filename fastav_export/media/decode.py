"""Decode a media file's video frames and audio track with PyAV.

Replaces upstream VideoLLaMA2's decoders (decord for frames, the `ffmpeg` CLI for the audio
of a video: videollama2/mm_utils.py `process_video`, `load_audio_from_video`) with FFmpeg
through PyAV, so nothing is needed besides the `av` wheel.

`source` is a path or the file's bytes (what the Triton server receives; `MediaBytes` when the
bytes have a name of their own, such as a request's input). Every failure a user can cause
(missing or unreadable file, not a media file, no video or audio stream, no frames) raises
FastAVError with one line; no PyAV traceback gets through. A missing or empty audio track raises
`NoAudioTrack` without advice: what fixes it differs between the CLI, a Triton request and
calibrate, so each adds its own.
"""

from __future__ import annotations

import io
import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence, Union

import numpy as np

from ..errors import FastAVError
from .frames import sample_frame_indices

Source = Union[str, os.PathLike, bytes]
UNNAMED_BYTES = "the media data"


class MediaBytes(bytes):
    """A media file's bytes and the name messages call them by (a request's input: "the `audio` input")."""

    def __new__(cls, data: bytes, name: str) -> "MediaBytes":
        named = super().__new__(cls, data)
        named.name = name
        return named


class NoAudioTrack(FastAVError):
    """The source has no audio stream, or an empty one. The message names the source only: the caller
    adds the advice its user can follow (CLI flags, request fields)."""


# Media is untrusted (a Triton request's bytes, a user's file), so FFmpeg reads the given bytes and
# nothing else: no protocol may be opened from inside them (an ffconcat list, an HLS playlist or an
# SDP file would otherwise read the server's files or bind sockets; no protocol is named "none"),
# and only demuxers of real video/audio containers are allowed. The format check runs after the
# probe and before the demuxer reads its header, so a refused descriptor opens nothing.
ALLOWED_FORMATS = ("mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "flv", "mpegts",
                   "mpeg", "ogg", "asf", "wav", "w64", "aiff", "caf", "flac", "mp3", "aac", "ac3", "eac3",
                   "amr", "wv")
_UNTRUSTED_INPUT = {"protocol_whitelist": "none", "format_whitelist": ",".join(ALLOWED_FORMATS)}
# The largest frame decoded, (width, height): 8K, also H.264/HEVC level 6.2's largest. A decoder's frame
# of that size is 53 MB (yuv420p), and a decoder thread holds one or more. Frames of other shapes may have
# as many pixels.
MAX_FRAME_SIZE = (8192, 4320)
MAX_FRAME_PIXELS = MAX_FRAME_SIZE[0] * MAX_FRAME_SIZE[1]
# What the decoder's threads may hold at once: fewer threads for larger frames (`_decoder_threads`).
DECODER_FRAME_BYTES = 512 * 2**20


def not_media_message(name: str) -> str:
    """The one refusal for anything that is not an allowed media file, whatever it holds (a playlist
    naming a file that exists reads the same as one naming a file that does not)."""
    return f"{name} is not a media file this tool reads: pass a video (e.g. .mp4) or audio (e.g. .wav) file"


@contextmanager
def _opened(source: Source) -> Iterator[tuple[object, str]]:
    """(av container, name for messages); FFmpeg errors while it is open become FastAVError."""
    import av

    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise FastAVError(f"{_label(source)} is empty: send the contents of a video or audio file")
        name, target = _label(source), io.BytesIO(bytes(source))
    else:
        path = Path(source)
        name, target = str(path), path
        if not path.exists():
            raise FastAVError(f"{path} does not exist: check the path of the video or audio file")
        if path.is_dir():
            raise FastAVError(f"{path} is a directory: pass a video or audio file")
        try:  # opened by Python, not FFmpeg: a path is never read as a URL ("concat:...", "http://...")
            target = open(path, "rb")
        except OSError as exc:
            raise FastAVError(f"cannot read {path} ({exc.strerror or exc}): check its permissions") from None
    with target:
        try:
            # tags are the file's bytes in any encoding, and unused here: undecodable ones must not stop it
            container = av.open(target, mode="r", container_options=_UNTRUSTED_INPUT, metadata_errors="replace")
        except av.error.FFmpegError:
            raise FastAVError(not_media_message(name)) from None  # no FFmpeg reason: it would tell files apart
        try:
            with container:
                if not set(container.format.name.split(",")) & set(ALLOWED_FORMATS):
                    raise FastAVError(not_media_message(name))  # format_whitelist already refuses; kept as a guard
                yield container, name
        except av.error.FFmpegError as exc:
            raise FastAVError(f"{name} could not be decoded ({_reason(exc)}): the file may be damaged; "
                              "re-encode it (e.g. with ffmpeg) and try again") from None


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or exc)


def _video_stream(container, name: str):
    if not container.streams.video:
        raise FastAVError(f"{name} has no video stream: pass a video file")
    stream = _decodable(container.streams.video[0], "video", name)
    context = stream.codec_context
    pixels = context.width * context.height  # the container's or the stream header's size, before decoding
    if pixels > MAX_FRAME_PIXELS:
        limit_width, limit_height = MAX_FRAME_SIZE
        raise FastAVError(f"{name} has {context.width}x{context.height} frames, more than the {MAX_FRAME_PIXELS:,} "
                          f"pixels ({limit_width}x{limit_height}) this tool decodes: scale the video down (e.g. "
                          "ffmpeg -vf scale=1920:-2) and try again")
    # A header that understates the size is caught by the decoder itself, which refuses larger frames.
    context.options = {"max_pixels": str(MAX_FRAME_PIXELS)}
    stream.thread_type = "AUTO"  # frame threads: decoding is the cost, and order is kept
    context.thread_count = _decoder_threads(pixels)
    return stream


def _decodable(stream, kind: str, name: str):
    """`stream`, if FFmpeg has a decoder for its codec (a damaged or exotic codec tag leaves it none)."""
    if stream.codec_context is None:
        raise FastAVError(f"{name} has a{'n' if kind == 'audio' else ''} {kind} stream whose codec cannot be "
                          "decoded: re-encode it (e.g. with ffmpeg to H.264 and AAC) and try again")
    return stream


def _decoder_threads(pixels: int) -> int:
    """Decoder threads for frames of `pixels`: every core (0, FFmpeg's auto) unless the frames each
    thread holds (3 bytes a pixel covers 8-bit 4:4:4 and 10-bit 4:2:0) would exceed DECODER_FRAME_BYTES."""
    threads = DECODER_FRAME_BYTES // max(3 * pixels, 1)
    return 0 if threads >= (os.cpu_count() or 1) else max(1, threads)


def kept_frame_size(width: int, height: int, frame_pixels: int | None) -> tuple[int, int]:
    """(width, height) a decoded frame is kept at: as decoded when it has at most `frame_pixels`
    pixels (or no bound is given), else scaled down to at most that many, keeping its aspect."""
    if frame_pixels is None or width * height <= frame_pixels:
        return width, height
    scale = math.sqrt(frame_pixels / (width * height))
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


def _count_frames(source: Source) -> int:
    """Frames of the first video stream, counted by demuxing (one packet a frame, nothing decoded)."""
    with _opened(source) as (container, name):
        stream = _video_stream(container, name)
        return sum(1 for packet in container.demux(stream) if packet.size)


def _decode_wanted(source: Source, wanted: list[int], frame_pixels: int | None = None,
                   keep: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[dict[int, np.ndarray], int]:
    """Decode in order, keeping only the `wanted` indices as [H, W, 3] uint8 RGB (memory: one frame
    a wanted index, at most `frame_pixels` each: `kept_frame_size`, scaled by swscale straight from
    the decoder's frame, so no full-size RGB copy is made), or as `keep` turns each one as soon as it
    is decoded. Returns (kept, frames decoded); stops after the last wanted index."""
    needed, last = set(wanted), max(wanted)
    kept: dict[int, np.ndarray] = {}
    decoded = 0
    with _opened(source) as (container, name):
        size = None
        for index, frame in enumerate(container.decode(_video_stream(container, name))):
            decoded = index + 1
            if index in needed:
                size = size or kept_frame_size(frame.width, frame.height, frame_pixels)  # all at the first's size
                image = frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
                kept[index] = image if keep is None else keep(image)
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


def read_frames_at_fps(source: Source, fps: float, max_frames: int,
                       frame_pixels: int | None = None) -> tuple[np.ndarray, float]:
    """([F, H, W, 3] uint8 RGB, the clip's seconds): one frame per 1/fps seconds, at most `max_frames`
    (`sample_at_fps`); the seconds are frames / native rate, as upstream measures a clip.
    frame_pixels: frames larger than this are scaled down on decode (`kept_frame_size`)."""
    from .frames import sample_at_fps

    total, rate = video_rate(source)
    return read_frames_at(source, sample_at_fps(total, rate, fps, max_frames), frame_pixels), total / rate


def read_frames_at(source: Source, indices: Sequence[int], frame_pixels: int | None = None,
                   keep: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """[len(indices), H, W, 3] uint8 RGB: the frames at `indices` (in that order, repeats allowed), scaled
    down on decode past `frame_pixels` (`kept_frame_size`). `keep` turns each decoded [H, W, 3] frame into
    the form held (e.g. resized), so memory follows the kept form, not the decoded size; the result then
    stacks what `keep` returns. FastAVError if the stream ends before the last index."""
    kept, _ = _decode_wanted(source, list(indices), frame_pixels, keep)
    if len(kept) != len(set(indices)):
        raise FastAVError(f"{_label(source)} could not be decoded to its last frame: re-encode it and try again")
    return np.stack([kept[i] for i in indices])


def read_video_frames(source: Source, num_frames: int, frame_pixels: int | None = None) -> np.ndarray:
    """[num_frames, H, W, 3] uint8 RGB: the frames at `sample_frame_indices(total, num_frames)`;
    frames with more than `frame_pixels` pixels are scaled down on decode (`kept_frame_size`).

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
        kept, decoded = _decode_wanted(source, wanted, frame_pixels)
        if len(kept) == len(set(wanted)):
            return np.stack([kept[i] for i in wanted])
        total = decoded
    raise FastAVError(f"{_label(source)} could not be decoded consistently: re-encode it and try again")


def _label(source: Source) -> str:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return getattr(source, "name", UNNAMED_BYTES)
    return str(source)


def has_audio(source: Source) -> bool:
    """Whether the file has an audio stream (FastAVError if it is no readable media file)."""
    with _opened(source) as (container, _):
        return bool(container.streams.audio)


def read_audio(source: Source, sample_rate: int = 16_000, max_seconds: float | None = None) -> np.ndarray:
    """[S] float32 mono in [-1, 1) at `sample_rate` Hz: the first audio stream, whole, or its first
    `max_seconds` (S <= round(max_seconds * sample_rate)): decoding stops there, so memory and time
    follow what the model uses, not the file's length (hours of silence code into a few MB).

    Resampled to 16-bit mono and divided by 32768, as upstream's `ffmpeg -ac 1 -ar 16000 -f s16le`
    does: the s16 target also makes FFmpeg's downmix average the channels (a float target sums
    them at 1/sqrt(2) each, which can leave [-1, 1])."""
    limit = None if max_seconds is None else round(max_seconds * sample_rate)
    with _opened(source) as (container, name):
        chunks, held = [], 0
        for chunk in _resampled_track(container, name, sample_rate):
            chunks.append(chunk)
            held += len(chunk)
            if limit is not None and held >= limit:
                break
    samples = (np.concatenate(chunks) if chunks else np.zeros(0, np.int16))[:limit]
    if not samples.size:
        raise NoAudioTrack(f"{name} has an empty audio stream")
    return _pcm_to_float(samples)


def read_audio_spans(source: Source, spans_of: Callable[[int], Sequence[tuple[int, int]]],
                     sample_rate: int = 16_000) -> np.ndarray:
    """The samples of `spans_of(S)`, concatenated in its order: [sum of the span lengths] float32, as
    `read_audio` would give them (S: the track's length at `sample_rate`; a span [start, end) that
    passes the end stops there, as a slice does; spans may overlap).

    Two streaming passes, so memory follows the spans, not the track (a 6-hour track is 1.4 GB as
    float32): the first counts the resampled samples, the second keeps those inside the spans and
    stops after the last. Both decode and resample alike, so the result equals slicing the whole
    track. For a video's audio track as VideoLLaMA2 samples it, `spans_of` is
    `media.filterbank.video_audio_spans` (8 clips of 2 s spread over the whole track).
    """
    with _opened(source) as (container, name):
        total = sum(len(chunk) for chunk in _resampled_track(container, name, sample_rate))
    if not total:
        raise NoAudioTrack(f"{name} has an empty audio stream")
    spans = [(min(start, total), min(end, total)) for start, end in spans_of(total)]
    pieces: list[list[np.ndarray]] = [[] for _ in spans]
    last = max((end for _, end in spans), default=0)
    with _opened(source) as (container, name):
        position = 0
        for chunk in _resampled_track(container, name, sample_rate):
            if position >= last:
                break
            for kept, (start, end) in zip(pieces, spans):
                if start < position + len(chunk) and end > position:
                    kept.append(chunk[max(start - position, 0):end - position])
            position += len(chunk)
    samples = [piece for kept in pieces for piece in kept]
    return _pcm_to_float(np.concatenate(samples) if samples else np.zeros(0, np.int16))


def _resampled_track(container, name: str, sample_rate: int) -> Iterator[np.ndarray]:
    """The first audio stream as [n] int16 mono chunks at `sample_rate`, in order, ending with the
    resampler's buffered tail (NoAudioTrack without an audio stream). Nothing is held between chunks."""
    import av

    if not container.streams.audio:
        raise NoAudioTrack(f"{name} has no audio stream")
    stream = _decodable(container.streams.audio[0], "audio", name)
    resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
    for frame in container.decode(stream):
        for out in resampler.resample(frame):
            yield out.to_ndarray().reshape(-1)
    for out in resampler.resample(None):  # flush its buffer
        yield out.to_ndarray().reshape(-1)


def _pcm_to_float(samples: np.ndarray) -> np.ndarray:
    """int16 PCM -> float32 in [-1, 1), as upstream divides ffmpeg's s16le output."""
    return samples.astype(np.float32) / 32768.0


def media_duration_seconds(source: Source) -> float:
    """The clip's duration in seconds: the container's, else its longest stream's (0.0 if unknown)."""
    import av

    with _opened(source) as (container, _):
        if container.duration:
            return container.duration / av.time_base
        spans = [float(s.duration * s.time_base) for s in container.streams if s.duration and s.time_base]
        return max(spans, default=0.0)
