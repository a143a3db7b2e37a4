"""A sample clip to try the media path on (`fastav-export sample-clip`), also the tests' clip.

Moving coloured frames and a 440 Hz tone, written with PyAV. Frames are a pure function of
their index (`clip_frame`), so a test can tell which frame a decoder returned; the audio is
a sine tone, so a test can find its frequency again. Frames and audio are generated and
encoded a piece at a time, so a long clip needs no more memory than a short one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TONE_AMPLITUDE = 0.5
DEFAULT_SECONDS = 3.0
DEFAULT_FPS = 8


def clip_frame(index: int, width: int, height: int) -> np.ndarray:
    """Frame `index` of a sample clip, [height, width, 3] uint8 RGB: a background whose colour steps
    with the index (far apart from frame to frame, so each survives lossy coding recognisably)
    and a white square that moves 2 pixels a frame."""
    frame = np.empty((height, width, 3), np.uint8)
    frame[...] = ((index * 53) % 256, (index * 101 + 60) % 256, (index * 29 + 120) % 256)
    side = max(4, min(width, height) // 4)
    left = (2 * index) % max(1, width - side)
    top = (height - side) // 2
    frame[top:top + side, left:left + side] = 255
    return frame


def tone(seconds: float, tone_hz: float, sample_rate: int, start: int = 0) -> np.ndarray:
    """[S] float32 sine at `tone_hz`, amplitude TONE_AMPLITUDE, S = round(seconds * sample_rate), from
    sample `start` of the tone on (so pieces of it join without a seam)."""
    t = (start + np.arange(round(seconds * sample_rate))) / sample_rate
    return (TONE_AMPLITUDE * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)


def _video_codec() -> str:
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def _audio_codec() -> str:
    import av

    return "aac" if "aac" in av.codecs_available else "libopus"


def mux(container, stream, frame) -> None:
    """Encode `frame` (None: flush) on `stream` and write its packets into `container`."""
    for packet in stream.encode(frame):
        container.mux(packet)


def frame_count(seconds: float, fps: int = DEFAULT_FPS) -> int:
    """Frames of a clip of `seconds` at `fps`: round(seconds * fps)."""
    return round(seconds * fps)


def write_sample_clip(path, seconds: float = DEFAULT_SECONDS, fps: int = DEFAULT_FPS, size: tuple[int, int] = (64, 48),
                      tone_hz: float = 440.0, sample_rate: int = 16_000, audio: bool = True) -> Path:
    """Write an .mp4 of `frame_count(seconds, fps)` `clip_frame`s (H.264, else MPEG-4 part 2), `size` =
    (width, height), even; with `audio`, a mono `tone` track (AAC). Returns the path."""
    import av

    path = Path(path)
    width, height = size
    with av.open(str(path), mode="w", format="mp4") as container:
        video = container.add_stream(_video_codec(), rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if video.codec_context.name == "libx264":
            # one thread: x264's output then depends on nothing but the input
            video.codec_context.options = {"preset": "veryfast", "crf": "18", "threads": "1"}
        if audio:
            sound = container.add_stream(_audio_codec(), rate=sample_rate, layout="mono")
        for index in range(frame_count(seconds, fps)):
            frame = av.VideoFrame.from_ndarray(clip_frame(index, width, height), format="rgb24")
            frame.pts = index
            mux(container, video, frame)
        mux(container, video, None)
        if audio:
            total = round(seconds * sample_rate)
            for start in range(0, total, sample_rate):  # a second a frame; PyAV cuts it to the encoder's size
                samples = tone(min(sample_rate, total - start) / sample_rate, tone_hz, sample_rate, start)
                frame = av.AudioFrame.from_ndarray(samples[None, :], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = sample_rate, start
                mux(container, sound, frame)
            mux(container, sound, None)
    return path
