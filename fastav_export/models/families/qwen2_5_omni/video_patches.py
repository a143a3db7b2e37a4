"""Resized frames -> the vision tower's `pixel_values_videos`, as transformers' Qwen2-VL video processor makes them.

Qwen2.5-Omni's processor hands a video to `Qwen2VLVideoProcessor` (which needs torchvision, so it
is restated here in torch): rescale by 1/255 and normalise with the CLIP mean and std (fused:
(x - 255 mean) / (255 std) in float32), then cut the frames into patches of `temporal_patch_size`
frames x `patch_size` x `patch_size` pixels. Patches are listed temporal group by temporal group,
and inside a group in 2 x 2 merge blocks (block row, block column, then the patch's row and column
inside its block), so the tower's merger finds the four patches of a merged token next to each
other; each patch is flattened channel-major: [C, temporal, row, column]. Frame sizes are already
multiples of patch_size * merge_size (`resize_rule.smart_resize`), so the processor's own resize
leaves them as they are.
"""

from __future__ import annotations

import numpy as np
import torch

from ....errors import FastAVError

# transformers' OPENAI_CLIP_MEAN / OPENAI_CLIP_STD: Qwen2.5-Omni's preprocessor_config.json values.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def video_patches(frames, patch_size: int = 14, temporal_patch_size: int = 2, merge_size: int = 2,
                  image_mean=CLIP_MEAN, image_std=CLIP_STD) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """frames [T, 3, H, W] (uint8, or float holding 0..255) -> (pixel_values_videos [t * h * w, 3 * tp * p * p]
    float32, video_grid_thw (t, h, w)), with t = T / tp, h = H / p, w = W / p; tp = temporal_patch_size,
    p = patch_size. T must be a multiple of tp (qwen-omni-utils samples even counts) and H, W multiples of
    p * merge_size."""
    video = frames if isinstance(frames, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(frames))
    if video.ndim != 4 or video.shape[1] != 3:
        raise ValueError(f"frames must be [T, 3, H, W], got {list(video.shape)}")
    count, channels, height, width = video.shape
    block = patch_size * merge_size
    if count == 0 or count % temporal_patch_size or height % block or width % block:
        raise FastAVError(f"{count} frames of {height} x {width} pixels cannot be cut into patches: the frame count "
                          f"must be a positive multiple of {temporal_patch_size} and the sides multiples of {block}")
    scale = 1.0 / (1 / 255)  # the processor's fused rescale factor, computed as it does
    mean = (torch.tensor(image_mean) * scale).view(1, channels, 1, 1)
    std = (torch.tensor(image_std) * scale).view(1, channels, 1, 1)
    video = (video.to(torch.float32) - mean) / std

    grid_t, grid_h, grid_w = count // temporal_patch_size, height // patch_size, width // patch_size
    patches = video.reshape(grid_t, temporal_patch_size, channels, grid_h // merge_size, merge_size, patch_size,
                            grid_w // merge_size, merge_size, patch_size)
    # -> (group, block row, block column, row in block, column in block, channel, frame in group, pixel row, column)
    patches = patches.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    flat = patches.reshape(grid_t * grid_h * grid_w, channels * temporal_patch_size * patch_size * patch_size)
    return flat.contiguous(), (grid_t, grid_h, grid_w)
