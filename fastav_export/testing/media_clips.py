"""Small media files the tests write with PyAV: the sample clip, a WAV tone, and damaged or odd files.

The sample clip (`clip_frame` frames, a `tone`) is the package's own (`fastav_export.media.sample_clip`,
the `fastav-export sample-clip` command); it is re-exported here under the names the tests use.
`python -m fastav_export.testing.media_clips OUT [SECONDS]` still writes it, through that command.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..media.sample_clip import TONE_AMPLITUDE, clip_frame, tone  # noqa: F401  (the tests' names)
from ..media.sample_clip import mux as _encode
from ..media.sample_clip import write_sample_clip as write_test_clip  # noqa: F401


def write_test_wav(path, seconds: float = 3.0, tone_hz: float = 440.0, sample_rate: int = 16_000) -> Path:
    """Write a mono 16-bit PCM .wav of `tone` (for `--audio FILE`). Returns the path."""
    import av

    path = Path(path)
    samples = np.round(tone(seconds, tone_hz, sample_rate) * 32767).astype(np.int16)
    with av.open(str(path), mode="w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=sample_rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.sample_rate, frame.pts = sample_rate, 0
        _encode(container, stream, frame)
        _encode(container, stream, None)
    return path


def write_frameless_clip(path, sample_rate: int = 16_000) -> Path:
    """Write a Matroska file whose video stream has no frames (beside 0.25 s of silence, which makes
    the muxer write its header: MP4 would drop a stream without packets). Returns the path."""
    import av

    path = Path(path)
    with av.open(str(path), mode="w", format="matroska") as container:
        video = container.add_stream("mpeg4", rate=8)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = container.add_stream("pcm_s16le", rate=sample_rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, sample_rate // 4), np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts = sample_rate, 0
        _encode(container, sound, frame)
        _encode(container, sound, None)
    return path


def write_flat_clip(path, size: tuple[int, int], frames: int = 1, fps: int = 8) -> Path:
    """Write an H.264 .mp4 of `frames` frames of one flat grey at `size` = (width, height), even: the
    cheapest way to a clip with huge frames (x264's ultrafast preset codes a flat 8000x8000 frame in
    a few seconds, into about 190 KB). Returns the path."""
    import av

    path = Path(path)
    width, height = size
    image = av.VideoFrame.from_ndarray(np.full((height, width, 3), 90, np.uint8), format="rgb24")
    with av.open(str(path), mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.options = {"preset": "ultrafast", "threads": "1"}
        for index in range(frames):
            image.pts = index
            _encode(container, video, image)
        _encode(container, video, None)
    return path


def write_silent_flac(path, seconds: float, sample_rate: int = 16_000) -> Path:
    """Write a mono FLAC of `seconds` of silence (FLAC codes silence in a few bytes a block, so an hour
    is about 0.7 MB and takes a few seconds). Returns the path."""
    import av

    path = Path(path)
    block = np.zeros((1, sample_rate * 60), np.int16)  # a minute a frame
    total = round(seconds * sample_rate)
    with av.open(str(path), mode="w", format="flac") as container:
        stream = container.add_stream("flac", rate=sample_rate, layout="mono")
        for start in range(0, total, block.shape[1]):
            frame = av.AudioFrame.from_ndarray(block[:, :total - start], format="s16", layout="mono")
            frame.sample_rate, frame.pts = sample_rate, start
            _encode(container, stream, frame)
        _encode(container, stream, None)
    return path


def write_long_quiet_clip(path, seconds: float, size: tuple[int, int] = (160, 120), fps: int = 1,
                          sample_rate: int = 16_000) -> Path:
    """Write a Matroska clip of `seconds` of one flat grey frame (MJPEG, `fps`) and silence (FLAC), a
    second of each at a time: the cheapest long video (hours take seconds and a few MB). Every
    frame is the same coded packet (MJPEG frames stand alone), so only one frame is ever encoded.
    Returns the path."""
    import av

    path = Path(path)
    width, height = size
    frames, total = round(seconds * fps), round(seconds * sample_rate)
    with av.open(str(path), mode="w", format="matroska") as container:
        video = container.add_stream("mjpeg", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuvj420p"
        sound = container.add_stream("flac", rate=sample_rate, layout="mono")
        image = av.VideoFrame.from_ndarray(np.full((height, width, 3), 90, np.uint8), format="rgb24")
        image.pts = 0
        (coded,) = video.encode(image)
        silence = np.zeros((1, sample_rate), np.int16)
        for second in range(math.ceil(seconds)):
            for index in range(second * fps, min((second + 1) * fps, frames)):
                packet = av.Packet(bytes(coded))
                packet.stream, packet.time_base, packet.pts, packet.dts = video, coded.time_base, index, index
                container.mux(packet)
            start = second * sample_rate
            if start < total:
                frame = av.AudioFrame.from_ndarray(silence[:, :total - start], format="s16", layout="mono")
                frame.sample_rate, frame.pts = sample_rate, start
                _encode(container, sound, frame)
        _encode(container, sound, None)
    return path


def main(argv: list[str] | None = None) -> int:
    """`python -m fastav_export.testing.media_clips OUT [SECONDS]`: `fastav-export sample-clip OUT [SECONDS]`."""
    import sys

    from ..cli import main as cli_main

    return cli_main(["sample-clip", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
