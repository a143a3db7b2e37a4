"""The decoder as exportable torch modules: the pre-prune graph and one graph per later layer.

They compute exactly what transformers' Qwen2 layers compute (and reuse their norm, MLP
and projection modules), with these FastAV-specific changes:

* attention is one fused op (`custom_ops.cached_attention`): a layer's past keys/values
  are a plain input (the runtime owns one KV buffer per layer) and no probability
  tensor appears in the graph. RoPE is applied before the op, with each token's own
  (possibly non-contiguous) position id;
* exact early drop: the cut after a layer (`custom_ops.topk_gather`) needs only the
  layer's keys and its last query, so it runs before the attention output projection
  and the MLP, which are then computed for the kept tokens only. The KV entries of
  every token the layer processed still go into its buffer;
* M-RoPE decoders (Qwen2.5-Omni's thinker) take position ids [3, B, q] (temporal, height,
  width) wherever a Qwen2 decoder takes [B, q]: `RotaryTable` picks each frequency's row by
  the config's `mrope_section`, and a cut gathers the kept tokens' three rows with the
  TopKGather op's kept index (the op itself, and its TensorRT plugin, see one row);
* the pre graph's rollout importance comes from a separate blockwise pass over the
  layers' queries and keys (`custom_ops.rollout_step`), never from attention maps.

Shapes: B batch, q new tokens, P past entries (the whole buffer; entries at or beyond
each row's `past_length` are ignored), H query heads, Hkv key/value heads, hd head size,
D hidden size; C candidates, M protected tokens and k kept candidates at a cut.
"""

from __future__ import annotations

import torch
from torch import nn

from ..contract.dims import DecoderDims
from ..contract.positions import take_positions
from .custom_ops import cached_attention, gather_rows, rollout_step, topk_gather


class RotaryTable(nn.Module):
    """cos/sin of Qwen2's default RoPE, or of M-RoPE, for arbitrary (pruned) position ids.

    The inverse frequencies are recomputed in fp32 from the config and kept as a plain
    attribute, so casting the model to fp16/bf16 does not round them. With M-RoPE
    (`mrope_section` in the config) frequency i takes its angle from the position row of
    its section, as transformers' `Qwen2_5OmniRotaryEmbedding` does (angles in fp32).
    """

    def __init__(self, rotary_emb: nn.Module, config):
        super().__init__()
        rope_type = config.rope_parameters.get("rope_type", "default")
        if rope_type != "default":
            raise NotImplementedError(f"RoPE type {rope_type!r} is not exported yet (only the default)")
        inv_freq, scaling = rotary_emb.compute_default_rope_parameters(config)
        self.inv_freq = inv_freq.float()
        self.scaling = float(scaling)
        self.mrope_section = DecoderDims.from_qwen2_config(config).mrope_section

    def forward(self, positions: torch.Tensor, dtype: torch.dtype):
        """positions [B, q] (or [3, B, q] with M-RoPE) int64 -> cos, sin [B, q, 1, hd] in `dtype` (computed in fp32)."""
        freqs = positions.float()[..., None] * self.inv_freq
        if self.mrope_section is not None:  # [3, B, q, hd/2] -> [B, q, hd/2]: section j from row j
            freqs = torch.cat([part[row] for row, part in enumerate(freqs.split(list(self.mrope_section), dim=-1))],
                              dim=-1)
        angles = torch.cat((freqs, freqs), dim=-1)[:, :, None]
        return (angles.cos() * self.scaling).to(dtype), (angles.sin() * self.scaling).to(dtype)


def cut_tokens(scores, hidden, positions, candidates, protected, keep):
    """A cut: TopKGather on the token axis -> (kept_index [B, m], kept hidden [B, m, D], kept positions).

    Positions [B, n] go through the op; M-RoPE positions [3, B, n] give it their first row (the op
    and its TensorRT plugin take one) and the kept index then gathers all three rows beside it.
    """
    if positions.dim() == 2:
        return topk_gather(scores, hidden, positions, candidates, protected, keep)
    kept_index, kept_hidden, _ = topk_gather(scores, hidden, positions[0], candidates, protected, keep)
    return kept_index, kept_hidden, take_positions(positions, kept_index)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on [B, q, heads, hd] with cos/sin [B, q, 1, hd]."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


def fused_qkv(attention: nn.Module) -> nn.Linear:
    """q_proj, k_proj and v_proj as one Linear (one GEMM per layer instead of three).

    In the graphs its parameters are `model.layers.<i>.self_attn.qkv_proj.{weight,bias}`
    (`DecoderLayerGraph.fused_parameter_names`), the one name not in the checkpoint.
    """
    projections = (attention.q_proj, attention.k_proj, attention.v_proj)
    weight = torch.cat([p.weight for p in projections])
    bias = projections[0].bias
    fused = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=weight.dtype,
                      device=weight.device)
    with torch.no_grad():
        fused.weight.copy_(weight)
        if bias is not None:
            fused.bias.copy_(torch.cat([p.bias for p in projections]))
    return fused


class DecoderLayerGraph(nn.Module):
    """One Qwen2 decoder layer, in the steps the cut goes between."""

    def __init__(self, layer: nn.Module, config, in_place_kv: bool):
        super().__init__()
        self.layer = layer
        self.index = layer.self_attn.layer_idx
        self.qkv_proj = fused_qkv(layer.self_attn)
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = DecoderDims.from_qwen2_config(config).head_size
        self.scale = self.head_dim**-0.5
        self.in_place_kv = in_place_kv

    def fused_parameter_names(self) -> dict[int, str]:
        """{data_ptr: graph name} of the fused projection's parameters."""
        return {p.data_ptr(): f"model.layers.{self.index}.self_attn.qkv_proj.{kind}"
                for kind, p in self.qkv_proj.named_parameters()}

    def project(self, hidden, cos, sin):
        """[B, q, D] -> queries [B, q, H*hd], keys and values [B, q, Hkv*hd], RoPE applied.

        One GEMM for all three and one RoPE for queries and keys together (fewer, larger ops).
        """
        batch, q_len, _ = hidden.shape
        heads, kv_heads = self.num_heads, self.num_kv_heads
        qkv = self.qkv_proj(self.layer.input_layernorm(hidden)).view(batch, q_len, heads + 2 * kv_heads,
                                                                       self.head_dim)
        qk = _rotate(qkv[:, :, :heads + kv_heads], cos, sin)
        return qk[:, :, :heads].flatten(2), qk[:, :, heads:].flatten(2), qkv[:, :, heads + kv_heads:].flatten(2)

    def attend(self, q, k, v, past_key, past_value, past_length):
        """Fused causal attention: (output [B, q, H*hd], present key, present value)."""
        return cached_attention(q, k, v, past_key, past_value, past_length, self.num_heads, self.num_kv_heads,
                                self.scale, self.in_place_kv)

    def last_query_scores(self, q, k) -> torch.Tensor:
        """s_l [B, q] fp32: head-mean softmax of the last query against the layer's new keys.

        One row per head beside the fused op (prefill has no past, so these are all of T_l).
        """
        batch, q_len, _ = k.shape
        groups = self.num_heads // self.num_kv_heads
        q_last = q[:, -1].float().view(batch, self.num_kv_heads, groups, self.head_dim)
        keys = k.float().view(batch, q_len, self.num_kv_heads, self.head_dim).transpose(1, 2)
        logits = torch.matmul(q_last, keys.transpose(-1, -2)) * self.scale  # [B, Hkv, G, q]
        return logits.softmax(dim=-1).mean(dim=(1, 2))

    def finish(self, hidden_rows, attention_rows):
        """Output projection + residual + MLP on the tokens kept: [B, n, D], [B, n, H*hd] -> [B, n, D]."""
        hidden = hidden_rows + self.layer.self_attn.o_proj(attention_rows)
        return hidden + self.layer.mlp(self.layer.post_attention_layernorm(hidden))


class PrePruneGraph(nn.Module):
    """Layers 0..K-1 on all tokens, with the global cut inside layer K-1.

    forward(inputs_embeds [B, N, D], position_ids [B, N] or [3, B, N] (M-RoPE), past_length [B] int64,
            past: K pairs (key, value) [B, Hkv, P, hd],
            candidates [B, C], protected [B, M], keep [k] (the global cut's TopKGather inputs),
            rollout_weights [N] fp32, rollout_alpha [] fp32, rollout_enabled [] bool (rollout graphs only))
      -> hidden_states [B, M + k, D] (layer K's input), kept_index [B, M + k],
         kept_position_ids [B, M + k] (or [3, B, M + k]), K pairs of present (key, value),
         (importance [B, N] fp32)

    The cut ranks candidates by the rollout importance (rollout graphs) or keeps all the
    candidates it is given (the positional rule: the runtime passes only the eligible ones).
    Runs that keep every candidate they pass (positional, dense, decode) set rollout_enabled
    false, and the importance is then not computed (it is the row weights themselves).
    """

    def __init__(self, model: nn.Module, num_layers: int, rollout: bool, in_place_kv: bool):
        super().__init__()
        config = model.config
        self.rotary = RotaryTable(model.model.rotary_emb, config)
        self.layers = nn.ModuleList(DecoderLayerGraph(model.model.layers[i], config, in_place_kv)
                                    for i in range(num_layers))
        self.rollout = rollout

    def forward(self, inputs_embeds, position_ids, past_length, past, candidates, protected, keep,
                rollout_weights=None, rollout_alpha=None, rollout_enabled=None):
        hidden = inputs_embeds
        cos, sin = self.rotary(position_ids, hidden.dtype)
        present, recorded = [], []
        last = len(self.layers) - 1
        for index, (layer, (past_key, past_value)) in enumerate(zip(self.layers, past)):
            q, k, v = layer.project(hidden, cos, sin)
            attention, key, value = layer.attend(q, k, v, past_key, past_value, past_length)
            present.append((key, value))
            if self.rollout:
                recorded.append((q, k))
            if index < last:
                hidden = layer.finish(hidden, attention)
        if self.rollout:
            scores = self.importance(recorded, rollout_weights, rollout_alpha, rollout_enabled, hidden.shape[0])
        else:
            scores = torch.zeros(position_ids.shape[-2:], dtype=torch.float32, device=hidden.device)
        kept_index, kept_hidden, kept_positions = cut_tokens(scores, hidden, position_ids, candidates, protected, keep)
        hidden = self.layers[last].finish(kept_hidden, gather_rows(attention, kept_index))
        outputs = (hidden, kept_index, kept_positions, present)
        return (*outputs, scores) if self.rollout else outputs

    def importance(self, recorded, rollout_weights, rollout_alpha, enabled, batch: int) -> torch.Tensor:
        """I^T = u^T A~_{K-1} ... A~_0: the chain from the last layer back, one blockwise step per layer."""
        first = self.layers[0]
        vector = rollout_weights.unsqueeze(0).expand(batch, -1)
        for q, k in reversed(recorded):
            vector = rollout_step(vector, q, k, rollout_alpha, enabled, first.num_heads, first.num_kv_heads,
                                  first.scale)
        return vector


class PostLayerGraph(nn.Module):
    """Layer l >= K on the kept tokens; the fine cut inside it (or, for the last layer, the logits).

    forward(hidden_states [B, q, D], position_ids [B, q] or [3, B, q] (M-RoPE), past_length [B] int64,
            past_key / past_value [B, Hkv, P, hd], candidates [B, C], protected [B, M], keep [k])
      -> layer_output [B, M + k, D], kept_index [B, M + k], kept_position_ids [B, M + k] (or [3, B, M + k]),
         present key, present value, last_query_scores [B, q] fp32
    The last layer takes no cut inputs and returns logits [B, V] fp32 (last token), present key, value.
    """

    def __init__(self, model: nn.Module, layer_index: int, final: bool, in_place_kv: bool):
        super().__init__()
        self.rotary = RotaryTable(model.model.rotary_emb, model.config)
        self.layer = DecoderLayerGraph(model.model.layers[layer_index], model.config, in_place_kv)
        self.final = final
        if final:
            self.norm, self.lm_head = model.model.norm, model.lm_head

    def forward(self, hidden_states, position_ids, past_length, past_key, past_value,
                candidates=None, protected=None, keep=None):
        cos, sin = self.rotary(position_ids, hidden_states.dtype)
        q, k, v = self.layer.project(hidden_states, cos, sin)
        attention, key, value = self.layer.attend(q, k, v, past_key, past_value, past_length)
        if self.final:  # only the last token's output is needed
            hidden = self.layer.finish(hidden_states[:, -1:], attention[:, -1:])
            return self.lm_head(self.norm(hidden[:, 0])).float(), key, value
        scores = self.layer.last_query_scores(q, k)
        kept_index, kept_hidden, kept_positions = cut_tokens(scores, hidden_states, position_ids, candidates,
                                                             protected, keep)
        hidden = self.layer.finish(kept_hidden, gather_rows(attention, kept_index))
        return hidden, kept_index, kept_positions, key, value, scores
