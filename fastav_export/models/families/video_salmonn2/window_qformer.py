"""The BLIP-2 style Q-Former video-SALMONN 2 runs on each audio window, with the checkpoint's key names.

Upstream (bytedance video-SALMONN 2, llava/model/language_model/Qformer.py, built by
video_salmonn_2.py): a BERT (bert-base-uncased sizes) whose layers add cross-attention to the
encoder states and a second feed-forward (`intermediate_query`/`output_query`) for the query
tokens. video-SALMONN 2 passes only `query_embeds` (no text), so upstream deletes the word and
position embeddings, the text feed-forward (`intermediate`/`output`) and the `cls` head; what
remains, under `bert.`, is

    embeddings.LayerNorm
    encoder.layer.{i}.attention.{self.{query,key,value}, output.{dense,LayerNorm}}
    encoder.layer.{i}.crossattention.{self.{query,key,value}, output.{dense,LayerNorm}}
    encoder.layer.{i}.intermediate_query.dense
    encoder.layer.{i}.output_query.{dense,LayerNorm}

and this module has exactly those keys. Eval-mode computation only (no dropout); the encoder
mask upstream passes is all ones, so no mask is applied.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class QFormerConfig:
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    encoder_width: int  # width of the states the queries cross-attend to (Whisper's d_model)
    layer_norm_eps: float = 1e-12

    @classmethod
    def real(cls, encoder_width: int = 1280) -> QFormerConfig:
        """video-SALMONN 2's speech Q-Former: bert-base-uncased sizes, 2 layers, cross-attention in each."""
        return cls(hidden_size=768, num_layers=2, num_heads=12, intermediate_size=3072,
                   encoder_width=encoder_width, layer_norm_eps=1e-12)

    @classmethod
    def tiny(cls, encoder_width: int = 32) -> QFormerConfig:
        return cls(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                   encoder_width=encoder_width, layer_norm_eps=1e-12)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> QFormerConfig:
        return cls(**data)


class _HeadAttention(nn.Module):
    """BERT multi-head attention: [B, Q, H] queries over [B, K, kv_width] keys/values -> [B, Q, H] (heads merged)."""

    def __init__(self, config: QFormerConfig, kv_width: int):
        super().__init__()
        if config.hidden_size % config.num_heads:
            raise ValueError(f"Q-Former hidden_size {config.hidden_size} is not a multiple of {config.num_heads} heads")
        self.num_heads = config.num_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(kv_width, config.hidden_size)
        self.value = nn.Linear(kv_width, config.hidden_size)

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, H] -> [B, heads, T, H / heads]
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.query(x)), self._split(self.key(context)), self._split(self.value(context))
        # softmax(q k^T / sqrt(head_dim)) v: SDPA's default scale is BERT's.
        out = F.scaled_dot_product_attention(q, k, v)
        return out.transpose(1, 2).flatten(-2)


class _AddNorm(nn.Module):
    """BERT's output block: LayerNorm(dense(x) + residual)."""

    def __init__(self, in_size: int, hidden_size: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(in_size, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _Attention(nn.Module):
    """`self` (the heads) then `output` (add and norm): the key layout of BertAttention."""

    def __init__(self, config: QFormerConfig, kv_width: int):
        super().__init__()
        self.self = _HeadAttention(config, kv_width)
        self.output = _AddNorm(config.hidden_size, config.hidden_size, config.layer_norm_eps)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x, context), x)


class _Intermediate(nn.Module):
    def __init__(self, config: QFormerConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))  # BERT's "gelu": the exact erf form


class _Layer(nn.Module):
    def __init__(self, config: QFormerConfig):
        super().__init__()
        self.attention = _Attention(config, config.hidden_size)
        self.crossattention = _Attention(config, config.encoder_width)
        # The query tokens' own feed-forward; the text one (`intermediate`/`output`) is deleted upstream.
        self.intermediate_query = _Intermediate(config)
        self.output_query = _AddNorm(config.intermediate_size, config.hidden_size, config.layer_norm_eps)

    def forward(self, x: torch.Tensor, encoder_states: torch.Tensor) -> torch.Tensor:
        x = self.attention(x, x)
        x = self.crossattention(x, encoder_states)
        return self.output_query(self.intermediate_query(x), x)


class _Encoder(nn.Module):
    def __init__(self, config: QFormerConfig):
        super().__init__()
        self.layer = nn.ModuleList(_Layer(config) for _ in range(config.num_layers))


class _Embeddings(nn.Module):
    """Only the LayerNorm is left: the queries are the embeddings (no words, no positions)."""

    def __init__(self, config: QFormerConfig):
        super().__init__()
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)


class _Bert(nn.Module):
    def __init__(self, config: QFormerConfig):
        super().__init__()
        self.embeddings = _Embeddings(config)
        self.encoder = _Encoder(config)


class QFormer(nn.Module):
    """Query tokens attend to each other and to encoder states.

    forward(query_embeds [B, Q, H], encoder_hidden_states [B, K, W]) -> [B, Q, H]
    (H = hidden_size, W = encoder_width): BLIP-2's `Qformer.bert(query_embeds=...)`'s last_hidden_state.
    """

    def __init__(self, config: QFormerConfig):
        super().__init__()
        self.config = config
        self.bert = _Bert(config)

    def forward(self, query_embeds: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        x = self.bert.embeddings.LayerNorm(query_embeds)
        for layer in self.bert.encoder.layer:
            x = layer(x, encoder_hidden_states)
        return x
