"""Attention rollout over layers 0..K-1: the importance that drives the global cut.

    A~_l = alpha * A_l + (1 - alpha) * I
    I^T  = u^T A~_{K-1} ... A~_1 A~_0        (u: mean over the chosen query rows)

Two implementations with the same result:
* `dense`: materialises each head-mean map A_l [N, N] and the product R. Simple and
  literal; O(K N^2) memory. Used to check the streaming form.
* `streaming`: keeps each layer's queries and keys and applies the chain backwards as
  vector-matrix products, rebuilding attention rows block by block: no N x N map.
"""

from __future__ import annotations

import torch

from ..contract.layout import TokenLayout
from ..contract.selection import rollout_query_weights
from .scoring import head_mean_attention, vector_times_attention

ROLLOUT_IMPLS = ("streaming", "dense")


def query_row_weights(layout: TokenLayout, rows: str, device) -> torch.Tensor:
    """u: [N] fp32 weights of the query rows averaged into the importance (on `device`)."""
    return torch.from_numpy(rollout_query_weights(layout, rows)).to(device)


class RolloutRecorder:
    """Collects what each dense layer contributes, then turns it into the importance."""

    def __init__(self, impl: str, alpha: float, scale: float, row_weights: torch.Tensor):
        if impl not in ROLLOUT_IMPLS:
            raise ValueError(f"rollout impl must be one of {ROLLOUT_IMPLS}")
        self.impl, self.alpha, self.scale, self.u = impl, alpha, scale, row_weights
        self._layers: list = []

    def record(self, queries: torch.Tensor, keys: torch.Tensor) -> None:
        """queries [B, H, N, hd] and keys [B, kv_heads, N, hd] of one layer, after RoPE."""
        if self.impl == "dense":
            self._layers.append(head_mean_attention(queries, keys, self.scale))
        else:
            self._layers.append((queries, keys))

    def importance(self) -> torch.Tensor:
        """[B, N] fp32 importance of every position."""
        if self.impl == "dense":
            return dense_rollout(self._layers, self.alpha, self.u)
        return streaming_rollout(self._layers, self.alpha, self.u, self.scale)


def dense_rollout(maps: list[torch.Tensor], alpha: float, u: torch.Tensor) -> torch.Tensor:
    """maps: A_0..A_{K-1}, each [B, N, N]. Returns u^T R with R = A~_{K-1} ... A~_0."""
    batch, n, _ = maps[0].shape
    eye = torch.eye(n, dtype=torch.float32, device=maps[0].device)
    product = eye.expand(batch, n, n)
    for attention in maps:
        product = (alpha * attention + (1 - alpha) * eye) @ product
    return torch.einsum("i,bij->bj", u, product)


def streaming_rollout(layers: list, alpha: float, u: torch.Tensor, scale: float) -> torch.Tensor:
    """layers: (queries, keys) of layers 0..K-1. The chain from layer K-1 backwards."""
    batch = layers[0][0].shape[0]
    vector = u.expand(batch, -1)
    for queries, keys in reversed(layers):
        vector = rollout_vector_step(vector, queries, keys, alpha, scale)
    return vector


def rollout_vector_step(vector: torch.Tensor, queries: torch.Tensor, keys: torch.Tensor, alpha: float,
                        scale: float) -> torch.Tensor:
    """v^T A~_l = alpha * v^T A_l + (1 - alpha) * v for one layer, A_l never materialised.

    vector [B, N]; queries [B, H, N, hd], keys [B, Hkv, N, hd] (the exported RolloutStep's eager form too).
    """
    return alpha * vector_times_attention(vector, queries, keys, scale) + (1 - alpha) * vector
