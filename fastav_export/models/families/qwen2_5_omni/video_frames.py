"""Which frames of a decoded clip Qwen2.5-Omni sees, and at what size (qwen-omni-utils' `fetch_video`).

The count is `video_sampling.sampled_frame_count` (2 fps, clamped to [4, 768], even), lowered to an
engine's frame limit when one is given: qwen-omni-utils' `max_frames` option, which caps the count
before it is rounded down to an even number, so the capped count is min(count, even part of the limit).
The frames are the rounded points of an evenly spaced float32 line from the first to the last frame
(upstream's `torch.linspace(...).round()`, ties to even). Their size is `smart_resize` of the decoded
size within the video pixel limits, where the upper limit shrinks so that all frames together stay
within VIDEO_TOTAL_PIXELS.
"""

from __future__ import annotations

import torch

from ....errors import FastAVError
from .video_sampling import (  # noqa: F401  (frame_pixel_limit, frame_size: this module's API too)
    FRAME_FACTOR,
    MAX_FRAMES,
    frame_pixel_limit,
    frame_size,
    sampled_frame_count,
)


def frame_count(total_frames: int, source_fps: float, max_frames: int = MAX_FRAMES) -> int:
    """Frames sampled from a clip of `total_frames` at `source_fps`, at most `max_frames` (an engine's
    limit, at least FRAME_FACTOR): an even number in [2, min(max_frames, total_frames)]."""
    if not FRAME_FACTOR <= max_frames <= MAX_FRAMES:  # a build setting, never a user's input
        raise ValueError(f"max_frames must be within [{FRAME_FACTOR}, {MAX_FRAMES}], got {max_frames}")
    if total_frames < FRAME_FACTOR:
        raise FastAVError(f"a video of {total_frames} frame(s) is too short: Qwen2.5-Omni needs at least "
                          f"{FRAME_FACTOR} frames")
    return min(sampled_frame_count(total_frames, source_fps), max_frames // FRAME_FACTOR * FRAME_FACTOR)


def frame_indices(total_frames: int, count: int) -> list[int]:
    """`count` indices spread evenly from frame 0 to frame total_frames - 1, increasing (count <= total_frames)."""
    return torch.linspace(0, total_frames - 1, count).round().long().tolist()
