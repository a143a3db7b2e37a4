"""Requests of different videos decoding together: one graph call per graph per step for every row.

Each request is prefilled alone (its own layout, prompt length and pruning: the cuts, with
their per-request counts, run as they do for a single request), then joins a
`RaggedDecodeBatch` with the decoding state its prefill left (`GraphPipeline.hand_over`).
A decode step then runs every graph once for all rows: the weights are read once per step,
not once per request, which is where batching pays on a memory-bound decode.

Rows are ragged. Row r's layer l holds exactly its own entries (its kept prompt tokens at that
layer plus its generated tokens), and every graph takes one past length per row
(`past_length [B]`: GroupQueryAttention's per-row `seqlens_k` on the ORT flavour, a per-row
mask on the opset-23 flavour), so a row never attends over another row's or a padding
entry. A row's tokens and logits are those it gets alone.

Storage: per layer, one pool [S, Hkv, C_l, hd] for keys and one for values, row r in slot r.
C_l is the longest capacity (its own entries plus its generation budget) of the rows that
joined since the pool was sized, so the pool holds `slots x sum_l C_l` entries: `pool_bytes`
says how much, and a server admits a row when the rows with it fit its budget (`bytes_with`).
A row that joins is copied into the next free slot (the pool is re-sized only when a slot or a
capacity is missing: slots grow by half, within `max_bytes`); a row that leaves is replaced by
the last row, so the live rows stay the first B slots and every graph binds contiguous
[B, ...] views. The pools are released when the last row leaves.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..closing import Closing
from ..contract.kv_buffers import kv_entry_bytes
from ..contract.positions import positions_shape
from ..engine.manifest import EngineManifest
from ..errors import FastAVError
from .graph_pipeline import DecodeState, DecodeStep, GraphRunner


@dataclass(eq=False)
class BatchRow:
    """A handle on one request's row (the caller keeps it; the batch tracks its slot)."""

    capacities: tuple[int, ...]  # per layer: entries this row may hold (its prompt's plus its budget)
    slot: int = -1


class RaggedDecodeBatch(Closing):
    def __init__(self, manifest: EngineManifest, graphs: GraphRunner, global_layer: int,
                 max_bytes: int | None = None):
        """max_bytes: the most the pools may grow to ahead of need (a serving KV budget); None: no limit."""
        dims = manifest.dims
        self.max_bytes = max_bytes
        self.manifest, self.graphs, self.K = manifest, graphs, global_layer
        self.num_layers, self.position_rows = dims.num_layers, dims.position_rows
        self.kv_heads, self.head_dim = dims.num_kv_heads, dims.head_size
        self.rows: list[BatchRow] = []
        self._capacity: list[int] = [0] * self.num_layers  # C_l of the pools
        self._pools: list[tuple[torch.Tensor, torch.Tensor]] = []  # per layer (keys, values) [S, Hkv, C_l, hd]
        self._lengths = torch.zeros((self.num_layers, 0), dtype=torch.int64)  # [L, S]: each row's past per layer
        self._positions = torch.zeros(self._position_shape(0), dtype=torch.int64)  # each row's next position
        self._step: DecodeStep | None = None  # bound to the first B slots; rebuilt when B or the pools change

    # ---- sizes --------------------------------------------------------------------
    def _position_shape(self, slots: int) -> tuple[int, ...]:
        return positions_shape(slots, 1, self.position_rows)

    def entry_bytes(self) -> int:
        """Bytes of one token's keys and values in one layer."""
        return kv_entry_bytes(self.kv_heads, self.head_dim, self.graphs.dtype.itemsize)

    @property
    def slots(self) -> int:
        return self._lengths.shape[1]

    def pool_bytes(self) -> int:
        """Bytes the pools hold now."""
        return self.slots * sum(self._capacity) * self.entry_bytes()

    def _longest_with(self, capacities) -> list[int]:
        """Per layer, the longest capacity among the rows here and one more with `capacities`."""
        return [max([need, *(row.capacities[layer] for row in self.rows)]) for layer, need in enumerate(capacities)]

    def bytes_with(self, capacities) -> int:
        """Bytes of pools sized exactly for the rows here plus one more with per-layer `capacities`."""
        return (len(self.rows) + 1) * sum(self._longest_with(capacities)) * self.entry_bytes()

    # ---- rows in and out ------------------------------------------------------------
    def join(self, state: DecodeState) -> BatchRow:
        """Add a prefilled request (`GraphPipeline.hand_over()`, batch 1); returns its row."""
        kv = state.kv
        if kv[0].keys.shape[0] != 1:
            raise ValueError("a row joins from a single-request prefill (batch 1)")
        row = BatchRow(tuple(buffer.capacity for buffer in kv.buffers))
        self._make_room(row.capacities)
        slot = row.slot = len(self.rows)
        for layer, buffer in enumerate(kv.buffers):
            keys, values = self._pools[layer]
            keys[slot].zero_()
            values[slot].zero_()
            keys[slot, :, :buffer.length] = buffer.keys[0, :, :buffer.length]
            values[slot, :, :buffer.length] = buffer.values[0, :, :buffer.length]
            self._lengths[layer, slot] = buffer.length
        self._positions[..., slot, :] = state.next_position[..., 0, :]
        self.rows.append(row)
        self._step = None
        return row

    def leave(self, row: BatchRow) -> None:
        """Drop `row` (finished or cancelled): the last row moves into its slot."""
        if row.slot < 0 or row.slot >= len(self.rows) or self.rows[row.slot] is not row:
            raise ValueError("this row is not in the batch")
        last = self.rows[-1]
        if last is not row:
            for keys, values in self._pools:
                keys[row.slot] = keys[last.slot]
                values[row.slot] = values[last.slot]
            self._lengths[:, row.slot] = self._lengths[:, last.slot]
            self._positions[..., row.slot, :] = self._positions[..., last.slot, :]
            self.rows[row.slot], last.slot = last, row.slot
        self.rows.pop()
        row.slot = -1
        self._step = None
        if not self.rows:  # nothing decodes: give the memory back
            self._resize(0, [0] * self.num_layers)

    def _make_room(self, capacities) -> None:
        """Pools with a free slot and at least `capacities` per layer. Slots grow by half (a re-size
        copies every row, so not at every join), within `max_bytes`; capacities grow to the longest row."""
        if len(self.rows) < self.slots and all(c >= need for c, need in zip(self._capacity, capacities)):
            return
        needed = len(self.rows) + 1
        longest = [max(old, need) for old, need in zip(self._capacity, capacities)]
        if self.max_bytes is not None and needed * sum(longest) * self.entry_bytes() > self.max_bytes:
            longest = self._longest_with(capacities)  # rows that left held longer prompts: as `bytes_with` counts
        slots = max(needed, self.slots + self.slots // 2)
        if self.max_bytes is not None:
            slots = max(needed, min(slots, self.max_bytes // (sum(longest) * self.entry_bytes())))
        self._resize(slots, longest)

    def _resize(self, slots: int, capacities: list[int]) -> None:
        live = len(self.rows)
        # Empty, then zeroed where a row lives: masked-out entries still meet the values in a P·V
        # product (0 · NaN = NaN), so a row's slot is zeroed when it joins, and here beyond its old capacity.
        pools = [tuple(torch.empty((slots, self.kv_heads, capacity, self.head_dim), dtype=self.graphs.dtype,
                                   device=self.graphs.device) for _ in range(2)) for capacity in capacities]
        for old, new in zip(self._pools, pools):
            for old_tensor, new_tensor in zip(old, new, strict=True):
                kept = min(old_tensor.shape[2], new_tensor.shape[2])
                new_tensor[:live, :, :kept] = old_tensor[:live, :, :kept]
                new_tensor[:live, :, kept:] = 0
        lengths = torch.zeros((self.num_layers, slots), dtype=torch.int64)
        lengths[:, :live] = self._lengths[:, :live]
        positions = torch.zeros(self._position_shape(slots), dtype=torch.int64)
        positions[..., :live, :] = self._positions[..., :live, :]
        self._pools, self._capacity, self._lengths, self._positions = pools, list(capacities), lengths, positions
        self._step = None

    # ---- decoding -------------------------------------------------------------------
    def step(self, token_ids: dict[BatchRow, int]) -> dict[BatchRow, torch.Tensor]:
        """One decode step of every row: each row's last token in, its next-token logits [V] fp32 out."""
        if set(token_ids) != set(self.rows):
            raise ValueError("a step takes exactly one token for every row of the batch")
        batch = len(self.rows)
        for row in self.rows:
            if any(int(self._lengths[layer, row.slot]) >= row.capacities[layer] for layer in range(self.num_layers)):
                raise FastAVError("a row's KV buffers are full: it has generated its max_new_tokens")
        if self._step is None:
            buffers = [(keys[:batch], values[:batch]) for keys, values in self._pools]
            self._step = DecodeStep(self.manifest, self.graphs, self.K, buffers, batch)
        ids = torch.tensor([[token_ids[row]] for row in self.rows], dtype=torch.int64)
        lengths = {layer: self._lengths[layer, :batch] for layer in range(self.num_layers)}
        logits = self._step(ids.to(self.graphs.device), self._positions[..., :batch, :].to(self.graphs.device),
                            lengths)
        self._lengths[:, :batch] += 1
        self._positions[..., :batch, :] += 1
        return {row: logits[row.slot] for row in self.rows}

    def close(self) -> None:
        """Release the pools (the rows' KV)."""
        self.rows.clear()
        self._resize(0, [0] * self.num_layers)
