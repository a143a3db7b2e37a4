"""The FastAV runtime over an engine directory's graphs, whatever executes them.

Prefill:  pre (layers 0..K-1, all N tokens) -> TopKGather (global cut)
          -> post_K -> TopKGather (fine cut) -> post_K+1 -> ... -> post_{L-1} (logits)
Decode:   embed -> pre -> post_K -> ... -> post_{L-1}, one token, no pruning.

Each layer owns one KV buffer [B, Hkv, n_l + T, hd] allocated at prefill (n_l = N for
l < K). A graph reads its whole buffer as the past (entries at or beyond
`past_length` are masked out) and returns only the new entries, which are written
into the buffer at the next free slot: the past is never copied, and decode shapes
never change (what CUDA-graph capture needs).

A backend supplies only a `GraphRunner`: something that runs one named graph with
every input and output bound to caller-owned torch tensors on its device. ONNX
Runtime binds CPU tensors, TensorRT binds CUDA tensors; the selection logic, buffers
and bookkeeping here are shared, so both backends keep the same tokens by
construction.
"""

from __future__ import annotations

from typing import Protocol

import torch

from . import graph_io
from .backends import check_request
from .engine_dir import EngineManifest, embedding_table
from .errors import FastAVError
from .generation import PrefillOutput
from .layout import TokenLayout
from .pruning_config import PruningConfig
from .schedule import make_schedule
from .selection import positional_keep_mask, rollout_query_weights

TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class GraphRunner(Protocol):
    """Runs one engine graph by name; outputs are preallocated and written in place."""

    name: str  # the engine backend: "ort" or "trt"
    device: torch.device
    dtype: torch.dtype  # the engine's activation type (hidden states, KV entries)

    def run(self, graph: str, inputs: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor]) -> None: ...


class GraphPipeline:
    """prefill / decode / embed / schedule over `graphs` (same interface as `TorchReference`)."""

    name = "graphs"

    def __init__(self, manifest: EngineManifest, layout: TokenLayout, config: PruningConfig, graphs: GraphRunner):
        dims = manifest.dims
        self.manifest, self.layout, self.graphs = manifest, layout, graphs
        self.config = config.resolve(dims.num_layers)
        check_request(manifest, layout, self.config)
        self.schedule = make_schedule(layout, self.config, dims.num_layers)
        self.device, self.dtype = graphs.device, graphs.dtype
        self.num_layers, self.K = dims.num_layers, self.config.global_layer
        self.kv_heads, self.head_dim = dims.num_kv_heads, dims.head_size
        self._candidate = torch.from_numpy(layout.candidate_mask()).to(self.device)
        self._buffers: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._lengths: list[int] = []

    # ---- helpers ------------------------------------------------------------------
    def _empty(self, shape, dtype=None) -> torch.Tensor:
        return torch.empty(shape, dtype=dtype or self.dtype, device=self.device)

    def _scalar(self, value: int) -> torch.Tensor:
        return torch.tensor(value, dtype=torch.int64, device=self.device)

    def _kv_outputs(self, batch: int, new: int, layers) -> dict:
        shape = (batch, self.kv_heads, new, self.head_dim)
        return {name: self._empty(shape) for layer in layers for name in graph_io.present(layer)}

    def _past_inputs(self, layers, empty_batch: int | None = None) -> dict:
        """Each layer's whole buffer (decode), or an empty past (prefill)."""
        feeds = {}
        for layer in layers:
            key, value = self._buffers[layer]
            if empty_batch is not None:
                key = value = self._empty((empty_batch, self.kv_heads, 0, self.head_dim))
            feeds.update(zip(graph_io.past(layer), (key, value), strict=True))
        return feeds

    def _store(self, outputs: dict, layers, new: int) -> None:
        """Write each layer's new keys/values at its next free slot."""
        for layer in layers:
            start = self._lengths[layer]
            for buffer, name in zip(self._buffers[layer], graph_io.present(layer), strict=True):
                buffer[:, :, start:start + new] = outputs[name]
            self._lengths[layer] = start + new

    def _run_pre(self, hidden, positions, prefill: bool, extra_inputs: dict, extra_outputs: dict) -> dict:
        """Layers 0..K-1 on [B, q] new tokens; their keys/values go into the buffers."""
        batch, new = positions.shape
        layers = range(self.K)
        outputs = {"hidden_states": torch.empty_like(hidden), **self._kv_outputs(batch, new, layers),
                   **extra_outputs}
        self.graphs.run(graph_io.PRE,
                        {"inputs_embeds": hidden, "position_ids": positions,
                         "past_length": self._scalar(self._lengths[0]),
                         **self._past_inputs(layers, empty_batch=batch if prefill else None), **extra_inputs},
                        outputs)
        self._store(outputs, layers, new)
        return outputs

    def _run_post(self, layer: int, hidden, positions, prefill: bool) -> dict:
        """Layer `layer` >= K on [B, q] tokens: layer_output (or logits) and last_query_scores."""
        batch, new = positions.shape
        keys = new + (0 if prefill else self._buffers[layer][0].shape[2])
        head = ({"logits": self._empty((batch, self.manifest.dims.vocab_size), torch.float32)}
                if layer == self.num_layers - 1 else {"layer_output": torch.empty_like(hidden)})
        outputs = {**head, "last_query_scores": self._empty((batch, keys), torch.float32),
                   **self._kv_outputs(batch, new, [layer])}
        self.graphs.run(graph_io.post(layer),
                        {"hidden_states": hidden, "position_ids": positions,
                         "past_length": self._scalar(self._lengths[layer]),
                         **self._past_inputs([layer], empty_batch=batch if prefill else None)},
                        outputs)
        self._store(outputs, [layer], new)
        return outputs

    def _select(self, scores, hidden, positions, original, eligible, k: int):
        """TopKGather: keep the non-candidates plus the k best-scored `eligible` candidates.

        original [B, n]: original index of each current token; eligible [N] bool over
        original positions. Returns (hidden, positions, original) of the kept tokens.
        Every row has the same counts (they come from the layout), so the per-row
        index lists stack into [B, C] and [B, M].
        """
        batch = hidden.shape[0]
        candidates = eligible[original].nonzero()[:, 1].reshape(batch, -1)
        protected = (~self._candidate[original]).nonzero()[:, 1].reshape(batch, -1)
        kept = protected.shape[1] + k
        outputs = {"kept_index": self._empty((batch, kept), torch.int64),
                   "kept_hidden_states": self._empty((batch, kept, hidden.shape[2])),
                   "kept_position_ids": self._empty((batch, kept), torch.int64)}
        self.graphs.run(graph_io.TOPK_GATHER,
                        {"scores": scores.float().contiguous(), "hidden_states": hidden, "position_ids": positions,
                         "candidates": candidates.contiguous(), "protected": protected.contiguous(),
                         "keep": torch.zeros(k, dtype=torch.int64, device=self.device)},
                        outputs)
        return (outputs["kept_hidden_states"], outputs["kept_position_ids"],
                torch.gather(original, 1, outputs["kept_index"]))

    # ---- prefill ------------------------------------------------------------------
    def prefill(self, inputs_embeds, max_new_tokens: int = 0, position_ids=None) -> PrefillOutput:
        """inputs_embeds: [B, N, D] (torch or numpy); position_ids: [B, N] (default 0..N-1)."""
        embeds = torch.as_tensor(inputs_embeds)
        batch, n, _ = embeds.shape
        self.layout.check_matches(n)
        check_request(self.manifest, self.layout, self.config, max_new_tokens)
        sched, K, L = self.schedule, self.K, self.num_layers
        hidden = embeds.detach().to(self.device, self.dtype).contiguous()
        positions = (torch.arange(n, device=self.device).expand(batch, n) if position_ids is None
                     else torch.as_tensor(position_ids, device=self.device)).to(torch.int64).contiguous()
        original = torch.arange(n, device=self.device).expand(batch, n).contiguous()
        shape = (batch, self.kv_heads)
        self._buffers = [tuple(torch.zeros((*shape, sched.tokens[layer] + max_new_tokens, self.head_dim),
                                           dtype=self.dtype, device=self.device) for _ in range(2))
                         for layer in range(L)]
        self._lengths = [0] * L

        # Layers 0..K-1 on every token (plus the rollout importance when built with it).
        rollout_inputs, rollout_outputs = {}, {}
        if self.manifest.rollout:
            weights = rollout_query_weights(self.layout, self.config.rollout_queries)
            rollout_inputs = {"rollout_weights": torch.from_numpy(weights).to(self.device),
                              "rollout_alpha": torch.tensor(self.config.alpha, dtype=torch.float32,
                                                            device=self.device)}
            rollout_outputs = {"importance": self._empty((batch, n), torch.float32)}
        outputs = self._run_pre(hidden, positions, True, rollout_inputs, rollout_outputs)
        hidden = outputs["hidden_states"]

        # The global cut.
        if sched.drops[K - 1] > 0:
            if self.config.global_policy == "rollout":
                keep_rule, scores = self._candidate, outputs["importance"]
            else:
                keep_rule = torch.from_numpy(positional_keep_mask(self.layout, self.config)).to(self.device)
                scores = torch.zeros((batch, n), dtype=torch.float32, device=self.device)
            hidden, positions, original = self._select(scores, hidden, positions, original, keep_rule,
                                                       sched.candidates[K])

        kept = {}
        for layer in range(K, L):
            kept[layer] = original.cpu()
            outputs = self._run_post(layer, hidden, positions, prefill=True)
            if layer < L - 1:
                hidden = outputs["layer_output"]
                if sched.drops[layer] > 0:
                    hidden, positions, original = self._select(
                        outputs["last_query_scores"], hidden, positions, original, self._candidate,
                        sched.candidates[layer] - sched.drops[layer])
        self._next_position = positions[:, -1:] + 1
        return PrefillOutput(logits=outputs["logits"], kept=kept)

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
        if not self._buffers:
            raise RuntimeError("decode() before prefill()")
        if self._lengths[-1] >= self._buffers[-1][0].shape[2]:
            raise FastAVError("the KV buffers are full: pass a larger max_new_tokens to prefill")

    def decode(self, token_ids) -> torch.Tensor:
        """One greedy step: token_ids [B] -> next-token logits [B, V] fp32."""
        self.check_decode()
        hidden = self.embed(torch.as_tensor(token_ids).reshape(-1, 1))
        positions = self._next_position
        hidden = self._run_pre(hidden, positions, False, self._rollout_placeholders(), {})["hidden_states"]
        for layer in range(self.K, self.num_layers - 1):
            hidden = self._run_post(layer, hidden, positions, prefill=False)["layer_output"]
        logits = self._run_post(self.num_layers - 1, hidden, positions, prefill=False)["logits"]
        self._next_position = positions + 1
        return logits

    def _rollout_placeholders(self) -> dict:
        if not self.manifest.rollout:
            return {}
        # The importance of a decoded token is never used; the inputs still need values.
        return {"rollout_weights": torch.ones(1, dtype=torch.float32, device=self.device),
                "rollout_alpha": torch.tensor(self.config.alpha, dtype=torch.float32, device=self.device)}
