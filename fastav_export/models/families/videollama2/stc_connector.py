"""VideoLLaMA2's STC connector, `stc_connector_v35`, with the checkpoint's key names.

Upstream (DAMO-NLP-SG/VideoLLaMA2, branch `audio_visual`, videollama2/model/projector.py):
`build_vision_projector` maps `mm_projector_type: stc_connector_v35` to `STCConnectorV35(config)`,
built with encoder width `mm_hidden_size` (1152), LLM width `hidden_size` (3584), depth 4,
mlp_depth 2, downsample (2, 2, 2). Its parts, in order:

    s1       RegStage(4 blocks, encoder -> hidden)        per frame, spatial mixing
    sampler  Conv3d(hidden, hidden, kernel 2, stride 2, padding 0, bias) + SiLU   (`sampler.0`)
    s2       RegStage(4 blocks, hidden -> hidden)         per pooled frame
    readout  Linear -> GELU -> Linear (hidden -> hidden)  (`readout.0`, `readout.2`)

It is `model.mm_projector` in `Videollama2Qwen2ForCausalLM`, so checkpoint key =
CHECKPOINT_PREFIX + STCConnectorV35 key. The plain `STCConnector` differs only by the sampler's
padding=1 (27 -> 14); V35 uses padding 0.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ....errors import FastAVError
from .regnet_stage import RegStage

CHECKPOINT_PREFIX = "model.mm_projector."


def pooled_side(side: int, factor: int = 2) -> int:
    """Patches per side after a kernel = stride = `factor` conv without padding: 27 -> 13, 6 -> 3.

    floor((side - factor) / factor) + 1: windows tile the grid from the top-left and an
    incomplete window at the edge is dropped (27 = 13 * 2 + 1, so the last row and column of
    patches never reach the LLM).
    """
    return (side - factor) // factor + 1


def build_mlp(depth: int, in_features: int, out_features: int) -> nn.Sequential:
    """Linear, then (GELU, Linear) x (depth - 1): keys `0`, `2`, ... as upstream's `build_mlp`."""
    modules: list[nn.Module] = [nn.Linear(in_features, out_features)]
    for _ in range(1, depth):
        modules += [nn.GELU(), nn.Linear(out_features, out_features)]
    return nn.Sequential(*modules)


@dataclass(frozen=True)
class STCConfig:
    encoder_hidden: int
    hidden: int
    depth: int = 4
    mlp_depth: int = 2
    downsample: tuple[int, int, int] = (2, 2, 2)


def real_stc_config() -> STCConfig:
    """VideoLLaMA2.1-7B-AV: SigLIP so400m (1152) -> Qwen2-7B (3584)."""
    return STCConfig(encoder_hidden=1152, hidden=3584)


def tiny_stc_config() -> STCConfig:
    """Tiny sizes for tests: the tiny SigLIP (32) -> a 64-wide decoder."""
    return STCConfig(encoder_hidden=32, hidden=64)


class STCConnectorV35(nn.Module):
    """One clip's frame features -> LLM tokens.

    forward(x [T, P, C_enc]) -> [T' * h' * w', hidden], time-major then row-major, with
    P = h * w (a square grid), T' = T // 2, h' = pooled_side(h) (27 -> 13; 6 -> 3).
    16 frames x 27 x 27 patches -> 8 * 13 * 13 = 1352 tokens.
    """

    def __init__(self, encoder_hidden: int, hidden: int, depth: int = 4, mlp_depth: int = 2,
                 downsample: tuple[int, int, int] = (2, 2, 2)):
        super().__init__()
        self.encoder_hidden = encoder_hidden
        self.hidden = hidden
        self.downsample = tuple(downsample)
        self.s1 = RegStage(depth, encoder_hidden, hidden) if depth else nn.Identity()
        # kernel = stride: non-overlapping 2 (frames) x 2 x 2 (patches) windows, no padding.
        self.sampler = nn.Sequential(
            nn.Conv3d(hidden, hidden, kernel_size=self.downsample, stride=self.downsample, padding=0, bias=True),
            nn.SiLU(),
        )
        self.s2 = RegStage(depth, hidden, hidden) if depth else nn.Identity()
        self.readout = build_mlp(mlp_depth, hidden, hidden)

    @classmethod
    def from_config(cls, config: STCConfig) -> STCConnectorV35:
        return cls(**asdict(config))

    def output_tokens(self, frames: int, patches: int) -> int:
        """Rows `forward` returns for `frames` frames of `patches` patches each."""
        kt, kh, kw = self.downsample
        side = math.isqrt(patches)
        return (frames // kt) * pooled_side(side, kh) * pooled_side(side, kw)

    def check_input(self, x: torch.Tensor) -> int:
        """Raise FastAVError unless x is [T, h * h, encoder_hidden] with enough frames and patches; return h."""
        if x.dim() != 3 or x.shape[2] != self.encoder_hidden:
            raise FastAVError(f"STC connector input has shape {tuple(x.shape)}: "
                              f"pass one clip as [frames, patches, {self.encoder_hidden}]")
        frames, patches = int(x.shape[0]), int(x.shape[1])
        side = math.isqrt(patches)
        if side * side != patches:
            raise FastAVError(f"STC connector got {patches} patches per frame, not a square grid: "
                              "pass the vision tower's patch features unchanged")
        kt, kh, kw = self.downsample
        if frames < kt or side < max(kh, kw):
            raise FastAVError(f"STC connector got {frames} frames of {side} x {side} patches: "
                              f"it needs at least {kt} frames of {max(kh, kw)} x {max(kh, kw)}")
        return side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[T, h*w, C_enc] -> [T' * h' * w', hidden]."""
        side = self.check_input(x)
        frames = x.shape[0]
        # Patch index = row * w + col, so a plain reshape recovers the grid; frames act as the batch.
        grid = x.reshape(frames, side, side, self.encoder_hidden).permute(0, 3, 1, 2)  # [T, C_enc, h, w]
        grid = self.s1(grid)  # [T, H, h, w]
        # Conv3d wants [N, C, T, h, w]: the clip is the batch of one, time becomes a conv axis.
        pooled = self.sampler(grid.permute(1, 0, 2, 3).unsqueeze(0))  # [1, H, T', h', w']
        pooled = pooled.squeeze(0).permute(1, 0, 2, 3)  # [T', H, h', w']
        pooled = self.s2(pooled)
        tokens = pooled.permute(0, 2, 3, 1).reshape(-1, self.hidden)  # time-major, then rows, then columns
        return self.readout(tokens)
