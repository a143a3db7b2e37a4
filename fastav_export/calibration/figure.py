"""The maps of the paper's Figure 2 for one sample: head-mean attention A_l and rollout R_l.

R_l = A~_l ... A~_1 A~_0 with A~ = alpha * A + (1 - alpha) * I: the rollout up to and including
layer l. These are N x N maps, materialised for one sample only (the calibration itself never
builds them).
"""

from __future__ import annotations

import numpy as np
import torch

from ..contract.layout import TokenLayout
from ..contract.pruning_config import PruningConfig
from ..reference.scoring import head_mean_attention
from ..reference.torch_reference import TorchReference


def figure_layers(num_layers: int, global_layer: int) -> list[int]:
    """The paper's layers: an early one (4), K, and a late one (L - 4), within the model, ascending."""
    return sorted({min(max(layer, 0), num_layers - 1) for layer in (4, global_layer, num_layers - 4)})


@torch.no_grad()
def rollout_maps(model, layout: TokenLayout, embeds: torch.Tensor, layers: list[int],
                 alpha: float, position_ids: torch.Tensor | None = None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """layer -> (A_l [N, N], R_l [N, N]) float32 of one sample ([1, N, D]; position_ids [1, N] or
    [3, 1, N], default 0..N-1)."""
    reference = TorchReference(model, layout, PruningConfig(global_layer=1))
    recorded = reference.dense_queries_and_keys(embeds, max(layers) + 1, position_ids)
    n = layout.n_tokens
    eye = torch.eye(n)
    product = eye.clone()
    maps = {}
    for layer, (queries, keys) in enumerate(recorded):
        attention = head_mean_attention(queries, keys, reference.scale)[0].float().cpu()
        product = (alpha * attention + (1 - alpha) * eye) @ product
        if layer in layers:
            maps[layer] = (attention.numpy(), product.numpy().copy())
    return maps
