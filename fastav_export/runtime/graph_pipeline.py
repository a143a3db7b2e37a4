"""The FastAV runtime over an engine directory's graphs, whatever executes them.

Prefill:  pre (layers 0..K-1 on all N tokens; the global cut inside layer K-1)
          -> post_K (the fine cut inside) -> post_K+1 -> ... -> post_{L-1} (logits)
Decode:   embed -> pre -> post_K -> ... -> post_{L-1}, one token, every cut keeping it.

A cut is a TopKGather inside the graph: the runtime gives it the token lists
(`candidates`, `protected`, both local indices) and the kept count (the length of
`keep`), all computed from the layout and the schedule, never from data; the graph
returns the kept tokens' hidden states, their position ids and their local indices.
Position ids are [B, n], or [3, B, n] for an M-RoPE decoder (the manifest's
`dims.mrope_section`); a kept token keeps all its rows, and decoding continues at the
last token's position + 1 in every row (`contract/positions.py`).

Each layer owns one KV buffer [B, Hkv, n_l + T, hd] allocated at prefill (n_l = N for
l < K). How new entries get there depends on the graph flavour (see
export/custom_ops.py): "ort-contrib" graphs take the buffer as both their past input
and their present output and write the new entries in place (ONNX Runtime's
GroupQueryAttention); "onnx-standard" graphs read the buffer as the past and return
only the new entries, which are copied in at the next free slot. Either way the past
is never copied and decode shapes never change (what CUDA-graph capture needs).

Chunked prefill (in-place flavour, one row): a graph call whose cut keeps a fixed set of
tokens (the global cut of a positional or dense run, not a rollout ranking; a later layer
without a cut, and the last layer) runs over the tokens in windows of `prefill_chunk`,
each over the buffer the earlier windows wrote, its cut keeping that window's share of the
kept set. Causal attention then scores each window only against the keys it can see, where
one call's fused attention scores every query against every key and masks half of them.
The kept tokens and KV entries are the same, and on ONNX Runtime the logits too, bit for bit.

Decoding runs a `DecodeStep`: every tensor a step reads or writes is allocated once
after prefill and updated in place (token ids, position, past lengths), so each graph
call is prepared once (`GraphRunner.prepare`: ONNX Runtime keeps its I/O binding,
TensorRT its tensor addresses, and can capture the whole step in a CUDA graph).

A backend supplies only a `GraphRunner`: something that runs one named graph with
every input and output bound to caller-owned torch tensors on its device. ONNX
Runtime binds CPU tensors, TensorRT binds CUDA tensors; the selection logic, buffers
and bookkeeping here are shared, so both backends keep the same tokens by
construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch

from ..closing import Closing
from ..contract import graph_io
from ..contract.backend_protocol import PrefillOutput
from ..contract.kv_buffers import PerLayerKVCache, request_kv_capacities
from ..contract.layout import TokenLayout
from ..contract.positions import check_positions, default_positions, next_positions, positions_shape
from ..contract.pruning_config import PruningConfig
from ..contract.schedule import make_schedule
from ..contract.selection import positional_keep_mask, rollout_query_weights
from ..engine.manifest import EngineManifest
from ..engine.requests import check_request
from ..errors import FastAVError
from .embedding import embedding_table


class GraphRunner(Protocol):
    """Runs one engine graph by name; outputs are preallocated and written in place."""

    name: str  # the engine backend: "ort" or "trt"
    device: torch.device
    dtype: torch.dtype  # the engine's activation type (hidden states, KV entries)

    def run(self, graph: str, inputs: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor]) -> None: ...

    def close(self) -> None: ...

    def prepare(self, graph: str, inputs: dict[str, torch.Tensor],
                outputs: dict[str, torch.Tensor]) -> Callable[[], None]:
        """A call that runs `graph` on exactly these tensors (their contents may change between calls)."""
        ...


@dataclass
class DecodeState:
    """A prefilled request, ready to decode: its KV buffers (batch B) and next positions
    ([B, 1], or [3, B, 1] for M-RoPE)."""

    kv: PerLayerKVCache
    next_position: torch.Tensor


class GraphPipeline(Closing):
    """prefill / decode / embed / schedule over `graphs` (same interface as `TorchReference`)."""

    name = "graphs"
    # Tokens per graph call in a chunked prefill (None: one call). 256 and 512 were the fastest of
    # 128..1,024 for the mid-size model's 2,892-token prompt on ONNX Runtime's CPU
    # (`python benchmarks/prefill_kernels.py`, docs/measured.md).
    prefill_chunk: int | None = 256

    def __init__(self, manifest: EngineManifest, layout: TokenLayout, config: PruningConfig, graphs: GraphRunner):
        dims = manifest.dims
        self.manifest, self.layout, self.graphs = manifest, layout, graphs
        self.config = config.resolve(dims.num_layers)
        self.schedule = make_schedule(layout, self.config, dims.num_layers)
        self.device, self.dtype = graphs.device, graphs.dtype
        self.num_layers, self.K = dims.num_layers, self.config.global_layer
        self.kv_heads, self.head_dim = dims.num_kv_heads, dims.head_size
        self.position_rows = dims.position_rows
        self.in_place_kv = graph_io.IN_PLACE_KV[manifest.flavour]
        self._candidate = torch.from_numpy(layout.candidate_mask()).to(self.device)
        self.kv: PerLayerKVCache | None = None  # this request's buffers, allocated by prefill
        self._decode_step: DecodeStep | None = None

    # ---- helpers ------------------------------------------------------------------
    def _empty(self, shape, dtype=None) -> torch.Tensor:
        return torch.empty(shape, dtype=dtype or self.dtype, device=self.device)

    def _lengths(self, batch: int, value: int) -> torch.Tensor:
        """past_length [B]: one length per row (every row of one prefill has the same)."""
        return torch.full((batch,), value, dtype=torch.int64, device=self.device)

    def _prefill_kv(self, layers, batch: int, new: int) -> tuple[dict, dict]:
        """(past inputs, present outputs) of `layers` in prefill (see the module docstring):
        the buffers themselves (in place), or an empty past and the new entries (append)."""
        inputs, outputs = {}, {}
        for layer in layers:
            buffer = self.kv[layer]
            if self.in_place_kv:
                past = present = buffer
            else:
                empty = self._empty((batch, self.kv_heads, 0, self.head_dim))
                past = (empty, empty)
                present = tuple(self._empty((batch, self.kv_heads, new, self.head_dim)) for _ in range(2))
            inputs.update(zip(graph_io.past(layer), past, strict=True))
            outputs.update(zip(graph_io.present(layer), present, strict=True))
        return inputs, outputs

    def _store(self, outputs: dict, layers, new: int) -> None:
        """Account for each layer's new entries (writing them in when the graph did not)."""
        for layer in layers:
            if self.in_place_kv:
                self.kv[layer].advance(new)
            else:
                self.kv[layer].append(*(outputs[name] for name in graph_io.present(layer)))

    def _cut(self, original: torch.Tensor, eligible: torch.Tensor | None, keep: int) -> dict:
        """TopKGather inputs keeping the non-candidates plus the `keep` best of the `eligible` candidates.

        original [B, n]: original index of each current token; eligible [N] bool over
        original positions, or None to keep every token. Every row has the same counts
        (they come from the layout), so the per-row index lists stack into [B, C] and [B, M].
        """
        batch, n = original.shape
        local = torch.arange(n, device=self.device).expand(batch, n)
        if eligible is None:
            return {"candidates": local[:, :0].contiguous(), "protected": local.contiguous(),
                    "keep": self._empty((0,), torch.int64)}
        candidates = eligible[original].nonzero()[:, 1].reshape(batch, -1)
        protected = (~self._candidate[original]).nonzero()[:, 1].reshape(batch, -1)
        return {"candidates": candidates.contiguous(), "protected": protected.contiguous(),
                "keep": torch.zeros(keep, dtype=torch.int64, device=self.device)}

    def _positions_shape(self, batch: int, tokens: int) -> tuple[int, ...]:
        return positions_shape(batch, tokens, self.position_rows)

    def _cut_outputs(self, batch: int, kept: int, head: dict) -> dict:
        return {**head, "kept_index": self._empty((batch, kept), torch.int64),
                "kept_position_ids": self._empty(self._positions_shape(batch, kept), torch.int64)}

    @staticmethod
    def _kept_count(cut: dict) -> int:
        return cut["protected"].shape[1] + cut["keep"].shape[0]

    def _run_pre(self, hidden, positions, cut: dict, extra_inputs: dict, extra_outputs: dict) -> dict:
        """Layers 0..K-1 on all [B, N] tokens (the cut inside layer K-1); keys/values into the buffers."""
        batch, new = hidden.shape[:2]
        layers = range(self.K)
        kept = self._kept_count(cut)
        past, present = self._prefill_kv(layers, batch, new)
        outputs = self._cut_outputs(batch, kept, {"hidden_states": self._empty((batch, kept, hidden.shape[2]))})
        outputs.update(present)
        outputs.update(extra_outputs)
        self.graphs.run(graph_io.PRE,
                        {"inputs_embeds": hidden, "position_ids": positions,
                         "past_length": self._lengths(batch, self.kv[0].length), **past, **cut, **extra_inputs},
                        outputs)
        self._store(outputs, layers, new)
        return outputs

    def _chunkable(self, cut: dict | None, batch: int, n: int) -> bool:
        """Whether a graph call over n tokens can run in chunks: graphs that write the buffer in place,
        one row (GroupQueryAttention takes several new tokens over a past for one row only), more tokens
        than a chunk, and no cut or one keeping every candidate it is given (a fixed set: a ranking cut
        needs every token's score first)."""
        fixed = cut is None or cut["keep"].shape[0] == cut["candidates"].shape[1]
        return (self.in_place_kv and self.prefill_chunk is not None and batch == 1 and n > self.prefill_chunk
                and fixed)

    def _chunks(self, n: int, cut: dict | None):
        """(start, end, the window's cut) per window of `prefill_chunk` tokens: the cut keeps the window's
        share of the kept set, in window-local indices (None without a cut)."""
        kept = None if cut is None else torch.cat((cut["protected"], cut["candidates"]), dim=1).sort(dim=1).values[0]
        for start in range(0, n, self.prefill_chunk):
            end = min(start + self.prefill_chunk, n)
            window_cut = None
            if kept is not None:
                inside = kept[(kept >= start) & (kept < end)] - start
                window_cut = {"candidates": inside[None, :0].contiguous(), "protected": inside[None].contiguous(),
                              "keep": self._empty((0,), torch.int64)}
            yield start, end, window_cut

    @staticmethod
    def _joined(pieces, hidden_name: str, original: torch.Tensor):
        """One call's (kept hidden states, kept positions, kept original indices) from [(start, outputs)]."""
        hidden = torch.cat([outputs[hidden_name] for _, outputs in pieces], dim=1)
        positions = torch.cat([outputs["kept_position_ids"] for _, outputs in pieces], dim=-1).contiguous()
        index = torch.cat([outputs["kept_index"] + start for start, outputs in pieces], dim=1)
        return hidden, positions, torch.gather(original, 1, index)

    def _run_pre_chunked(self, hidden, positions, original, cut: dict, rollout_inputs: dict):
        """The pre graph window by window, each over the buffer the earlier ones wrote."""
        pieces = []
        for start, end, window_cut in self._chunks(hidden.shape[1], cut):
            extra_inputs, extra_outputs = dict(rollout_inputs), {}
            if rollout_inputs:  # not ranking: the importance is not computed, only shaped like the window
                extra_inputs["rollout_weights"] = rollout_inputs["rollout_weights"][start:end].contiguous()
                extra_outputs["importance"] = self._empty((hidden.shape[0], end - start), torch.float32)
            pieces.append((start, self._run_pre(hidden[:, start:end].contiguous(),
                                                positions[..., start:end].contiguous(),  # [B, n] or [3, B, n]
                                                window_cut, extra_inputs, extra_outputs)))
        return self._joined(pieces, "hidden_states", original)

    def _run_post_chunked(self, layer: int, hidden, positions, original, cut: dict | None):
        """A post graph window by window: (kept hidden, positions, original indices), or for the last
        layer (no cut) the last window's outputs, whose logits are the last token's."""
        pieces = [(start, self._run_post(layer, hidden[:, start:end].contiguous(),
                                         positions[..., start:end].contiguous(), window_cut))
                  for start, end, window_cut in self._chunks(hidden.shape[1], cut)]
        return pieces[-1][1] if cut is None else self._joined(pieces, "layer_output", original)

    def _run_post(self, layer: int, hidden, positions, cut: dict | None) -> dict:
        """Layer `layer` >= K on its [B, n_l] tokens: the kept tokens' layer_output (or the logits)."""
        batch, new = hidden.shape[:2]
        past, present = self._prefill_kv([layer], batch, new)
        if cut is None:  # the last layer
            outputs = {"logits": self._empty((batch, self.manifest.dims.vocab_size), torch.float32)}
        else:
            kept = self._kept_count(cut)
            outputs = self._cut_outputs(batch, kept, {"layer_output": self._empty((batch, kept, hidden.shape[2])),
                                                      "last_query_scores": self._empty((batch, new), torch.float32)})
        outputs.update(present)
        self.graphs.run(graph_io.post(layer),
                        {"hidden_states": hidden, "position_ids": positions,
                         "past_length": self._lengths(batch, self.kv[layer].length), **past, **(cut or {})},
                        outputs)
        self._store(outputs, [layer], new)
        return outputs

    # ---- prefill ------------------------------------------------------------------
    def prefill(self, inputs_embeds, max_new_tokens: int = 0, position_ids=None) -> PrefillOutput:
        """inputs_embeds: [B, N, D] (torch or numpy); position_ids: [B, N], or [3, B, N] for an M-RoPE
        engine (default 0..N-1 in every row)."""
        embeds = torch.as_tensor(inputs_embeds)
        batch, n, _ = embeds.shape
        self.layout.check_matches(n)
        check_request(self.manifest, self.layout, self.config, max_new_tokens)
        sched, K, L = self.schedule, self.K, self.num_layers
        hidden = embeds.detach().to(self.device, self.dtype).contiguous()
        if position_ids is not None:
            check_positions(torch.as_tensor(position_ids), self.position_rows, batch, n)
        positions = (default_positions(batch, n, self.position_rows, self.device) if position_ids is None
                     else torch.as_tensor(position_ids, device=self.device)).to(torch.int64).contiguous()
        original = torch.arange(n, device=self.device).expand(batch, n).contiguous()
        # Zeroed, not empty: masked-out entries still meet the values in a P·V product (0 · NaN = NaN).
        self.kv = PerLayerKVCache.allocate(request_kv_capacities(sched.tokens, max_new_tokens), batch,
                                           self.kv_heads, self.head_dim, self.dtype, self.device, zeroed=True)
        self._decode_step = None  # it holds the previous request's buffers

        # Layers 0..K-1 on every token, the global cut inside layer K-1.
        ranks = sched.drops[K - 1] > 0 and self.config.global_policy == "rollout"
        rollout_inputs, rollout_outputs = {}, {}
        if self.manifest.rollout:
            weights = rollout_query_weights(self.layout, self.config.rollout_queries)
            rollout_inputs = self._rollout_inputs(torch.from_numpy(weights), ranks)
            rollout_outputs = {"importance": self._empty((batch, n), torch.float32)}
        eligible = None
        if sched.drops[K - 1] > 0:
            eligible = (self._candidate if ranks else
                        torch.from_numpy(positional_keep_mask(self.layout, self.config)).to(self.device))
        cut = self._cut(original, eligible, sched.candidates[K])
        if not ranks and self._chunkable(cut, batch, n):
            hidden, positions, original = self._run_pre_chunked(hidden, positions, original, cut, rollout_inputs)
        else:
            outputs = self._run_pre(hidden, positions, cut, rollout_inputs, rollout_outputs)
            hidden, positions, original = self._advance(outputs, "hidden_states", original)

        kept = {}
        for layer in range(K, L):
            kept[layer] = original.cpu()
            cut = None
            if layer < L - 1:
                drops = sched.drops[layer]
                cut = self._cut(original, self._candidate if drops else None, sched.candidates[layer] - drops)
            if self._chunkable(cut, batch, hidden.shape[1]):  # no cut at this layer (a dense run), or the last
                chunked = self._run_post_chunked(layer, hidden, positions, original, cut)
                if cut is None:
                    outputs = chunked
                    break
                hidden, positions, original = chunked
                continue
            outputs = self._run_post(layer, hidden, positions, cut)
            if cut is None:
                break
            hidden, positions, original = self._advance(outputs, "layer_output", original)
        self._next_position = next_positions(positions)
        return PrefillOutput(logits=outputs["logits"], kept=kept)

    @staticmethod
    def _advance(outputs: dict, hidden_name: str, original: torch.Tensor):
        """The kept tokens' (hidden states, position ids, original indices) after a cut."""
        return (outputs[hidden_name], outputs["kept_position_ids"],
                torch.gather(original, 1, outputs["kept_index"]))

    # ---- decode -------------------------------------------------------------------
    def embed(self, token_ids) -> torch.Tensor:
        """token_ids [B, q] int64 -> [B, q, D] in the engine's precision, on the runner's device."""
        ids = torch.as_tensor(token_ids).to(self.device, torch.int64).contiguous()
        out = self._empty((*ids.shape, self.manifest.dims.hidden_size))
        self.graphs.run(graph_io.EMBED, {"input_ids": ids}, {"inputs_embeds": out})
        return out

    def embedding_table(self) -> torch.Tensor:
        """[V, D] fp32 on the CPU: the embedding table inside the embed graph (for synthetic inputs)."""
        return embedding_table(self.manifest)

    def check_decode(self) -> None:
        if self.kv is None:
            raise RuntimeError("decode() before prefill()")
        if self.kv[-1].length >= self.kv[-1].capacity:
            raise FastAVError("the KV buffers are full: pass a larger max_new_tokens to prefill")

    def decode(self, token_ids) -> torch.Tensor:
        """One greedy step: token_ids [B] -> next-token logits [B, V] fp32."""
        self.check_decode()
        ids = torch.as_tensor(token_ids).reshape(-1, 1)
        if self._decode_step is None:
            self._decode_step = self._new_decode_step(ids.shape[0])
        logits = self._decode_step(ids, self._next_position, self._past_lengths())
        self._account_step()
        return logits

    def _new_decode_step(self, batch: int) -> "DecodeStep":
        return DecodeStep(self.manifest, self.graphs, self.K, [tuple(buffer) for buffer in self.kv.buffers], batch)

    def _past_lengths(self) -> list[int]:
        """Every row's past length per layer (the rows of one prefill share them)."""
        return self.kv.lengths()

    def _account_step(self) -> None:
        """A decode step wrote one entry per layer: the lengths and the next position move on."""
        for buffer in self.kv.buffers:
            buffer.advance(1)
        self._next_position = self._next_position + 1

    def hand_over(self) -> "DecodeState":
        """This request's decoding state after `prefill` (its KV buffers and next position), now the
        caller's: the pipeline forgets it, so its next prefill cannot touch it."""
        if self.kv is None:
            raise RuntimeError("hand_over() before prefill()")
        state = DecodeState(self.kv, self._next_position)
        self.kv, self._decode_step = None, None
        return state

    # ---- lifetime -----------------------------------------------------------------
    owns_graphs = False  # True when this pipeline opened its runner itself (nobody else shares it)

    def close(self) -> None:
        """Release this request's KV buffers and decode step, and the graphs if this pipeline opened them."""
        self.kv, self._decode_step = None, None
        if self.owns_graphs:
            self.graphs.close()


    def _rollout_inputs(self, weights: torch.Tensor, enabled: bool) -> dict:
        return {"rollout_weights": weights.to(self.device),
                "rollout_alpha": torch.tensor(self.config.alpha, dtype=torch.float32, device=self.device),
                "rollout_enabled": torch.tensor(enabled, device=self.device)}


class DecodeStep:
    """One decode step (embed, pre, post_K..post_{L-1}) for `batch` rows over tensors allocated once.

    buffers: per layer (keys, values) [B, Hkv, C_l, hd], the rows' KV. Rows may belong to
    different requests (`ragged_batch.RaggedDecodeBatch`): each comes with its own position
    and its own past length per layer, so a row attends over exactly its own entries.
    Every graph call is prepared once; per step only the token ids, the positions, the past
    lengths and (append-mode graphs) the slots where new keys/values go change, all in
    place, so a backend can also replay the whole step as a CUDA graph (`update`, then
    `run_graphs` captured once). The caller accounts for the step (lengths and positions + 1).
    """

    def __init__(self, manifest: EngineManifest, graphs: GraphRunner, global_layer: int,
                 buffers, batch: int):
        dims = manifest.dims
        self.graphs, self.buffers, self.K, L = graphs, list(buffers), global_layer, dims.num_layers
        self.in_place_kv = graph_io.IN_PLACE_KV[manifest.flavour]
        device, dtype, D = graphs.device, graphs.dtype, dims.hidden_size
        long = {"dtype": torch.int64, "device": device}
        self._position_shape = positions_shape(batch, 1, dims.position_rows)
        self.ids = torch.zeros((batch, 1), **long)
        self.position = torch.zeros(self._position_shape, **long)
        # past_length [B] of the pre graph (layers 0..K-1 share one length per row) and of each post layer
        self.lengths = {layer: torch.zeros(batch, **long) for layer in [0, *range(self.K, L)]}
        self._rows = torch.arange(batch, device=device)
        keep_all = {"candidates": torch.zeros((batch, 0), **long), "protected": torch.zeros((batch, 1), **long),
                    "keep": torch.zeros(0, **long)}

        def empty(shape, kind=dtype):
            return torch.empty(shape, dtype=kind, device=device)

        def cut_scratch() -> dict:
            return {"kept_index": empty((batch, 1), torch.int64),
                    "kept_position_ids": empty(self._position_shape, torch.int64)}

        self.hidden = [empty((batch, 1, D)) for _ in range(L - self.K + 2)]
        self.logits = empty((batch, dims.vocab_size), torch.float32)
        self.new_entries: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # append mode: layer -> (key, value)
        rollout = ({"rollout_weights": torch.ones(1, dtype=torch.float32, device=device),
                    "rollout_alpha": torch.zeros((), dtype=torch.float32, device=device),
                    "rollout_enabled": torch.tensor(False, device=device)} if manifest.rollout else {})

        def kv(layers) -> tuple[dict, dict]:
            inputs, outputs = {}, {}
            for layer in layers:
                present = self.buffers[layer]
                if not self.in_place_kv:
                    present = tuple(empty((batch, dims.num_kv_heads, 1, dims.head_size)) for _ in range(2))
                    self.new_entries[layer] = present
                inputs.update(zip(graph_io.past(layer), self.buffers[layer], strict=True))
                outputs.update(zip(graph_io.present(layer), present, strict=True))
            return inputs, outputs

        run = graphs.prepare
        self.calls = [run(graph_io.EMBED, {"input_ids": self.ids}, {"inputs_embeds": self.hidden[0]})]
        past, present = kv(range(self.K))
        self.calls.append(run(graph_io.PRE,
                              {"inputs_embeds": self.hidden[0], "position_ids": self.position,
                               "past_length": self.lengths[0], **past, **keep_all, **rollout},
                              {"hidden_states": self.hidden[1], **cut_scratch(), **present}))
        for i, layer in enumerate(range(self.K, L)):
            past, present = kv([layer])
            head = ({"logits": self.logits} if layer == L - 1 else
                    {"layer_output": self.hidden[i + 2], **cut_scratch(),
                     "last_query_scores": empty((batch, 1), torch.float32)})
            self.calls.append(run(graph_io.post(layer),
                                  {"hidden_states": self.hidden[i + 1], "position_ids": self.position,
                                   "past_length": self.lengths[layer], **past,
                                   **({} if layer == L - 1 else keep_all)},
                                  {**head, **present}))

    def update(self, token_ids: torch.Tensor, positions: torch.Tensor, lengths) -> None:
        """Set this step's inputs in place: token_ids [B, 1]; positions [B, 1] (or [3, B, 1]), each
        row's position; lengths: per layer, each row's past length ([B] tensor, or one int for all)."""
        self.ids.copy_(token_ids)
        self.position.copy_(positions)
        for layer, length in self.lengths.items():
            given = lengths[layer]
            if isinstance(given, int):
                length.fill_(given)
            else:
                length.copy_(given)

    def run_graphs(self) -> None:
        """Every graph of the step, then (append mode) the new entries into the buffers."""
        for call in self.calls:
            call()
        self.write_new_entries()

    def write_new_entries(self) -> None:
        # Each row's entry goes to its own slot, its past length: an indexed write with the
        # slots in a tensor, so a captured CUDA graph writes where each step needs.
        for layer, entries in self.new_entries.items():
            slots = self.lengths[0 if layer < self.K else layer]
            for buffer, entry in zip(self.buffers[layer], entries, strict=True):
                buffer[self._rows, :, slots] = entry[:, :, 0]

    def __call__(self, token_ids: torch.Tensor, positions: torch.Tensor, lengths) -> torch.Tensor:
        """One step: the next-token logits [B, V] fp32 (a copy)."""
        self.update(token_ids, positions, lengths)
        self.run_graphs()
        return self.logits.clone()
