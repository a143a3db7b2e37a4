"""Packed (cu_seqlens) attention as one block-diagonal mask, so a traced encoder serves every clip size.

transformers' Qwen2.5-Omni vision and audio attention take `cu_seqlens`, the boundaries of the
segments that attend among themselves (one per frame, per vision window, per audio chunk). Their
eager/sdpa branch splits q, k and v with `lengths.tolist()` in Python, which a trace freezes to the
sample's segment sizes. Their flash branch instead hands the boundaries to the attention function as
tensors. This module registers an attention function for that branch: it turns the boundaries into a
block-diagonal additive mask [1, 1, S, S] and runs the model's own `eager_attention_forward` with it.
Every shape in the graph then follows S alone; the segment layout is data.

The mask costs S x S per layer where the packed kernels cost sum(segment²); an engine that fuses
varlen attention (ONNX Runtime's packed attention) could replace it later without changing the
inputs, because the inputs are the boundaries themselves.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

# transformers takes the cu_seqlens branch only when `is_flash_attention_requested(config)`, which tests
# for the substring "flash" in the implementation's name: the name has to contain it.
PACKED_MASK_ATTENTION = "fastav_flash_varlen_as_mask"


def segment_mask(cu_seqlens: torch.Tensor, length: int | torch.SymInt, dtype: torch.dtype) -> torch.Tensor:
    """Additive mask [1, 1, S, S]: 0 where query and key lie in the same segment of `cu_seqlens`
    ([n + 1] boundaries, 0 .. S), the dtype's lowest value elsewhere (as transformers' masks use)."""
    positions = torch.arange(length, device=cu_seqlens.device)
    # segment id of each position = how many segment ends lie at or before it
    segment = (positions[:, None] >= cu_seqlens[None, 1:].to(positions.dtype)).sum(-1)
    same = segment[:, None] == segment[None, :]
    zero = torch.zeros((), dtype=dtype, device=cu_seqlens.device)
    lowest = torch.full((), torch.finfo(dtype).min, dtype=dtype, device=cu_seqlens.device)
    return torch.where(same, zero, lowest)[None, None]


def packed_mask_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                          attention_mask: torch.Tensor | None, scaling: float, dropout: float = 0.0,
                          cu_seq_lens_q: torch.Tensor | None = None, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' attention-function interface for packed sequences of one batch row.

    query/key/value [1, heads, S, head_dim]; `cu_seq_lens_q` [n + 1] segment boundaries (the encoders
    pass the same tensor as `cu_seq_lens_k`; `max_length_*` are ignored). Returns (output [1, S, heads,
    head_dim], probabilities) as `eager_attention_forward` does.
    """
    from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import (
        eager_attention_forward,
    )

    if cu_seq_lens_q is None:
        raise ValueError(f"{PACKED_MASK_ATTENTION} needs cu_seq_lens_q (the packed segment boundaries)")
    mask = segment_mask(cu_seq_lens_q, query.shape[2], query.dtype)
    if attention_mask is not None:
        mask = mask + attention_mask
    return eager_attention_forward(module, query, key, value, mask, scaling=scaling, dropout=dropout)


def register_packed_mask_attention() -> None:
    """Make `PACKED_MASK_ATTENTION` a valid `config._attn_implementation` (idempotent)."""
    from transformers import AttentionInterface

    AttentionInterface.register(PACKED_MASK_ATTENTION, packed_mask_attention)


@contextmanager
def packed_mask_attention_in(module: nn.Module):
    """Run `module` (a transformers model whose submodules share its config) with the packed-mask attention
    inside the block, and give it back its own implementation after, so the module itself is unchanged."""
    register_packed_mask_attention()
    config = module.config
    own = config._attn_implementation
    config._attn_implementation = PACKED_MASK_ATTENTION
    try:
        yield
    finally:
        config._attn_implementation = own
