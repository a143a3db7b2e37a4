"""Resize video frames as qwen-omni-utils does, without torchvision.

qwen-omni-utils' `fetch_video` resizes the sampled uint8 frames [T, C, H, W] with torchvision's
`transforms.functional.resize(..., BICUBIC, antialias=True)` and then casts them to float. For a
tensor, torchvision returns the frames unchanged when the size already matches; otherwise it casts
to float32, calls torch's `interpolate(mode="bicubic", align_corners=False, antialias=True)`,
clamps to [0, 255] (bicubic overshoots), rounds half to even (`torch.round`) and casts back to
uint8. This module makes exactly those calls, so the pixels equal torchvision's: the resized
frames are whole numbers in [0, 255], not the unrounded float interpolation.

Measured against an exact (float64) antialiased bicubic, torch's float32 interpolation is off by at
most 9e-3 of a level (1080p frames to 560 x 1008; its tap positions are float32), so after rounding
about 0.05 % of pixels sit one level apart from the exact result; torchvision's do too, as it makes
the same call.
"""

from __future__ import annotations

import numpy as np
import torch


def resize_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[H, W, 3] uint8 RGB -> [3, h, w] uint8, (h, w) = `size`: one frame as `resize_frames` resizes it
    (the kernel treats every frame of a batch alone, so resizing while decoding gives the same pixels)."""
    return resize_frames(frame[None], size)[0]


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[T, H, W, 3] uint8 RGB -> [T, 3, h, w] uint8, (h, w) = `size`: antialiased bicubic, clamped and
    rounded as torchvision resizes a uint8 tensor."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    # A channels-last view, as the frames reach torchvision (decord's and torchvision's readers both
    # permute [T, H, W, C] arrays): the kernel's summation order follows the memory layout.
    video = torch.from_numpy(frames).permute(0, 3, 1, 2)
    if tuple(video.shape[-2:]) == tuple(size):
        return video.contiguous().numpy()
    resized = torch.nn.functional.interpolate(video.float(), size=list(size), mode="bicubic", align_corners=False,
                                              antialias=True)
    return resized.clamp(0, 255).round().to(torch.uint8).contiguous().numpy()
