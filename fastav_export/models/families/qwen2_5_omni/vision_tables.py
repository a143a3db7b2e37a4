"""The vision tower's size-dependent tables, computed in Python from `grid_thw` by transformers' own helpers.

Qwen2.5-Omni's vision encoder derives four tensors from the patch grid before its blocks run; its forward
accepts each of them precomputed under these names (`transformers.vision_utils`). The exported graph
takes them as inputs, so one graph serves every grid:

| name | shape | dtype | meaning |
|---|---|---|---|
| position_ids | [P, 2] | int64 | (row, column) of each patch, in 2 x 2 merge-block order: the 2-D rotary angles |
| window_index | [P / 4] | int64 | order of the merged patches window by window (the blocks run in this order) |
| cu_seqlens | [F + 1] | int32 | frame boundaries (in window order) for the full-attention blocks |
| cu_window_seqlens | [W + 1] | int32 | window boundaries for the windowed blocks |

P = sum of t * h * w over the grids, F = sum of t, W = the number of non-empty windows
(`window_size / patch_size / spatial_merge_size` merged patches a side).
"""

from __future__ import annotations

import numpy as np
import torch

from ....errors import FastAVError

VISION_TABLE_NAMES = ("position_ids", "window_index", "cu_seqlens", "cu_window_seqlens")


def as_grid_thw(grid_thw, spatial_merge_size: int) -> torch.Tensor:
    """grid_thw as a [n, 3] int64 tensor (one (t, h, w) row also accepted), checked against the merge size."""
    grid = np.asarray(grid_thw)
    if grid.ndim == 1:
        grid = grid[None]
    if grid.ndim != 2 or grid.shape[1] != 3 or grid.shape[0] == 0 or not np.issubdtype(grid.dtype, np.integer):
        raise FastAVError(f"grid_thw must be integer (t, h, w) rows, got shape {grid.shape} ({grid.dtype})")
    if (grid < 1).any():
        raise FastAVError(f"grid_thw must be positive, got {grid.tolist()}")
    if (grid[:, 1:] % spatial_merge_size).any():
        raise FastAVError(f"grid_thw heights and widths must be multiples of the spatial merge size "
                          f"{spatial_merge_size}, got {grid.tolist()}")
    return torch.from_numpy(grid.astype(np.int64))


def vision_tables(grid_thw, config) -> dict[str, np.ndarray]:
    """The tables of `VISION_TABLE_NAMES` for patches laid out as `grid_thw` ([n, 3] or one (t, h, w)),
    with `config` a `Qwen2_5OmniVisionEncoderConfig`; computed by the helpers the encoder's forward calls."""
    from transformers.vision_utils import (
        get_vision_cu_seqlens,
        get_vision_position_ids,
        get_vision_window_index,
    )

    merge = config.spatial_merge_size
    grid = as_grid_thw(grid_thw, merge)
    window_index, cu_window_seqlens = get_vision_window_index(
        grid, spatial_merge_size=merge, window_size=config.window_size, patch_size=config.patch_size)
    return {
        "position_ids": get_vision_position_ids(grid, merge).numpy().astype(np.int64),
        "window_index": window_index.numpy().astype(np.int64),
        "cu_seqlens": get_vision_cu_seqlens(grid).numpy().astype(np.int32),
        "cu_window_seqlens": cu_window_seqlens.numpy().astype(np.int32),
    }


def vision_graph_inputs(pixel_patches, grid_thw, config) -> dict[str, np.ndarray]:
    """The vision graph's feeds: `pixel_patches` [P, C * temporal_patch * patch²] (float32) and its tables."""
    patches = np.asarray(pixel_patches, dtype=np.float32)
    grid = as_grid_thw(grid_thw, config.spatial_merge_size)
    count = int(grid.prod(-1).sum())
    width = config.in_channels * config.temporal_patch_size * config.patch_size ** 2
    if patches.shape != (count, width):
        raise FastAVError(f"pixel patches have shape {patches.shape}, grid_thw {grid.tolist()} needs "
                          f"({count}, {width})")
    return {"pixel_patches": patches, **vision_tables(grid, config)}
