"""Qwen2-VL's frame resize rule, as Qwen2.5-Omni's image and video processors apply it.

A frame is resized to multiples of `factor` pixels (28: 14-pixel patches merged 2 x 2) on both
sides, keeping the aspect ratio as closely as possible, with its pixel count brought into
[min_pixels, max_pixels]. Restated from transformers' `smart_resize` (qwen2_vl image processors),
which the tests compare against; qwen-omni-utils' copy differs only for frames under 14 pixels or
with aspect ratios near the 200 limit.
"""

from __future__ import annotations

import math

from ....errors import FastAVError

MAX_ASPECT_RATIO = 200


def smart_resize(height: int, width: int, factor: int = 28, min_pixels: int = 56 * 56,
                 max_pixels: int = 14 * 14 * 4 * 1280) -> tuple[int, int]:
    """(height, width) in pixels after resizing: multiples of `factor`, pixel count within
    [min_pixels, max_pixels] (scaled by one common factor when the rounded size falls outside)."""
    if height < 1 or width < 1:
        raise FastAVError(f"a frame of {height} x {width} pixels cannot be resized: sides must be positive")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise FastAVError(f"the frame's aspect ratio {max(height, width) / min(height, width):.1f} is above the "
                          f"{MAX_ASPECT_RATIO} the model accepts: crop the video")
    # Python's round (halves to even), as upstream.
    new_h, new_w = round(height / factor) * factor, round(width / factor) * factor
    if new_h * new_w > max_pixels:
        scale = math.sqrt(height * width / max_pixels)
        new_h = max(factor, math.floor(height / scale / factor) * factor)
        new_w = max(factor, math.floor(width / scale / factor) * factor)
    elif new_h * new_w < min_pixels:
        scale = math.sqrt(min_pixels / (height * width))
        new_h = math.ceil(height * scale / factor) * factor
        new_w = math.ceil(width * scale / factor) * factor
    return new_h, new_w
