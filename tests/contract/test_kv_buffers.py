"""Per-layer KV buffers: written in place, sized per layer, refuse overflow."""

import pytest
import torch

from fastav_export.contract.kv_buffers import LayerKVBuffer, PerLayerKVCache
from fastav_export.errors import FastAVError


def test_append_writes_in_place_and_returns_views():
    buf = LayerKVBuffer(batch=2, kv_heads=2, capacity=6, head_dim=4, dtype=torch.float32, device="cpu")
    storage = buf.keys.data_ptr()
    k, v = buf.append(torch.ones(2, 2, 4, 4), torch.zeros(2, 2, 4, 4))
    assert k.shape == (2, 2, 4, 4) and k.data_ptr() == storage
    k, v = buf.append(torch.full((2, 2, 1, 4), 2.0), torch.ones(2, 2, 1, 4))
    assert k.shape[2] == 5 and float(k[0, 0, 4, 0]) == 2.0 and buf.keys.data_ptr() == storage
    with pytest.raises(FastAVError, match="max-new-tokens"):
        buf.append(torch.ones(2, 2, 2, 4), torch.ones(2, 2, 2, 4))


def test_cache_routes_updates_by_layer():
    cache = PerLayerKVCache.allocate([5, 3], batch=1, kv_heads=1, head_dim=2, dtype=torch.float32, device="cpu")
    cache.update(torch.ones(1, 1, 3, 2), torch.ones(1, 1, 3, 2), 1)
    assert cache.lengths() == [0, 3]


def test_engine_writes_in_place_or_at_a_device_slot_then_advance():
    """How the engine runtime fills the same buffers: an in-place graph writes, then `advance`;
    a captured decode step writes at a slot held in a tensor, then `advance` on the host."""
    buf = LayerKVBuffer(batch=1, kv_heads=1, capacity=4, head_dim=2, dtype=torch.float32, device="cpu", zeroed=True)
    assert float(buf.keys.abs().sum()) == 0.0
    keys, values = buf  # what graph I/O binds as past and present
    keys[:, :, :2] = 1.0
    buf.advance(2)
    buf.write_at(torch.tensor([buf.length]), torch.full((1, 1, 1, 2), 3.0), torch.full((1, 1, 1, 2), 4.0))
    assert buf.length == 2  # the write does not account for itself
    buf.advance(1)
    assert buf.view()[0][0, 0, :, 0].tolist() == [1.0, 1.0, 3.0] and float(buf.values[0, 0, 2, 0]) == 4.0
    with pytest.raises(FastAVError, match="holds 4 tokens and would need 5"):
        buf.advance(2)
