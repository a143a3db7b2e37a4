"""Per-layer KV buffers whose lengths differ by layer.

Layer l's buffer holds exactly the tokens that layer processed (N before the global
cut, |T_l| after) plus room for the generated tokens. Buffers are allocated once per
request and written in place: a decode step copies one new entry per layer, never
the past.
"""

from __future__ import annotations

import torch

from ..errors import FastAVError


class LayerKVBuffer:
    """Pre-allocated keys/values of one layer: [B, kv_heads, capacity, head_dim]."""

    def __init__(self, batch: int, kv_heads: int, capacity: int, head_dim: int, dtype, device):
        self.keys = torch.empty(batch, kv_heads, capacity, head_dim, dtype=dtype, device=device)
        self.values = torch.empty_like(self.keys)
        self.length = 0

    @property
    def capacity(self) -> int:
        return self.keys.shape[2]

    def append(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write [B, kv_heads, n, head_dim] new entries; return views of everything so far."""
        start, end = self.length, self.length + keys.shape[2]
        if end > self.capacity:
            raise FastAVError(
                f"the KV buffer holds {self.capacity} tokens and would need {end}: "
                "lower --max-new-tokens or allocate a larger generation budget"
            )
        self.keys[:, :, start:end] = keys
        self.values[:, :, start:end] = values
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def view(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.keys[:, :, : self.length], self.values[:, :, : self.length]


class PerLayerKVCache:
    """The decoder's cache: one `LayerKVBuffer` per layer.

    transformers' attention modules call `cache.update(keys, values, layer_idx)` and
    attend over what it returns; this object answers that call from its own buffers,
    so the upstream Qwen2 layers run unchanged on caches of different lengths.
    """

    def __init__(self, buffers: list[LayerKVBuffer]):
        self.buffers = buffers

    @classmethod
    def allocate(cls, capacities: list[int], batch: int, kv_heads: int, head_dim: int, dtype, device):
        return cls([LayerKVBuffer(batch, kv_heads, cap, head_dim, dtype, device) for cap in capacities])

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        return self.buffers[layer_idx].append(key_states, value_states)

    def __getitem__(self, layer: int) -> LayerKVBuffer:
        return self.buffers[layer]

    def lengths(self) -> list[int]:
        return [b.length for b in self.buffers]
