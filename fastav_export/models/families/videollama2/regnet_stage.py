"""A RegNet stage as the STC connector builds it, with timm's parameter names (no timm needed).

VideoLLaMA2's connector calls timm's `RegStage(depth=4, in_chs, out_chs, stride=1, dilation=1,
act_layer=nn.SiLU, norm_layer=LayerNorm2d)` and leaves every other `Bottleneck` argument at
timm's default (timm/models/regnet.py): bottle_ratio=1, group_size=1, se_ratio=0.25,
downsample="conv1x1", linear_out=False, no drop path. What that builds, per block `b{i}`:

    conv1  1x1 conv (no bias) -> channel LayerNorm -> SiLU        (`conv1.conv`, `conv1.bn`)
    conv2  3x3 depthwise conv (groups = channels) -> LN -> SiLU   (`conv2.conv`, `conv2.bn`)
    se     mean over h, w -> 1x1 conv -> SiLU -> 1x1 conv -> sigmoid gate, width round(in * 0.25)
    conv3  1x1 conv (no bias) -> LN, no activation               (`conv3.conv`, `conv3.bn`)
    downsample (only when in != out or stride != 1): 1x1 conv -> LN  (`downsample.conv`, `downsample.bn`)
    out = SiLU(conv3 + shortcut)

The norm is timm's `LayerNormAct2d` (what its ConvNormAct turns `LayerNorm2d` into): a LayerNorm
over the channels of an NCHW map, eps 1e-5 (that class's default, not LayerNorm2d's 1e-6).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

NORM_EPS = 1e-5
SE_RATIO = 0.25  # timm Bottleneck default, applied to the block's *input* width


class ChannelNormAct(nn.LayerNorm):
    """LayerNorm over C of [N, C, H, W], then an optional SiLU. Parameters: `weight`, `bias` ([C])."""

    def __init__(self, channels: int, apply_act: bool = True, eps: float = NORM_EPS):
        super().__init__(channels, eps=eps)
        self.act = nn.SiLU() if apply_act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # layer_norm normalises trailing dims: move C last and back.
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return self.act(x.permute(0, 3, 1, 2))


class ConvNormAct(nn.Module):
    """Conv2d (no bias, 'same' padding for odd kernels) -> ChannelNormAct. [N, in, H, W] -> [N, out, H/s, W/s]."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 1, stride: int = 1, groups: int = 1,
                 apply_act: bool = True):
        super().__init__()
        padding = ((stride - 1) + (kernel_size - 1)) // 2  # timm's symmetric padding for dilation 1
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride=stride, padding=padding, groups=groups,
                              bias=False)
        self.bn = ChannelNormAct(out_chs, apply_act=apply_act)  # named `bn` as in timm, for the weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class SqueezeExcite(nn.Module):
    """x * sigmoid(fc2(SiLU(fc1(mean_hw(x))))). [N, C, H, W] -> same; fc1/fc2 are 1x1 convs with bias."""

    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, kernel_size=1)
        self.act = nn.SiLU()
        self.fc2 = nn.Conv2d(reduced, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(self.act(self.fc1(x.mean(dim=(2, 3), keepdim=True))))
        return x * torch.sigmoid(scale)


class Bottleneck(nn.Module):
    """One RegNet block (see the module docstring). [N, in, H, W] -> [N, out, H/stride, W/stride]."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, bottle_ratio: float = 1.0, group_size: int = 1,
                 se_ratio: float = SE_RATIO):
        super().__init__()
        mid = int(round(out_chs * bottle_ratio))
        self.conv1 = ConvNormAct(in_chs, mid, 1)
        # group_size 1 -> one group per channel: a depthwise 3x3.
        self.conv2 = ConvNormAct(mid, mid, 3, stride=stride, groups=mid // group_size)
        # The SE width follows the block's input width (timm: round(in_chs * se_ratio)).
        self.se = SqueezeExcite(mid, int(round(in_chs * se_ratio))) if se_ratio else nn.Identity()
        self.conv3 = ConvNormAct(mid, out_chs, 1, apply_act=False)
        if in_chs != out_chs or stride != 1:
            self.downsample = ConvNormAct(in_chs, out_chs, 1, stride=stride, apply_act=False)
        else:
            self.downsample = nn.Identity()  # no parameters: identity shortcut
        self.act3 = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv3(self.se(self.conv2(self.conv1(x))))
        return self.act3(out + self.downsample(x))


class RegStage(nn.Module):
    """`depth` Bottlenecks named b1..b{depth}; only b1 changes width or stride. [N, in, H, W] -> [N, out, H', W']."""

    def __init__(self, depth: int, in_chs: int, out_chs: int, stride: int = 1, **block_kwargs):
        super().__init__()
        for i in range(depth):
            block = Bottleneck(in_chs if i == 0 else out_chs, out_chs, stride=stride if i == 0 else 1,
                               **block_kwargs)
            self.add_module(f"b{i + 1}", block)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.children():
            x = block(x)
        return x


@dataclass(frozen=True)
class RegStageConfig:
    depth: int
    in_chs: int
    out_chs: int

    def build(self) -> RegStage:
        return RegStage(self.depth, self.in_chs, self.out_chs)


def real_stage_config() -> RegStageConfig:
    """VideoLLaMA2.1-7B-AV's first stage `s1`: SigLIP width 1152 -> Qwen2-7B width 3584, 4 blocks."""
    return RegStageConfig(depth=4, in_chs=1152, out_chs=3584)


def tiny_stage_config() -> RegStageConfig:
    """The tiny first stage: 32 -> 64 channels, 4 blocks (b1 has a downsample shortcut, as in the real one)."""
    return RegStageConfig(depth=4, in_chs=32, out_chs=64)
