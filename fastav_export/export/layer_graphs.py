"""The decoder as exportable torch modules: the pre-prune graph and one graph per later layer.

They compute exactly what transformers' Qwen2 layers compute (and reuse their norm, MLP
and projection modules), but own the attention so that the graphs can:

* take a layer's past keys/values as a plain input and return only the new entries
  (`present.*`): the runtime owns the per-layer KV buffers and writes into them;
* attend to the past and to the new tokens as two blocks, so the past is never
  concatenated (copied) inside the graph: scores [.., q, P] and [.., q, q] share one
  softmax. With an empty past (prefill) the past block is empty;
* return the last query's head-mean attention row (s_l) and, in the pre graph, the
  rollout importance, both from the probabilities the layer already computes.

Shapes: B batch, q new tokens, P past entries (the whole buffer: entries at or beyond
`past_length` are masked out, so decoding binds one fixed-size buffer per layer),
H query heads, Hkv key/value heads, G = H / Hkv, hd head size, D hidden size.

The attention is split into `attention_probs` (needs only q and k) and the weighted
sum + MLP, which is where an exact "early drop" (TopKGather inside the layer, before
the attention output and MLP) will go.
"""

from __future__ import annotations

import torch
from torch import nn

NEG_INF = torch.finfo(torch.float32).min


class RotaryTable(nn.Module):
    """cos/sin of Qwen2's default RoPE for arbitrary (pruned) position ids.

    The inverse frequencies are recomputed in fp32 from the config and kept as a plain
    attribute, so casting the model to fp16/bf16 does not round them.
    """

    def __init__(self, rotary_emb: nn.Module, config):
        super().__init__()
        rope_type = config.rope_parameters.get("rope_type", "default")
        if rope_type != "default":
            raise NotImplementedError(f"RoPE type {rope_type!r} is not exported yet (only the default)")
        inv_freq, scaling = rotary_emb.compute_default_rope_parameters(config)
        self.inv_freq = inv_freq.float()
        self.scaling = float(scaling)

    def forward(self, positions: torch.Tensor, dtype: torch.dtype):
        """positions [B, q] int64 -> cos, sin [B, 1, q, hd] in `dtype` (computed in fp32)."""
        freqs = positions.float()[..., None] * self.inv_freq
        angles = torch.cat((freqs, freqs), dim=-1)[:, None]
        return (angles.cos() * self.scaling).to(dtype), (angles.sin() * self.scaling).to(dtype)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class DecoderLayerGraph(nn.Module):
    """One Qwen2 decoder layer over new tokens plus a past buffer."""

    def __init__(self, layer: nn.Module, config):
        super().__init__()
        self.layer = layer
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self.scale = self.head_dim**-0.5

    def attention_probs(self, hidden, cos, sin, past_key, past_length):
        """Returns (q5, new keys, new values, probs fp32), all after RoPE.

        q5 [B, Hkv, G, q, hd] (query head h = kv head h // G, as transformers' repeat_kv);
        keys/values [B, Hkv, q, hd]; probs [B, Hkv, G, q, P + q], past block first.
        """
        attn = self.layer.self_attn
        batch, q_len, _ = hidden.shape
        x = self.layer.input_layernorm(hidden)
        q = attn.q_proj(x).view(batch, q_len, self.num_heads, self.head_dim).transpose(1, 2)
        k = attn.k_proj(x).view(batch, q_len, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = attn.v_proj(x).view(batch, q_len, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        groups = self.num_heads // self.num_kv_heads
        q5 = q.reshape(batch, self.num_kv_heads, groups, q_len, self.head_dim)
        # GQA by broadcasting over the group axis: keys are never repeated per head.
        past_scores = torch.matmul(q5, past_key.unsqueeze(2).transpose(-1, -2)).float() * self.scale
        new_scores = torch.matmul(q5, k.unsqueeze(2).transpose(-1, -2)).float() * self.scale
        past_valid = torch.arange(past_key.shape[2], device=hidden.device) < past_length
        idx = torch.arange(q_len, device=hidden.device)
        causal = idx[None, :] <= idx[:, None]
        past_scores = past_scores.masked_fill(~past_valid, NEG_INF)
        new_scores = new_scores.masked_fill(~causal, NEG_INF)
        probs = torch.softmax(torch.cat((past_scores, new_scores), dim=-1), dim=-1)
        return q5, k, v, probs

    def finish(self, hidden, probs, past_value, v):
        """Attention output + residual + MLP: [B, q, D]."""
        attn = self.layer.self_attn
        batch, q_len, _ = hidden.shape
        past_len = past_value.shape[2]
        dtype = hidden.dtype
        past_probs, new_probs = probs[..., :past_len].to(dtype), probs[..., past_len:].to(dtype)
        out = torch.matmul(past_probs, past_value.unsqueeze(2)) + torch.matmul(new_probs, v.unsqueeze(2))
        out = out.reshape(batch, self.num_heads, q_len, self.head_dim).transpose(1, 2)
        hidden = hidden + attn.o_proj(out.reshape(batch, q_len, self.num_heads * self.head_dim))
        return hidden + self.layer.mlp(self.layer.post_attention_layernorm(hidden))

    def forward(self, hidden, cos, sin, past_key, past_value, past_length):
        _, k, v, probs = self.attention_probs(hidden, cos, sin, past_key, past_length)
        return self.finish(hidden, probs, past_value, v), k, v, probs


def head_mean(probs: torch.Tensor) -> torch.Tensor:
    """[B, Hkv, G, q, keys] -> [B, q, keys]."""
    return probs.mean(dim=(1, 2))


class PrePruneGraph(nn.Module):
    """Layers 0..K-1 on all tokens; optionally the rollout importance of every new token.

    forward(inputs_embeds [B, q, D], position_ids [B, q], past_length [] int64,
            past: K pairs (key, value) [B, Hkv, P, hd],
            rollout_weights [q] fp32, rollout_alpha [] fp32)
      -> hidden [B, q, D], K pairs of new (key, value) [B, Hkv, q, hd], (importance [B, q] fp32)

    The rollout chain runs over the new tokens' own block of each layer's attention,
    which is the whole map in prefill (empty past).
    """

    def __init__(self, model: nn.Module, num_layers: int, rollout: bool):
        super().__init__()
        config = model.config
        self.rotary = RotaryTable(model.model.rotary_emb, model.config)
        self.layers = nn.ModuleList(DecoderLayerGraph(model.model.layers[i], config) for i in range(num_layers))
        self.rollout = rollout

    def forward(self, inputs_embeds, position_ids, past_length, past, rollout_weights=None, rollout_alpha=None):
        hidden = inputs_embeds
        cos, sin = self.rotary(position_ids, hidden.dtype)
        present, maps = [], []
        for layer, (past_key, past_value) in zip(self.layers, past):
            hidden, k, v, probs = layer(hidden, cos, sin, past_key, past_value, past_length)
            present.append((k, v))
            if self.rollout:
                maps.append(head_mean(probs[..., past_key.shape[2]:]))
        if not self.rollout:
            return hidden, present
        # I^T = u^T A~_{K-1} ... A~_0: vector-matrix products from the last layer back.
        vector = rollout_weights.unsqueeze(0).unsqueeze(0).expand(hidden.shape[0], 1, -1)
        for attention in reversed(maps):
            vector = rollout_alpha * torch.matmul(vector, attention) + (1 - rollout_alpha) * vector
        return hidden, present, vector[:, 0]


class PostLayerGraph(nn.Module):
    """Layer l >= K on the kept tokens, with the last query's attention row s_l.

    forward(hidden_states [B, q, D], position_ids [B, q], past_length [] int64,
            past_key / past_value [B, Hkv, P, hd])
      -> hidden [B, q, D] (or logits [B, V] fp32 of the last token for the final layer),
         new key, new value [B, Hkv, q, hd], last_query_scores [B, P + q] fp32
    """

    def __init__(self, model: nn.Module, layer_index: int, final: bool):
        super().__init__()
        self.rotary = RotaryTable(model.model.rotary_emb, model.config)
        self.layer = DecoderLayerGraph(model.model.layers[layer_index], model.config)
        self.final = final
        if final:
            self.norm, self.lm_head = model.model.norm, model.lm_head

    def forward(self, hidden_states, position_ids, past_length, past_key, past_value):
        cos, sin = self.rotary(position_ids, hidden_states.dtype)
        hidden, k, v, probs = self.layer(hidden_states, cos, sin, past_key, past_value, past_length)
        scores = head_mean(probs[..., -1:, :])[:, 0]
        if self.final:
            hidden = self.lm_head(self.norm(hidden[:, -1])).float()
        return hidden, k, v, scores
