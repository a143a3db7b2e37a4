"""video-SALMONN 2's vision path with the checkpoint's key names.

Upstream (bytedance video-SALMONN 2, llava/model/multimodal_encoder/siglip_encoder_flash.py,
multimodal_projector/builder.py, llava_arch.py) for each frame:
  SigLIP-so400m with its last layer deleted (26 of 27 layers; the output of the last kept
  layer, before `post_layernorm`) -> 27 x 27 patches of 1152
  -> `mm_projector` (`mlp2x_gelu`: Linear(1152, D), GELU, Linear(D, D))
  -> 2 x 2 pooling with stride 2 on the 27 x 27 grid (`mm_pooling_position after`,
     `mm_spatial_pool_mode max`): 13 x 13, the odd last row and column dropped
  -> `image_newline` [D] appended after each row (`mm_newline_position grid`): 13 x 14 = 182 rows.

Keys: `model.vision_tower.vision_tower.vision_model.*` (layers 0..25, post_layernorm, no head),
`model.mm_projector.{0,2}.*`, `model.image_newline`.
"""

from __future__ import annotations

import torch
from torch import nn

from ...encoders.siglip_tower import SiglipTower

# Checkpoint key = PROJECTOR_PREFIX + SalmonnProjector key (`model.mm_projector.0.weight`, `model.image_newline`).
PROJECTOR_PREFIX = "model."
PROJECTOR_KEYS = ("model.mm_projector.", "model.image_newline")


def kept_layers_config(siglip_config):
    """The tower as upstream keeps it: one layer fewer than the SigLIP model, no attention-pooling head."""
    import copy

    config = copy.deepcopy(siglip_config)
    config.num_hidden_layers -= 1
    config.vision_use_head = False
    return config


def real_siglip_kept_config():
    """google/siglip-so400m-patch14-384 less its last layer: 26 layers of width 1152, 27 x 27 patches."""
    from ...encoders.siglip_tower import real_siglip_config

    return kept_layers_config(real_siglip_config())


def tiny_siglip_kept_config():
    """A tiny tower: 28 px frames in 4 px patches -> 7 x 7 patches of width 32, 2 layers kept (of 3)."""
    from transformers import SiglipVisionConfig

    return kept_layers_config(SiglipVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2, image_size=28,
        patch_size=4, num_channels=3, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6))


class SalmonnProjector(nn.Module):
    """The projector and the newline row: keys `mm_projector.{0,2}.*`, `image_newline` (under `model.`).

    forward(features [F, g*g, C]) -> [F * h * (w + 1), D]: projected, pooled 2 x 2 (`pool_mode` "max",
    as the public scripts, or "average"), a newline row after each grid row, h = w = g // 2.
    """

    def __init__(self, width: int, hidden: int, grid: int, pool_mode: str = "max"):
        super().__init__()
        self.mm_projector = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.image_newline = nn.Parameter(torch.zeros(hidden))
        self.grid, self.pool_mode = grid, pool_mode

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        projected = self.mm_projector(features)  # [F, g*g, D]
        frames, _, hidden = projected.shape
        grid = projected.view(frames, self.grid, self.grid, hidden).permute(0, 3, 1, 2)  # [F, D, g, g]
        pool = nn.functional.max_pool2d if self.pool_mode == "max" else nn.functional.avg_pool2d
        pooled = pool(grid, 2).permute(0, 2, 3, 1)  # [F, h, w, D]: an odd last row and column dropped
        side = pooled.shape[1]
        newline = self.image_newline.to(pooled.dtype).expand(frames, side, 1, hidden)
        return torch.cat([pooled, newline], dim=2).reshape(-1, hidden)


class SalmonnVisionEncoder(nn.Module):
    """forward(pixel_values [F, 3, S, S]) -> [F * h * (w + 1), D]: each frame's pooled grid, row by row,
    a newline row after each grid row (h = w = (S / patch) // 2).

    The tower runs every layer it holds (select_layer -1: the kept config already lacks the
    deleted layer).
    """

    def __init__(self, siglip_kept_config, hidden: int, pool_mode: str = "max"):
        super().__init__()
        self.tower = SiglipTower(siglip_kept_config, select_layer=-1)
        grid = siglip_kept_config.image_size // siglip_kept_config.patch_size
        self.projector = SalmonnProjector(siglip_kept_config.hidden_size, hidden, grid, pool_mode)

    @property
    def rows_per_frame(self) -> int:
        side = self.projector.grid // 2
        return side * (side + 1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.projector(self.tower(pixel_values))

    def for_export(self) -> nn.Module:
        return self
