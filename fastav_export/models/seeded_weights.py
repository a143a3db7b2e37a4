"""Seeded random weights for the tiny models' encoders: the same seed gives the same modules anywhere."""

from __future__ import annotations

import torch
from torch import nn


def draw_weights(modules: tuple[nn.Module, ...], seed: int = 0, std: float = 0.1) -> None:
    """Fill every parameter with N(0, std) values (norm weights 1 + N(0, 0.1)), drawn in parameter-name
    order from a CPU generator seeded with seed + 1 (not the decoder's stream)."""
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in modules:
            for name, param in sorted(module.named_parameters()):
                values = torch.randn(param.shape, generator=generator)
                is_norm = "norm" in name.lower() or name.endswith((".bn.weight", "layer_norm.weight"))
                param.copy_(1.0 + 0.1 * values if is_norm and name.endswith("weight") else values * std)
