"""The FastAV runtime on ONNX Runtime: prefill and decoding over an engine directory.

Prefill:  pre (layers 0..K-1, all N tokens) -> TopKGather (global cut)
          -> post_K -> TopKGather (fine cut) -> post_K+1 -> ... -> post_{L-1} (logits)
Decode:   embed -> pre -> post_K -> ... -> post_{L-1}, one token, no pruning.

Each layer owns one KV buffer [B, Hkv, n_l + T, hd] allocated at prefill (n_l = N for
l < K). A graph reads its whole buffer as the past (entries at or beyond
`past_length` are masked out) and returns only the new entries, which are written
into the buffer at the next free slot: the past is never copied. Inputs and outputs
are bound to numpy memory through ONNX Runtime's I/O binding.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import graph_io
from ..backends import check_request
from ..engine_dir import EngineManifest
from ..errors import FastAVError
from ..generation import PrefillOutput
from ..layout import TokenLayout
from ..pruning_config import PruningConfig
from ..schedule import make_schedule
from ..selection import positional_keep_mask, rollout_query_weights
from .sessions import check_onnxruntime_version, load_session, run_bound

NUMPY_DTYPES = {"fp32": np.float32, "fp16": np.float16}


class OrtPipeline:
    """The `ort` backend: same interface as `TorchReference` (prefill, decode, schedule)."""

    name = "ort"

    def __init__(self, manifest: EngineManifest, layout: TokenLayout, config: PruningConfig,
                 threads: int | None = None):
        if "ort" not in manifest.backends:
            raise FastAVError(f"{manifest.path} has no ONNX Runtime artifacts (built with --export-only): "
                              "rebuild it without --export-only")
        if manifest.precision not in NUMPY_DTYPES:
            raise FastAVError(f"ONNX Runtime's CPU provider cannot run {manifest.precision} engines: "
                              "build with --fp16 or fp32 for --backend ort")
        dims = manifest.dims
        self.manifest, self.layout = manifest, layout
        self.config = config.resolve(dims.num_layers)
        check_request(manifest, layout, self.config)
        self.schedule = make_schedule(layout, self.config, dims.num_layers)
        self.dtype = NUMPY_DTYPES[manifest.precision]
        self.num_layers, self.K = dims.num_layers, self.config.global_layer
        self.kv_heads, self.head_dim = dims.num_kv_heads, dims.head_size
        ort = manifest.backends["ort"]
        check_onnxruntime_version(manifest.versions.get("onnxruntime"), manifest.path)
        self.sessions = {name: load_session(manifest.file(path), ort["session"], manifest.precision, threads)
                         for name, path in ort["models"].items()}
        self._candidate = layout.candidate_mask()
        self._buffers: list[tuple[np.ndarray, np.ndarray]] = []
        self._lengths: list[int] = []

    # ---- helpers ------------------------------------------------------------------
    def _kv_outputs(self, batch: int, new: int, layers) -> dict:
        shape = (batch, self.kv_heads, new, self.head_dim)
        return {name: np.empty(shape, self.dtype) for layer in layers for name in graph_io.present(layer)}

    def _past_inputs(self, layers, empty_batch: int | None = None) -> dict:
        """Each layer's whole buffer (decode), or an empty past (prefill)."""
        feeds = {}
        for layer in layers:
            key, value = self._buffers[layer]
            if empty_batch is not None:
                key = value = np.empty((empty_batch, self.kv_heads, 0, self.head_dim), self.dtype)
            feeds.update(zip(graph_io.past(layer), (key, value)))
        return feeds

    def _store(self, outputs: dict, layers, new: int) -> None:
        """Write each layer's new keys/values at its next free slot."""
        for layer in layers:
            start = self._lengths[layer]
            for buffer, name in zip(self._buffers[layer], graph_io.present(layer)):
                buffer[:, :, start:start + new] = outputs[name]
            self._lengths[layer] = start + new

    def _run_pre(self, hidden, positions, prefill: bool, extra_inputs: dict, extra_outputs: dict) -> dict:
        """Layers 0..K-1 on [B, q] new tokens; their keys/values go into the buffers."""
        batch, new = positions.shape
        layers = range(self.K)
        outputs = {"hidden_states": np.empty_like(hidden), **self._kv_outputs(batch, new, layers), **extra_outputs}
        run_bound(self.sessions[graph_io.PRE],
                  {"inputs_embeds": hidden, "position_ids": positions,
                   "past_length": np.array(self._lengths[0], np.int64),
                   **self._past_inputs(layers, empty_batch=batch if prefill else None), **extra_inputs}, outputs)
        self._store(outputs, layers, new)
        return outputs

    def _run_post(self, layer: int, hidden, positions, prefill: bool) -> dict:
        """Layer `layer` >= K on [B, q] tokens: layer_output (or logits) and last_query_scores."""
        batch, new = positions.shape
        keys = new + (0 if prefill else self._buffers[layer][0].shape[2])
        head = ({"logits": np.empty((batch, self.manifest.dims.vocab_size), np.float32)}
                if layer == self.num_layers - 1 else {"layer_output": np.empty_like(hidden)})
        outputs = {**head, "last_query_scores": np.empty((batch, keys), np.float32),
                   **self._kv_outputs(batch, new, [layer])}
        run_bound(self.sessions[graph_io.post(layer)],
                  {"hidden_states": hidden, "position_ids": positions,
                   "past_length": np.array(self._lengths[layer], np.int64),
                   **self._past_inputs([layer], empty_batch=batch if prefill else None)}, outputs)
        self._store(outputs, [layer], new)
        return outputs

    def _select(self, scores, hidden, positions, original, eligible, k):
        """TopKGather: keep the non-candidates plus the k best-scored `eligible` candidates.

        original [B, n]: original index of each current token; eligible [N] bool over
        original positions. Returns (hidden, positions, original) of the kept tokens.
        """
        batch = hidden.shape[0]
        candidates = np.stack([np.flatnonzero(eligible[row]) for row in original])
        protected = np.stack([np.flatnonzero(~self._candidate[row]) for row in original])
        kept = protected.shape[1] + k
        outputs = {"kept_index": np.empty((batch, kept), np.int64),
                   "kept_hidden_states": np.empty((batch, kept, hidden.shape[2]), self.dtype),
                   "kept_position_ids": np.empty((batch, kept), np.int64)}
        run_bound(self.sessions[graph_io.TOPK_GATHER],
                  {"scores": np.ascontiguousarray(scores, np.float32), "hidden_states": hidden,
                   "position_ids": positions, "candidates": candidates.reshape(batch, -1).astype(np.int64),
                   "protected": protected.reshape(batch, -1).astype(np.int64), "keep": np.zeros(k, np.int64)},
                  outputs)
        local = outputs["kept_index"]
        return (outputs["kept_hidden_states"], outputs["kept_position_ids"],
                np.take_along_axis(original, local, axis=1))

    # ---- prefill ------------------------------------------------------------------
    def prefill(self, inputs_embeds, max_new_tokens: int = 0, position_ids=None) -> PrefillOutput:
        """inputs_embeds: [B, N, D] (torch or numpy); position_ids: [B, N] (default 0..N-1)."""
        embeds = inputs_embeds.detach().cpu().float().numpy() if torch.is_tensor(inputs_embeds) else inputs_embeds
        batch, n, _ = embeds.shape
        self.layout.check_matches(n)
        check_request(self.manifest, self.layout, self.config, max_new_tokens)
        sched, K, L = self.schedule, self.K, self.num_layers
        hidden = np.ascontiguousarray(embeds, self.dtype)
        positions = (np.broadcast_to(np.arange(n), (batch, n)) if position_ids is None
                     else np.asarray(position_ids)).astype(np.int64).copy()
        original = np.broadcast_to(np.arange(n), (batch, n)).copy()
        shape = (batch, self.kv_heads)
        self._buffers = [tuple(np.zeros((*shape, sched.tokens[layer] + max_new_tokens, self.head_dim), self.dtype)
                               for _ in range(2)) for layer in range(L)]
        self._lengths = [0] * L

        # Layers 0..K-1 on every token (plus the rollout importance when built with it).
        rollout_inputs, rollout_outputs = {}, {}
        if self.manifest.rollout:
            rollout_inputs = {"rollout_weights": rollout_query_weights(self.layout, self.config.rollout_queries),
                              "rollout_alpha": np.array(self.config.alpha, np.float32)}
            rollout_outputs = {"importance": np.empty((batch, n), np.float32)}
        outputs = self._run_pre(hidden, positions, True, rollout_inputs, rollout_outputs)
        hidden = outputs["hidden_states"]

        # The global cut.
        if sched.drops[K - 1] > 0:
            if self.config.global_policy == "rollout":
                keep_rule, scores = self._candidate, outputs["importance"]
            else:
                keep_rule, scores = positional_keep_mask(self.layout, self.config), np.zeros((batch, n), np.float32)
            hidden, positions, original = self._select(scores, hidden, positions, original, keep_rule,
                                                       sched.candidates[K])

        kept = {}
        for layer in range(K, L):
            kept[layer] = torch.from_numpy(original.copy())
            outputs = self._run_post(layer, hidden, positions, prefill=True)
            if layer < L - 1:
                hidden = outputs["layer_output"]
                if sched.drops[layer] > 0:
                    hidden, positions, original = self._select(
                        outputs["last_query_scores"], hidden, positions, original, self._candidate,
                        sched.candidates[layer] - sched.drops[layer])
        self._next_position = positions[:, -1:] + 1
        return PrefillOutput(logits=torch.from_numpy(outputs["logits"]), kept=kept)

    # ---- decode -------------------------------------------------------------------
    def embed(self, token_ids) -> np.ndarray:
        """token_ids [B, q] int64 -> [B, q, D] in the engine's precision."""
        ids = np.ascontiguousarray(np.asarray(token_ids, np.int64))
        out = np.empty((*ids.shape, self.manifest.dims.hidden_size), self.dtype)
        run_bound(self.sessions[graph_io.EMBED], {"input_ids": ids}, {"inputs_embeds": out})
        return out

    def embedding_table(self) -> torch.Tensor:
        """[V, D] the embedding table inside the embed graph (for synthetic inputs)."""
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(self.manifest.file(self.manifest.graphs[graph_io.EMBED].onnx)))
        return torch.from_numpy(numpy_helper.to_array(model.graph.initializer[0]).astype(np.float32))

    def decode(self, token_ids) -> torch.Tensor:
        """One greedy step: token_ids [B] -> next-token logits [B, V] fp32."""
        if not self._buffers:
            raise RuntimeError("decode() before prefill()")
        ids = token_ids.cpu().numpy() if torch.is_tensor(token_ids) else np.asarray(token_ids)
        if self._lengths[-1] >= self._buffers[-1][0].shape[2]:
            raise FastAVError("the KV buffers are full: pass a larger max_new_tokens to prefill")
        hidden = self.embed(ids.reshape(-1, 1))
        positions = self._next_position
        hidden = self._run_pre(hidden, positions, False, self._rollout_placeholders(), {})["hidden_states"]
        for layer in range(self.K, self.num_layers - 1):
            hidden = self._run_post(layer, hidden, positions, prefill=False)["layer_output"]
        logits = self._run_post(self.num_layers - 1, hidden, positions, prefill=False)["logits"]
        self._next_position = positions + 1
        return torch.from_numpy(logits)

    def _rollout_placeholders(self) -> dict:
        if not self.manifest.rollout:
            return {}
        # The importance of a decoded token is never used; the inputs still need values.
        return {"rollout_weights": np.ones(1, np.float32), "rollout_alpha": np.array(self.config.alpha, np.float32)}
