"""The pieces of BEATs' transformer encoder, named as in VideoLLaMA2's checkpoint.

Upstream: DAMO-NLP-SG/VideoLLaMA2 (branch `audio_visual`) videollama2/model/beats/backbone.py
and weight_norm_fix.py, a copy of microsoft/unilm beats/backbone.py (itself from fairseq's
wav2vec 2 / WavLM) whose weight norm adds an epsilon. Inference only: dropout, layer drop and
the layer-wise gradient decay (an identity forward) are left out.

Module paths under `encoder.` (the checkpoint's):
    pos_conv.0.{weight_g, weight_v, bias}                          weight-normed grouped conv
    layer_norm.{weight, bias}
    layers.N.self_attn.{q,k,v,out}_proj.{weight, bias}
    layers.N.self_attn.grep_linear.{weight, bias}, .grep_a          gated relative position (gru_rel_pos)
    layers.N.self_attn.relative_attention_bias.weight               one table, shared by every layer
    layers.N.{self_attn_layer_norm, fc1, fc2, final_layer_norm}.*
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# Upstream computes q k^T on q / alpha, subtracts each row's maximum, then multiplies by alpha:
# the softmax is unchanged but the scores stay small in half precision.
SCORE_ALPHA = 32.0
WEIGHT_NORM_EPS = 1e-6  # weight_norm_fix.py: v * rsqrt(sum v^2 + 1e-6), in float32


def relative_position_buckets(length: int, num_buckets: int, max_distance: int,
                              device: torch.device | None = None) -> torch.Tensor:
    """Bucket of every (query i, key j) offset j - i: [length, length] int64 in [0, num_buckets).

    Half the buckets for keys after the query (j > i), half for the rest; within a half,
    |j - i| < max_exact = num_buckets // 4 get a bucket each, farther offsets share
    logarithmically wider buckets up to max_distance, beyond which all share the last.
    """
    positions = torch.arange(length, device=device)
    offset = positions.unsqueeze(0) - positions.unsqueeze(1)
    half = num_buckets // 2
    buckets = (offset > 0).to(torch.long) * half
    distance = offset.abs()
    max_exact = half // 2
    # Upstream takes log(0) = -inf for the small offsets and discards it by `where`; clamping at 1
    # gives the same buckets without an infinity (whose integer cast ONNX leaves undefined).
    log_ratio = torch.log(distance.clamp(min=1).float() / max_exact) / math.log(max_distance / max_exact)
    far = max_exact + (log_ratio * (half - max_exact)).to(torch.long)
    far = far.clamp(max=half - 1)
    return buckets + torch.where(distance < max_exact, distance, far)


class WeightNormConv1d(nn.Module):
    """Conv1d whose weight is stored as magnitude `weight_g` [1, 1, K] and direction `weight_v`
    [C_out, C_in / groups, K] (torch's legacy weight_norm names, dim=2 as upstream).

    weight = weight_g * weight_v / sqrt(sum over dims 0, 1 of weight_v^2 + 1e-6), computed in
    forward (so an exported graph carries g and v) in float32 as upstream's weight_norm_fix.
    """

    def __init__(self, channels: int, kernel_size: int, groups: int):
        super().__init__()
        self.padding = kernel_size // 2
        self.groups = groups
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel_size))
        self.weight_v = nn.Parameter(torch.empty(channels, channels // groups, kernel_size))
        self.bias = nn.Parameter(torch.zeros(channels))
        nn.init.normal_(self.weight_v, std=math.sqrt(4.0 / (kernel_size * channels)))

    def weight(self) -> torch.Tensor:
        v = self.weight_v.float()
        direction = v * torch.rsqrt(v.pow(2).sum(dim=(0, 1), keepdim=True) + WEIGHT_NORM_EPS)
        return self.weight_g * direction.to(self.weight_v.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C, L] -> [B, C, L + 1 - K % 2] (the padding adds K // 2 on each side)."""
        return F.conv1d(x, self.weight(), self.bias, padding=self.padding, groups=self.groups)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # torch.nn.utils.parametrizations.weight_norm stores g and v as original0 / original1.
        for new, old in (("weight_g", "parametrizations.weight.original0"),
                         ("weight_v", "parametrizations.weight.original1")):
            if prefix + old in state_dict and prefix + new not in state_dict:
                state_dict[prefix + new] = state_dict.pop(prefix + old)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class SamePad(nn.Module):
    """Drops the last step an even kernel's symmetric padding adds, so the conv keeps the length."""

    def __init__(self, kernel_size: int):
        super().__init__()
        self.remove = 1 if kernel_size % 2 == 0 else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :-self.remove] if self.remove else x


class RelPosSelfAttention(nn.Module):
    """Multi-head self-attention with BEATs' gated relative position bias.

    The bias table (`relative_attention_bias`, [num_buckets, heads]) is looked up once per
    forward by the encoder and passed in; each layer scales it per query and head by a gate
    computed from that query: a, b = sigmoid(sum of 4 of `grep_linear(q_head)`'s 8 outputs
    each), gate = a * (b * grep_a - 1) + 2.
    """

    def __init__(self, dim: int, heads: int, num_buckets: int):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scaling = self.head_dim ** -0.5
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.relative_attention_bias = nn.Embedding(num_buckets, heads)
        self.grep_linear = nn.Linear(self.head_dim, 8)
        self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.heads, self.head_dim).transpose(1, 2)

    def position_bias(self, length: int, max_distance: int) -> torch.Tensor:
        """The ungated bias [heads, length, length] from this layer's table."""
        table = self.relative_attention_bias
        buckets = relative_position_buckets(length, table.num_embeddings, max_distance, table.weight.device)
        return table(buckets).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, position_bias: torch.Tensor) -> torch.Tensor:
        """x [B, L, D], position_bias [heads, L, L] -> [B, L, D]."""
        batch, length, dim = x.shape
        q = self._split(self.q_proj(x))
        k = self._split(self.k_proj(x))
        v = self._split(self.v_proj(x))
        scores = (q * (self.scaling / SCORE_ALPHA)) @ k.transpose(-1, -2)
        scores = (scores - scores.amax(dim=-1, keepdim=True)) * SCORE_ALPHA
        gates = torch.sigmoid(self.grep_linear(q).view(batch, self.heads, length, 2, 4).sum(-1))
        gate_a, gate_b = gates[..., :1], gates[..., 1:]
        gate = gate_a * (gate_b * self.grep_a - 1.0) + 2.0
        scores = scores + gate * position_bias.unsqueeze(0)
        attn = torch.softmax(scores, dim=-1) @ v
        return self.out_proj(attn.transpose(1, 2).reshape(batch, length, dim))


class EncoderLayer(nn.Module):
    """Post-LayerNorm transformer layer with DeepNorm residual scaling (BEATs: deep_norm, not
    layer_norm_first): x = LN(alpha x + attn(x)); x = LN(alpha x + fc2(gelu(fc1(x)))),
    alpha = (2 * layers) ** 0.25."""

    def __init__(self, dim: int, ffn_dim: int, heads: int, num_buckets: int, alpha: float):
        super().__init__()
        self.alpha = alpha
        self.self_attn = RelPosSelfAttention(dim, heads, num_buckets)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, position_bias: torch.Tensor) -> torch.Tensor:
        """x [B, L, D] -> [B, L, D]."""
        x = self.self_attn_layer_norm(x * self.alpha + self.self_attn(x, position_bias))
        # gelu: exact (erf), as upstream's get_activation_fn("gelu").
        return self.final_layer_norm(x * self.alpha + self.fc2(F.gelu(self.fc1(x))))


class TransformerEncoder(nn.Module):
    """x + gelu(conv positional embedding of x) -> LayerNorm -> layers (no final norm).

    Every layer's `self_attn.relative_attention_bias` is the first layer's module (upstream
    deletes the others' and shares layer 0's), so the state dict lists it under each layer.
    """

    def __init__(self, config):
        super().__init__()
        dim = config.encoder_embed_dim
        self.max_distance = config.max_distance
        self.pos_conv = nn.Sequential(WeightNormConv1d(dim, config.conv_pos, config.conv_pos_groups),
                                      SamePad(config.conv_pos), nn.GELU())
        alpha = (2.0 * config.encoder_layers) ** 0.25
        self.layers = nn.ModuleList(
            EncoderLayer(dim, config.encoder_ffn_embed_dim, config.encoder_attention_heads, config.num_buckets, alpha)
            for _ in range(config.encoder_layers))
        for layer in self.layers[1:]:
            layer.self_attn.relative_attention_bias = self.layers[0].self_attn.relative_attention_bias
        self.layer_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, L, D] -> [B, L, D]."""
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        x = self.layer_norm(x)
        # Computed by the first layer, then passed on (upstream's pos_bias): one lookup per forward.
        position_bias = self.layers[0].self_attn.position_bias(x.shape[1], self.max_distance)
        for layer in self.layers:
            x = layer(x, position_bias)
        return x
