"""Attention statistics that drive pruning, computed outside the attention kernel.

Both functions take the layer's queries and keys (after RoPE) and recompute only what
pruning needs, so the layer itself can use SDPA or FlashAttention, which never expose
attention probabilities. Everything is computed in fp32.
"""

from __future__ import annotations

import torch


def _group_queries(queries: torch.Tensor, kv_heads: int) -> torch.Tensor:
    """[B, H, q, hd] -> [B, kv_heads, H / kv_heads, q, hd] (GQA: heads sharing a KV head)."""
    b, h, q, d = queries.shape
    return queries.reshape(b, kv_heads, h // kv_heads, q, d)


def last_query_scores(q_last: torch.Tensor, keys: torch.Tensor, scale: float) -> torch.Tensor:
    """s_l: head-mean attention of the last token over the layer's tokens.

    q_last: [B, H, 1, hd] the last token's query; keys: [B, kv_heads, n, hd].
    Returns [B, n] fp32. No causal mask is needed: the last token sees every key.
    """
    q = _group_queries(q_last.float(), keys.shape[1])
    logits = torch.einsum("bkgqd,bknd->bkgqn", q, keys.float()) * scale
    return logits.softmax(dim=-1).mean(dim=(1, 2)).squeeze(1)


def head_mean_attention(queries: torch.Tensor, keys: torch.Tensor, scale: float) -> torch.Tensor:
    """A_l: head-mean causal attention probabilities, materialised. [B, N, N] fp32.

    queries: [B, H, N, hd]; keys: [B, kv_heads, N, hd]. Accumulated one KV group at a
    time so the peak is one [B, H/kv, N, N] block rather than all heads.
    """
    b, h, n, _ = queries.shape
    q = _group_queries(queries.float(), keys.shape[1])
    causal = torch.ones(n, n, dtype=torch.bool, device=queries.device).tril()
    total = torch.zeros(b, n, n, dtype=torch.float32, device=queries.device)
    for g in range(keys.shape[1]):
        logits = torch.einsum("bgqd,bnd->bgqn", q[:, g], keys[:, g].float()) * scale
        total += logits.masked_fill(~causal, float("-inf")).softmax(dim=-1).sum(dim=1)
    return total / h


def vector_times_attention(
    vector: torch.Tensor, queries: torch.Tensor, keys: torch.Tensor, scale: float, block: int = 256
) -> torch.Tensor:
    """v^T A_l without materialising A_l: [B, N] -> [B, N] fp32.

    Walks the query rows in blocks; each block's probabilities are rebuilt from Q, K and
    the row softmax and immediately contracted with v. This is the dV computation of a
    FlashAttention backward pass with a one-column dO, so a fused kernel can do the same.
    """
    b, h, n, _ = queries.shape
    kv = keys.shape[1]
    q = _group_queries(queries.float(), kv)
    k = keys.float()
    out = torch.zeros(b, n, dtype=torch.float32, device=queries.device)
    cols = torch.arange(n, device=queries.device)
    for start in range(0, n, block):
        rows = torch.arange(start, min(start + block, n), device=queries.device)
        logits = torch.einsum("bkgqd,bknd->bkgqn", q[:, :, :, start : start + len(rows)], k) * scale
        logits = logits.masked_fill(cols[None, :] > rows[:, None], float("-inf"))
        probs = logits.softmax(dim=-1)
        out += torch.einsum("bq,bkgqn->bn", vector[:, start : start + len(rows)], probs)
    return out / h
