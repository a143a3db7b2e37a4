"""Small media files the tests write with PyAV: a video clip with a tone, and a WAV tone.

Frames are a pure function of their index (`clip_frame`), so a test can tell which frame a
decoder returned; the audio is a sine tone, so a test can find its frequency again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TONE_AMPLITUDE = 0.5


def clip_frame(index: int, width: int, height: int) -> np.ndarray:
    """Frame `index` of a test clip, [height, width, 3] uint8 RGB: a background whose colour steps
    with the index (far apart from frame to frame, so each survives lossy coding recognisably)
    and a white square that moves 2 pixels a frame."""
    frame = np.empty((height, width, 3), np.uint8)
    frame[...] = ((index * 53) % 256, (index * 101 + 60) % 256, (index * 29 + 120) % 256)
    side = max(4, min(width, height) // 4)
    left = (2 * index) % max(1, width - side)
    top = (height - side) // 2
    frame[top:top + side, left:left + side] = 255
    return frame


def tone(seconds: float, tone_hz: float, sample_rate: int) -> np.ndarray:
    """[S] float32 sine at `tone_hz`, amplitude TONE_AMPLITUDE, S = round(seconds * sample_rate)."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (TONE_AMPLITUDE * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)


def _video_codec() -> str:
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def _audio_codec() -> str:
    import av

    return "aac" if "aac" in av.codecs_available else "libopus"


def _encode(container, stream, frame) -> None:
    for packet in stream.encode(frame):
        container.mux(packet)


def write_test_clip(path, seconds: float = 3.0, fps: int = 8, size: tuple[int, int] = (64, 48),
                    tone_hz: float = 440.0, sample_rate: int = 16_000, audio: bool = True) -> Path:
    """Write an .mp4 of round(seconds * fps) `clip_frame`s (H.264, else MPEG-4 part 2), `size` =
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
        for index in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(clip_frame(index, width, height), format="rgb24")
            frame.pts = index
            _encode(container, video, frame)
        _encode(container, video, None)
        if audio:
            samples = tone(seconds, tone_hz, sample_rate)
            frame = av.AudioFrame.from_ndarray(samples[None, :], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = sample_rate, 0
            _encode(container, sound, frame)  # PyAV cuts it into the encoder's frame size
            _encode(container, sound, None)
    return path


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


def main(argv: list[str] | None = None) -> int:
    """`python -m fastav_export.testing.media_clips clip.mp4 [SECONDS]`: a test clip for the quickstart."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2 or args[0].startswith("-"):
        sys.stderr.write("usage: python -m fastav_export.testing.media_clips OUT.mp4 [SECONDS]  "
                         "(moving coloured frames with a 440 Hz tone)\n")
        return 2
    path = write_test_clip(args[0], seconds=float(args[1]) if len(args) == 2 else 3.0)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
