"""Pruning statistics computed outside the attention kernel equal the eager ones."""

from __future__ import annotations

import pytest
import torch

from fastav_export.contract.layout import Segment, TokenLayout
from fastav_export.reference.rollout import (
    dense_rollout,
    query_row_weights,
    streaming_rollout,
)
from fastav_export.reference.scoring import (
    head_mean_attention,
    last_query_scores,
    vector_times_attention,
)
from fastav_export.testing.models import tiny_model


def random_qk(batch=2, heads=4, kv_heads=2, n=37, hd=8, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, heads, n, hd, generator=g) * scale, torch.randn(batch, kv_heads, n, hd, generator=g))


@pytest.mark.parametrize("block", [1, 5, 256])
def test_vector_times_attention_equals_dense_product(block):
    q, k = random_qk()
    v = torch.rand(2, 37, generator=torch.Generator().manual_seed(1))  # seeded: the same case in any test order
    expected = torch.einsum("bi,bij->bj", v, head_mean_attention(q, k, 0.35))
    # fp32 sums in another order: a few ulps of results up to about 3
    torch.testing.assert_close(vector_times_attention(v, q, k, 0.35, block=block), expected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("rows", ["all", "text", "last"])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_streaming_rollout_equals_dense_rollout(rows, alpha):
    layout = TokenLayout((Segment("text", 5), Segment("video", 20, frame=0), Segment("audio", 7), Segment("text", 5)))
    layers = [random_qk(seed=s) for s in range(4)]
    u = query_row_weights(layout, rows, "cpu")
    dense = dense_rollout([head_mean_attention(q, k, 0.35) for q, k in layers], alpha, u)
    torch.testing.assert_close(streaming_rollout(layers, alpha, u, 0.35), dense, atol=1e-5, rtol=0)
    # Rollout maps are row-stochastic, so the importance is a distribution.
    torch.testing.assert_close(dense.sum(-1), torch.ones(2), atol=1e-5, rtol=0)


def test_query_row_weights_fall_back_to_the_last_row_without_text():
    layout = TokenLayout((Segment("video", 4),))
    assert query_row_weights(layout, "text", "cpu").tolist() == [0, 0, 0, 1]


def test_last_query_scores_equal_eager_attention_probabilities():
    """s_l from (q_last, keys) equals the head-mean last row that eager attention returns."""
    model = tiny_model("videollama2-tiny", attn_implementation="eager")
    embeds = torch.randn(2, 30, 64, generator=torch.Generator().manual_seed(0))
    captured = {}

    def keep(name):
        return lambda module, args, output: captured.__setitem__(name, output)

    attn = model.model.layers[2].self_attn
    hooks = [attn.q_proj.register_forward_hook(keep("q")), attn.k_proj.register_forward_hook(keep("k"))]
    with torch.no_grad():
        out = model(inputs_embeds=embeds, output_attentions=True)
        cos, sin = model.model.rotary_emb(embeds, torch.arange(30)[None])
    for hook in hooks:
        hook.remove()
    from transformers.models.qwen2.modeling_qwen2 import apply_rotary_pos_emb

    q = captured["q"].view(2, 30, 4, 16).transpose(1, 2)
    k = captured["k"].view(2, 30, 2, 16).transpose(1, 2)
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    expected = out.attentions[2][:, :, -1].mean(dim=1)
    torch.testing.assert_close(last_query_scores(q[:, :, -1:], k, 16**-0.5), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(head_mean_attention(q, k, 16**-0.5), out.attentions[2].mean(1), atol=1e-6, rtol=0)
