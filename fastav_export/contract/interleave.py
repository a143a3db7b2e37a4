"""video-SALMONN 2's per-frame layout: how many video and audio tokens a clip of T seconds gives.

The frames are sampled at `fps` (at most `max_frames`, spread uniformly beyond), each giving
`video_per_frame` rows. The audio is cut into `chunk_seconds` chunks (the last one padded),
each giving one token per Q-Former window: a chunk's `encoder_frames` Whisper positions in
windows of `window_seconds` (kernel = stride = round(encoder_frames * window / chunk), so
60 windows of 25 positions for 0.5 s, 88 of 17 for the code's default 1/3 s). All A audio
tokens are then stretched by nearest-neighbour upsampling to k * F rows,
k = ceil(A / F), and frame f takes rows [f k, (f + 1) k):

    [prefix text][frame 0: V video][k audio][frame 1: V video][k audio]...[question + header]

So k depends on the clip's duration: 2 for a 30 s clip at 1 fps (60 tokens over 30 frames),
6 for 10 s, 3 for 45 s (120 over 45) and 110 s (240 over 110).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import FastAVError
from .layout import AUDIO, TEXT, VIDEO, Segment, TokenLayout

WHISPER_CHUNK_SECONDS = 30.0
WHISPER_ENCODER_FRAMES = 1500  # Whisper's encoder positions per 30 s chunk (20 ms each)


def window_kernel(window_seconds: float, encoder_frames: int = WHISPER_ENCODER_FRAMES,
                  chunk_seconds: float = WHISPER_CHUNK_SECONDS) -> int:
    """Encoder positions per Q-Former window (and the stride between windows), rounded as upstream's
    Python `round`: 25 for 0.5 s, 17 for 1/3 s (16.67)."""
    return round(encoder_frames * window_seconds / chunk_seconds)


def windows_per_chunk(kernel: int, encoder_frames: int = WHISPER_ENCODER_FRAMES) -> int:
    """Full windows of `kernel` positions in a chunk (the positions after the last one are dropped)."""
    return (encoder_frames - kernel) // kernel + 1


@dataclass(frozen=True)
class FrameInterleave:
    """video_per_frame: rows per frame (182: 13 x 13 pooled patches and 13 row newlines).
    window_seconds:  the Q-Former's window (the public scripts' 0.5 s).
    fps, max_frames: frame sampling (1 fps, at most 110 frames).
    chunk_seconds, encoder_frames: the audio encoder's chunk and its positions (Whisper: 30 s, 1500)."""

    video_per_frame: int
    window_seconds: float = 0.5
    fps: float = 1.0
    max_frames: int = 110
    chunk_seconds: float = WHISPER_CHUNK_SECONDS
    encoder_frames: int = WHISPER_ENCODER_FRAMES

    def __post_init__(self):
        if not 0 < self.window_seconds <= self.chunk_seconds or self.window_kernel < 1:
            raise FastAVError(f"the audio window of {self.window_seconds} s must be positive and at most the "
                              f"{self.chunk_seconds:g} s chunk (and span at least one of its "
                              f"{self.encoder_frames} encoder positions)")
        if self.video_per_frame < 1 or self.max_frames < 1 or not self.fps > 0:
            raise ValueError(f"invalid frame interleave {self}")

    @property
    def window_kernel(self) -> int:
        return window_kernel(self.window_seconds, self.encoder_frames, self.chunk_seconds)

    @property
    def windows_per_chunk(self) -> int:
        return windows_per_chunk(self.window_kernel, self.encoder_frames)

    def chunks(self, seconds: float) -> int:
        """30 s chunks of a clip of `seconds` (at least one: a silent or very short clip still has one)."""
        return max(1, math.ceil(round(seconds, 6) / self.chunk_seconds))

    def frames(self, seconds: float) -> int:
        """Frames sampled from a clip of `seconds`: one per 1/fps, at most max_frames, at least one."""
        return min(self.max_frames, max(1, math.ceil(round(seconds * self.fps, 6))))

    def audio_tokens(self, chunks: int) -> int:
        """The Q-Former's output rows for `chunks` chunks (before upsampling)."""
        return self.windows_per_chunk * chunks

    def frame_audio_tokens(self, chunks: int, seconds: float) -> int:
        """How many of the audio tokens are spread over the frames: all of them, unless the clip is
        shorter than upstream's cap of round(seconds * 50) (50 = Whisper positions per second; only a
        one-chunk clip under 1.2 s reaches it); the rest follow the last frame."""
        rate = self.encoder_frames / self.chunk_seconds
        return min(self.audio_tokens(chunks), round(seconds * rate))

    def audio_per_frame(self, frames: int, chunks: int, seconds: float | None = None) -> int:
        """k = ceil(A / F), A the frames' audio tokens (`frame_audio_tokens`; all of them when seconds is None)."""
        spread = self.audio_tokens(chunks) if seconds is None else self.frame_audio_tokens(chunks, seconds)
        return math.ceil(spread / frames)

    def media_layout(self, frames: int, chunks: int, seconds: float, prefix_tokens: int,
                     suffix_tokens: int) -> TokenLayout:
        """[prefix][F x ([V video][k audio])][audio past the cap, if any][suffix] of a clip with `frames`
        sampled frames, `chunks` audio chunks and `seconds` of video."""
        if frames < 2:
            needed = "video-SALMONN 2 needs at least 2 (as upstream asserts)"
            if self.frames(seconds) >= 2:  # long enough on paper: its video stream ends early
                raise FastAVError(f"the {seconds:g} s clip gives only {frames} frame{'s' if frames != 1 else ''} "
                                  f"at {self.fps:g} fps, and {needed}: its video stream ends early (truncated or "
                                  "damaged?): re-encode it, or pass a complete clip")
            raise FastAVError(f"the clip gives {frames} frame{'s' if frames != 1 else ''} at {self.fps:g} fps, and "
                              f"{needed}: pass a clip longer than {1 / self.fps:g} s")
        spread = self.frame_audio_tokens(chunks, seconds)
        k = math.ceil(spread / frames)
        segments = [Segment(TEXT, prefix_tokens)]
        for f in range(frames):
            segments += [Segment(VIDEO, self.video_per_frame, frame=f), Segment(AUDIO, k, frame=f)]
        rest = self.audio_tokens(chunks) - spread
        if rest:
            segments.append(Segment(AUDIO, rest, frame=frames - 1))
        return TokenLayout((*segments, Segment(TEXT, suffix_tokens)))

    def layout_for_duration(self, seconds: float, prefix_tokens: int, suffix_tokens: int) -> TokenLayout:
        """The layout of a clip of `seconds` with this many text tokens around the media."""
        return self.media_layout(self.frames(seconds), self.chunks(seconds), seconds, prefix_tokens, suffix_tokens)

    def arrange_audio(self, rows: np.ndarray, frames: int, seconds: float) -> np.ndarray:
        """The encoder's audio rows [A, D] -> the layout's audio rows, in prompt order: the first
        `frame_audio_tokens` stretched to k * F by nearest-neighbour upsampling (upstream's
        F.interpolate, only when they do not divide evenly), then the rest unchanged."""
        chunks = rows.shape[0] // self.windows_per_chunk
        spread = self.frame_audio_tokens(chunks, seconds)
        size = math.ceil(spread / frames) * frames
        front = rows[:spread] if size == spread else upsample_nearest(rows[:spread], size)
        return np.concatenate([front, rows[spread:]])

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "FrameInterleave":
        return cls(int(data["video_per_frame"]), float(data["window_seconds"]), float(data["fps"]),
                   int(data["max_frames"]), float(data["chunk_seconds"]), int(data["encoder_frames"]))


def upsample_index(count: int, size: int) -> np.ndarray:
    """[size] int64: the source row of each row when `count` rows are stretched to `size` by
    nearest-neighbour resampling, as torch's `F.interpolate(x, size, mode="nearest")` picks them.

    Row i takes floor(i * scale) with scale = count / size computed in float32, as torch's
    kernel does; exact integer arithmetic picks a different row for some (count, size) pairs.
    """
    scale = np.float32(count) / np.float32(size)
    index = np.floor(np.arange(size, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(index, count - 1)


def upsample_nearest(rows: np.ndarray, size: int) -> np.ndarray:
    """rows [A, D] -> [size, D], each row the nearest source row (`upsample_index`)."""
    return rows[upsample_index(rows.shape[0], size)]
