"""The PyTorch reference on Qwen2.5-Omni's thinker decoder (M-RoPE, [3, B, N] positions) against transformers."""

from __future__ import annotations

import functools
from dataclasses import replace

import pytest
import torch

from fastav_export.contract.positions import default_positions
from fastav_export.contract.pruning_config import PruningConfig
from fastav_export.contract.synthetic_inputs import synthetic_embeds
from fastav_export.errors import FastAVError
from fastav_export.models.families.qwen2_5_omni.thinker import ThinkerDecoder, tiny_thinker
from fastav_export.reference.torch_reference import TorchReference
from fastav_export.runtime.generation import generate
from tests.thinker_prompts import thinker_prompt

ATOL = 1e-5
STEPS = 5


@functools.cache
def _thinker(attn: str = "sdpa"):
    return tiny_thinker(0, attn_implementation=attn)


def _inputs(batch: int, seed: int = 0, attn: str = "sdpa"):
    thinker = _thinker(attn)
    decoder = ThinkerDecoder(thinker)
    prompt = thinker_prompt(thinker, batch=batch, seed=seed)
    embeds = synthetic_embeds(decoder.model.embed_tokens.weight, prompt.layout, batch, seed)
    return decoder, prompt, embeds


def _transformers_logits(decoder, embeds, positions):
    """The thinker's own text model + lm_head on the whole sequence: [B, N, V]."""
    with torch.no_grad():
        return decoder(inputs_embeds=embeds, position_ids=positions)


def test_the_tmrope_positions_are_three_different_rows():
    _, prompt, _ = _inputs(batch=1)
    rows = prompt.position_ids[:, 0]
    assert not torch.equal(rows[0], rows[1]) and not torch.equal(rows[1], rows[2])
    assert not torch.equal(rows[0], torch.arange(prompt.layout.n_tokens))  # not contiguous
    # The prompt ends in text: its rows are equal and the largest, so rope_deltas continues after them.
    assert torch.equal(rows[:, -1], rows[:, -1:].max(0).values.expand(3))
    assert int(rows.max()) + 1 == prompt.layout.n_tokens + int(prompt.rope_deltas[0])


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_dense_logits_and_greedy_decoding_equal_the_thinker(attn):
    decoder, prompt, embeds = _inputs(batch=2, seed=1, attn=attn)
    n = prompt.layout.n_tokens
    reference = TorchReference(decoder, prompt.layout, replace(PruningConfig.dense(), global_layer=3))
    out = reference.prefill(embeds, max_new_tokens=STEPS, position_ids=prompt.position_ids)
    torch.testing.assert_close(out.logits, _transformers_logits(decoder, embeds, prompt.position_ids)[:, -1],
                               atol=ATOL, rtol=0)
    assert all(rows.tolist() == [list(range(n))] * 2 for rows in out.kept.values())

    # Decoding with the per-layer caches equals transformers recomputing the whole sequence, the
    # generated tokens at cache position + rope_deltas (what the thinker's generate gives them).
    logits, tokens = out.logits, []
    for step in range(STEPS):
        tokens.append(logits.argmax(-1))
        sequence = torch.cat([embeds, decoder.model.embed_tokens(torch.stack(tokens, 1)).detach()], dim=1)
        generated = (torch.arange(n, n + step + 1) + prompt.rope_deltas).expand(3, -1, -1)
        positions = torch.cat([prompt.position_ids, generated], dim=2)
        expected = _transformers_logits(decoder, sequence, positions)[:, -1]
        logits = reference.decode(tokens[-1])
        torch.testing.assert_close(logits, expected, atol=ATOL, rtol=0)
    assert reference.cache.lengths() == [n + STEPS] * 6


@pytest.mark.parametrize("policy", ["positional", "rollout"])
def test_with_equal_rows_the_thinker_prunes_like_a_qwen2_decoder(policy):
    """Three equal rows make M-RoPE the default RoPE: the same weights in a Qwen2ForCausalLM (whose
    pruning the oracle checks) keep the same tokens and give the same logits and tokens."""
    from transformers import Qwen2ForCausalLM

    decoder, prompt, embeds = _inputs(batch=2, seed=2)
    qwen2 = Qwen2ForCausalLM(decoder.dims.to_qwen2_config()).eval()
    qwen2.load_state_dict(decoder.state_dict())
    config = PruningConfig(global_policy=policy, global_layer=3, cutoff=30, keep_audio=4, global_budget=0.5,
                           fine_ratio=0.3)
    batch, n = embeds.shape[:2]
    thinker_reference = TorchReference(decoder, prompt.layout, config)
    three = thinker_reference.prefill(embeds, max_new_tokens=4, position_ids=default_positions(batch, n, rows=3))
    one = TorchReference(qwen2, prompt.layout, config).prefill(embeds, max_new_tokens=4)
    assert {l: k.tolist() for l, k in three.kept.items()} == {l: k.tolist() for l, k in one.kept.items()}
    assert len(three.kept[3][0]) < n  # pruning did happen
    torch.testing.assert_close(three.logits, one.logits, atol=ATOL, rtol=0)


def test_pruned_generation_is_deterministic_and_keeps_the_last_token():
    decoder, prompt, embeds = _inputs(batch=2, seed=3)
    config = PruningConfig(global_policy="rollout", global_layer=3, global_budget=0.4, fine_ratio=0.3)
    runs = []
    for _ in range(2):
        reference = TorchReference(decoder, prompt.layout, config)
        out = reference.prefill(embeds, max_new_tokens=3, position_ids=prompt.position_ids)
        runs.append((out.kept, out.logits, reference.decode(out.logits.argmax(-1))))
    assert all(torch.equal(runs[0][0][l], runs[1][0][l]) for l in runs[0][0])
    assert torch.equal(runs[0][2], runs[1][2])
    assert all(int(rows[0, -1]) == prompt.layout.n_tokens - 1 for rows in runs[0][0].values())


def test_positions_of_the_wrong_shape_are_refused():
    decoder, prompt, embeds = _inputs(batch=1)
    reference = TorchReference(decoder, prompt.layout, replace(PruningConfig.dense(), global_layer=3))
    with pytest.raises(FastAVError, match=r"expected integers \[3, B, N\]"):
        reference.prefill(embeds, position_ids=prompt.position_ids[0])


def test_generate_defaults_to_contiguous_positions_in_every_row():
    decoder, prompt, embeds = _inputs(batch=1)
    config = replace(PruningConfig.dense(), global_layer=3)
    result = generate(TorchReference(decoder, prompt.layout, config), embeds, 2)
    positions = default_positions(1, prompt.layout.n_tokens, rows=3)
    expected = _transformers_logits(decoder, embeds, positions)[:, -1]
    torch.testing.assert_close(torch.from_numpy(result.first_logits), expected, atol=ATOL, rtol=0)
