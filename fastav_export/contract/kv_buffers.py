"""Per-layer KV buffers whose lengths differ by layer: the one KV store of every backend.

Layer l's buffer holds exactly the tokens that layer processed (N before the global
cut, |T_l| after) plus room for the generated tokens. Buffers are allocated once per
request and written in place: a decode step adds one entry per layer, never copies the
past. The PyTorch reference fills them through transformers' cache interface
(`PerLayerKVCache.update`); the engine runtime binds them to its graphs, which either
write their new entries into them (in-place graphs: `advance`) or return the entries for
the runtime to write (`append`, or `write_at` inside a captured CUDA graph).
"""

from __future__ import annotations

import torch

from ..errors import FastAVError


def kv_entry_bytes(kv_heads: int, head_dim: int, itemsize: int) -> int:
    """Bytes one token's keys and values take in one layer."""
    return 2 * kv_heads * head_dim * itemsize


def request_kv_capacities(layer_tokens, max_new_tokens: int) -> list[int]:
    """Per layer, the entries one request's buffers hold: the tokens the layer processes (the
    schedule's `tokens`) plus the generation budget. What prefill allocates and a server budgets."""
    return [tokens + max_new_tokens for tokens in layer_tokens]


class LayerKVBuffer:
    """Pre-allocated keys/values of one layer: [B, kv_heads, capacity, head_dim] each.

    zeroed: filled with zeros rather than left uninitialised (a fused attention that masks
    the unused slots still multiplies them by zero weights, and 0 * NaN is NaN).
    """

    def __init__(self, batch: int, kv_heads: int, capacity: int, head_dim: int, dtype, device, zeroed: bool = False):
        allocate = torch.zeros if zeroed else torch.empty
        self.keys = allocate(batch, kv_heads, capacity, head_dim, dtype=dtype, device=device)
        self.values = allocate(batch, kv_heads, capacity, head_dim, dtype=dtype, device=device)
        self.length = 0

    @property
    def capacity(self) -> int:
        return self.keys.shape[2]

    def __iter__(self):
        """(keys, values): how graph I/O binds a layer's past and present."""
        return iter((self.keys, self.values))

    def advance(self, count: int) -> None:
        """Account for `count` entries written into the buffers by someone else (an in-place graph)."""
        if self.length + count > self.capacity:
            raise FastAVError(f"the KV buffer holds {self.capacity} tokens and would need {self.length + count}: "
                              "lower --max-new-tokens or allocate a larger generation budget")
        self.length += count

    def append(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write [B, kv_heads, n, head_dim] new entries; return views of everything so far."""
        start = self.length
        self.advance(keys.shape[2])
        self.keys[:, :, start:self.length] = keys
        self.values[:, :, start:self.length] = values
        return self.view()

    def write_at(self, slot: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Write one entry [B, kv_heads, 1, head_dim] at `slot` (a 1-element int64 tensor), without
        accounting for it: the slot lives on the device, so a captured CUDA graph writes where each
        replay needs (`advance` afterwards, on the host)."""
        self.keys.index_copy_(2, slot, keys)
        self.values.index_copy_(2, slot, values)

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
    def allocate(cls, capacities: list[int], batch: int, kv_heads: int, head_dim: int, dtype, device,
                 zeroed: bool = False):
        return cls([LayerKVBuffer(batch, kv_heads, cap, head_dim, dtype, device, zeroed) for cap in capacities])

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        return self.buffers[layer_idx].append(key_states, value_states)

    def __getitem__(self, layer: int) -> LayerKVBuffer:
        return self.buffers[layer]

    def __len__(self) -> int:
        return len(self.buffers)

    def lengths(self) -> list[int]:
        return [b.length for b in self.buffers]
