"""The PyTorch reference of FastAV on transformers' Qwen2 modules.

Runs the upstream `Qwen2DecoderLayer`s unchanged; pruning lives between layer calls:

    layers 0..K-1 on all N tokens          (rollout recorded when the policy needs it)
    global cut -> T_K                      (positional rule or rollout top-k)
    layer l = K..L-1 on T_l, then s_l from the last query -> drop d_l -> T_{l+1}
    final norm + lm_head on the last token

Each layer writes its keys/values into its own pre-allocated buffer (sized n_l + the
generation budget), so decoding appends one entry per layer at the next original
position and never re-runs the prompt.

Positions are [B, N], or [3, B, N] for a decoder with M-RoPE (Qwen2.5-Omni's thinker through
`ThinkerDecoder`); every cut takes the kept tokens' rows (`contract/positions.py`).
"""

from __future__ import annotations

import inspect

import torch

from ..contract.backend_protocol import PrefillOutput
from ..contract.dims import DecoderDims
from ..contract.kv_buffers import PerLayerKVCache
from ..contract.layout import TokenLayout
from ..contract.positions import check_positions, default_positions, next_positions, take_positions
from ..contract.pruning_config import PruningConfig
from ..contract.schedule import make_schedule
from ..contract.selection import (
    positional_keep_mask,
    select_fine,
    select_global_topk,
    select_positional,
)
from .rollout import RolloutRecorder, query_row_weights
from .scoring import last_query_scores


class _QueryCapture:
    """Forward hook on `q_proj`: keeps the layer's pre-RoPE query projection."""

    def __init__(self, module: torch.nn.Module):
        self.module, self.output, self._handle = module, None, None

    def __enter__(self):
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def _hook(self, module, args, output):
        self.output = output

    def __exit__(self, *exc):
        self._handle.remove()


def _cache_keyword(layer: torch.nn.Module) -> str:
    # transformers 5.x renamed the layer argument `past_key_values` to `cache`.
    params = inspect.signature(layer.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


class TorchReference:
    """FastAV prefill + greedy-decoding state for one batch.

    model: a transformers `Qwen2ForCausalLM` (any attention implementation), or a decoder shaped
    like one (`models.families.qwen2_5_omni.thinker.ThinkerDecoder`: M-RoPE, three position rows).
    layout: the token layout shared by the batch; config: the pruning config.
    rollout_impl: "streaming" (no N x N maps) or "dense" (materialised maps).
    """

    name = "torch"

    def __init__(self, model, layout: TokenLayout, config: PruningConfig, rollout_impl: str = "streaming"):
        self.model = model
        self.layout = layout
        cfg = model.config
        self.num_layers = cfg.num_hidden_layers
        self.config = config.resolve(self.num_layers)
        self.schedule = make_schedule(layout, self.config, self.num_layers)
        self.rollout_impl = rollout_impl
        self.num_heads = cfg.num_attention_heads
        self.num_kv_heads = cfg.num_key_value_heads
        dims = DecoderDims.from_qwen2_config(cfg)
        self.head_dim = dims.head_size
        self.position_rows = dims.position_rows
        self.scale = self.head_dim**-0.5
        self._layers = model.model.layers
        self._cache_kw = _cache_keyword(self._layers[0])
        self._eager = getattr(cfg, "_attn_implementation", "eager") == "eager"
        self.cache: PerLayerKVCache | None = None
        self._next_position: torch.Tensor | None = None

    @property
    def device(self) -> torch.device:
        return self.model.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.lm_head.weight.dtype

    # ---- one layer ----------------------------------------------------------------
    def _run_layer(self, index: int, hidden: torch.Tensor, positions: torch.Tensor, want_queries: bool = False):
        """Run decoder layer `index` on [B, n, D] at positions [B, n] or [3, B, n];
        returns (output, queries after RoPE or None)."""
        layer = self._layers[index]
        cos, sin = self.model.model.rotary_emb(hidden, positions)
        n = hidden.shape[1]
        mask = None
        if self._eager and n > 1:
            # Eager attention needs an explicit mask; SDPA and FlashAttention apply the
            # causal rule themselves when the mask is None and queries == keys.
            blocked = torch.ones(n, n, dtype=torch.bool, device=hidden.device).triu(1)
            mask = torch.zeros(n, n, dtype=hidden.dtype, device=hidden.device)
            mask = mask.masked_fill(blocked, torch.finfo(hidden.dtype).min)[None, None]
        # The layer's own position_ids only serve packed FlashAttention; with M-RoPE transformers passes None.
        layer_positions = positions if positions.dim() == 2 else None
        with _QueryCapture(layer.self_attn.q_proj) as capture:
            out = layer(hidden, attention_mask=mask, position_ids=layer_positions,
                        position_embeddings=(cos, sin), **{self._cache_kw: self.cache})
        out = out[0] if isinstance(out, tuple) else out
        if not want_queries:
            return out, None
        q = capture.output.view(hidden.shape[0], n, self.num_heads, self.head_dim).transpose(1, 2)
        return out, _rotate(q, cos, sin)

    # ---- prefill ------------------------------------------------------------------
    @torch.no_grad()
    def prefill(self, inputs_embeds: torch.Tensor, max_new_tokens: int = 0,
                position_ids: torch.Tensor | None = None) -> PrefillOutput:
        """inputs_embeds: [B, N, D]; position_ids: [B, N], or [3, B, N] with M-RoPE (default 0..N-1)."""
        batch, n, _ = inputs_embeds.shape
        self.layout.check_matches(n)
        device = self.device
        hidden = inputs_embeds.to(device=device, dtype=self.dtype)
        if position_ids is None:
            position_ids = default_positions(batch, n, self.position_rows, device)
        check_positions(position_ids, self.position_rows, batch, n)
        positions = position_ids.to(device)
        original = torch.arange(n, device=device).unsqueeze(0).expand(batch, n)
        sched, K = self.schedule, self.config.global_layer
        self.cache = PerLayerKVCache.allocate(
            [t + max_new_tokens for t in sched.tokens], batch, self.num_kv_heads, self.head_dim, self.dtype, device
        )
        candidate = torch.from_numpy(self.layout.candidate_mask()).to(device)
        recorder = None
        if self.config.global_policy == "rollout" and sched.drops[K - 1] > 0:
            u = query_row_weights(self.layout, self.config.rollout_queries, device)
            recorder = RolloutRecorder(self.rollout_impl, self.config.alpha, self.scale, u)

        kept: dict[int, torch.Tensor] = {}
        for layer in range(self.num_layers):
            if layer == K:
                keep = self._global_selection(recorder, candidate, batch)
                hidden, original = _take(hidden, keep), _take(original, keep)
                positions = take_positions(positions, keep)
            if layer >= K:
                kept[layer] = original
            records = recorder is not None and layer < K
            scores_needed = layer >= K and sched.drops[layer] > 0
            hidden, queries = self._run_layer(layer, hidden, positions, want_queries=records or scores_needed)
            if records:
                recorder.record(queries, self.cache[layer].view()[0])
            if scores_needed:
                scores = last_query_scores(queries[:, :, -1:], self.cache[layer].view()[0], self.scale)
                local = select_fine(scores, candidate[original], sched.drops[layer])
                hidden, original = _take(hidden, local), _take(original, local)
                positions = take_positions(positions, local)
        self._next_position = next_positions(positions)
        return PrefillOutput(logits=self._logits(hidden[:, -1:]), kept=kept)

    @torch.no_grad()
    def dense_queries_and_keys(self, inputs_embeds: torch.Tensor, layers: int,
                               position_ids: torch.Tensor | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Run layers 0..layers-1 on every token (no pruning) and return each layer's (queries [B, H, N, hd],
        keys [B, Hkv, N, hd]) after RoPE: what the rollout, and maps of it, are computed from (`calibrate`).
        position_ids: [B, N], or [3, B, N] with M-RoPE (a prompt's TMRoPE rows); default 0..N-1 in every row."""
        batch, n, _ = inputs_embeds.shape
        self.layout.check_matches(n)
        hidden = inputs_embeds.to(device=self.device, dtype=self.dtype)
        if position_ids is None:
            position_ids = default_positions(batch, n, self.position_rows, self.device)
        check_positions(position_ids, self.position_rows, batch, n)
        positions = position_ids.to(self.device)
        self.cache = PerLayerKVCache.allocate([n] * layers, batch, self.num_kv_heads, self.head_dim, self.dtype,
                                              self.device)
        recorded = []
        for layer in range(layers):
            hidden, queries = self._run_layer(layer, hidden, positions, want_queries=True)
            recorded.append((queries.float(), self.cache[layer].view()[0].float()))
        self.cache = None
        return recorded

    def _global_selection(self, recorder, candidate: torch.Tensor, batch: int) -> torch.Tensor:
        """[B, n_K] original indices of T_K (equal to positions in the dense tensors)."""
        policy = self.config.global_policy
        if recorder is not None:
            budget = self.schedule.candidates[self.config.global_layer]
            return select_global_topk(recorder.importance(), candidate, budget)
        if policy == "positional":
            return select_positional(positional_keep_mask(self.layout, self.config), self.layout, batch, self.device)
        n = self.layout.n_tokens  # "none", or a rollout budget that keeps every candidate
        return torch.arange(n, device=self.device).unsqueeze(0).expand(batch, n)

    # ---- decode -------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, token_ids: torch.Tensor) -> torch.Tensor:
        """One greedy step: token_ids [B] -> next-token logits [B, V] fp32.

        The new token is appended to every layer's cache at the next original position
        (in every row, with M-RoPE).
        """
        if self.cache is None:
            raise RuntimeError("decode() before prefill()")
        hidden = self.model.model.embed_tokens(token_ids.to(self.device)).unsqueeze(1)
        for layer in range(self.num_layers):
            hidden, _ = self._run_layer(layer, hidden, self._next_position)
        self._next_position = self._next_position + 1
        return self._logits(hidden)

    def _logits(self, last_hidden: torch.Tensor) -> torch.Tensor:
        return self.model.lm_head(self.model.model.norm(last_hidden))[:, -1].float()


def _take(tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Gather along the token axis: [B, n, ...] with [B, m] -> [B, m, ...]."""
    if tensor.dim() == 2:
        return tensor.gather(1, index)
    return tensor.gather(1, index.unsqueeze(-1).expand(-1, -1, *tensor.shape[2:]))


def _rotate(q: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    from transformers.models.qwen2.modeling_qwen2 import apply_rotary_pos_emb

    return apply_rotary_pos_emb(q, q, cos, sin)[0]
