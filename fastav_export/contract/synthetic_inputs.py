"""Seeded synthetic decoder inputs: what a user gets without real encoder outputs.

Text positions take rows of the model's embedding table (random token ids), video and
audio positions unit-variance noise standing in for projected encoder features.
"""

from __future__ import annotations

import torch

from .layout import KIND_CODES, TokenLayout


def synthetic_embeds(embedding_table: torch.Tensor, layout: TokenLayout, batch: int = 1,
                     seed: int = 0) -> torch.Tensor:
    """[B, N, D] fp32 on CPU. embedding_table: [V, D]."""
    generator = torch.Generator().manual_seed(seed)
    vocab, hidden = embedding_table.shape
    n = layout.n_tokens
    noise = torch.randn(batch, n, hidden, generator=generator)
    token_ids = torch.randint(0, vocab, (batch, n), generator=generator)
    text = torch.from_numpy(layout.kind_codes() == KIND_CODES["text"])
    table = embedding_table.detach().float().cpu()
    return torch.where(text[None, :, None], table[token_ids], noise)
