"""The PyTorch reference against transformers and against the brute-force oracle."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from fastav_export.contract.layout import Segment, TokenLayout
from fastav_export.contract.pruning_config import PruningConfig
from fastav_export.contract.synthetic_inputs import synthetic_embeds
from fastav_export.models import get_model_spec
from fastav_export.reference.torch_reference import TorchReference
from fastav_export.runtime.generation import generate
from fastav_export.testing.models import TINY_MODELS, tiny_model

from ..oracle import oracle_prefill, oracle_recompute_logits

ATOL = 1e-5


def inputs(name, layout=None, batch=2, seed=0):
    model = tiny_model(name)
    layout = layout or get_model_spec(name).default_layout()
    return model, layout, synthetic_embeds(model.model.embed_tokens.weight, layout, batch, seed)


# ---- pruning off: the reference is transformers' Qwen2 -----------------------------
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_unpruned_logits_and_greedy_tokens_equal_transformers(tiny_name, attn):
    model = tiny_model(tiny_name, attn_implementation=attn)
    layout = get_model_spec(tiny_name).default_layout()
    embeds = synthetic_embeds(model.model.embed_tokens.weight, layout, 2, seed=3)
    result = generate(TorchReference(model, layout, PruningConfig.dense()), embeds, 16)
    with torch.no_grad():
        expected_logits = model(inputs_embeds=embeds).logits[:, -1]
        expected_tokens = model.generate(inputs_embeds=embeds, max_new_tokens=16, do_sample=False,
                                         eos_token_id=None, pad_token_id=0)
    torch.testing.assert_close(torch.from_numpy(result.first_logits), expected_logits, atol=ATOL, rtol=0)
    assert result.tokens == expected_tokens[:, -16:].tolist()
    assert all(rows == [list(range(layout.n_tokens))] * 2 for rows in result.kept.values())


# ---- pruning on: the reference is the oracle ---------------------------------------
def _configs(name):
    preset = get_model_spec(name).preset
    return {
        "positional": preset,
        "rollout": replace(preset, global_policy="rollout"),
        "rollout-fraction-text-rows": replace(preset, global_policy="rollout", global_budget=0.4, rollout_queries="text"),
        "rollout-last-row-alpha": replace(preset, global_policy="rollout", global_budget=7, rollout_queries="last", alpha=0.8),
        "fine-only": replace(preset, global_policy="none", fine_ratio=0.3),
        "budget-above-candidates": replace(preset, global_policy="rollout", global_budget=10_000),
        "P=0": replace(preset, global_policy="rollout", fine_ratio=0.0),
        "K=1": replace(preset, global_policy="rollout", global_layer=1),
        "K=L-1": replace(preset, global_policy="rollout", global_layer=5),
    }


CASES = [(name, case) for name in TINY_MODELS for case in _configs(name)]


def check_against_oracle(name, layout, config, embeds, steps=4):
    model = tiny_model(name)
    config = config.resolve(model.config.num_hidden_layers)
    result = generate(TorchReference(model, layout, config), embeds, steps)
    oracle = oracle_prefill(model, layout, config, embeds)
    for row, (kept, logits) in enumerate(oracle):
        assert {l: rows[row] for l, rows in result.kept.items()} == kept
        torch.testing.assert_close(torch.from_numpy(result.first_logits[row]).double(), logits, atol=ATOL, rtol=0)
        # Decoding with per-layer caches equals recomputing each step from scratch.
        generated = result.tokens[row]
        for step in range(1, steps):
            recomputed = oracle_recompute_logits(model, config, embeds[row], kept, generated[:step])
            assert int(recomputed.argmax()) == generated[step]
    return result


@pytest.mark.parametrize("name,case", CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kept_sets_logits_and_tokens_match_oracle(name, case, seed):
    _, layout, embeds = inputs(name, seed=seed)
    check_against_oracle(name, layout, _configs(name)[case], embeds)


EDGE_LAYOUTS = {
    "no-audio-visual": TokenLayout((Segment("text", 20),)),
    "single-token": TokenLayout((Segment("text", 1),)),
    "single-audio-token": TokenLayout((Segment("audio", 1),)),
    "ends-with-video": TokenLayout((Segment("text", 3), Segment("video", 12, frame=0), Segment("audio", 6, frame=0))),
}


@pytest.mark.parametrize("layout_name", EDGE_LAYOUTS)
@pytest.mark.parametrize("policy", ["positional", "rollout"])
def test_edge_layouts_match_oracle(layout_name, policy):
    layout = EDGE_LAYOUTS[layout_name]
    _, _, embeds = inputs("videollama2-tiny", layout=layout, seed=5)
    config = PruningConfig(global_policy=policy, cutoff=8, global_budget=0.5)
    result = check_against_oracle("videollama2-tiny", layout, config, embeds)
    assert result.kept[5][0][-1] == layout.n_tokens - 1  # the last token is never pruned


def test_decode_with_caches_equals_recompute_for_16_tokens():
    model, layout, embeds = inputs("video-salmonn2-tiny", seed=7)
    config = replace(get_model_spec("video-salmonn2-tiny").preset, global_policy="rollout").resolve(6)
    ref = TorchReference(model, layout, config)
    out = ref.prefill(embeds, max_new_tokens=16)
    kept = {l: idx.tolist() for l, idx in out.kept.items()}
    logits, tokens = out.logits, [[] for _ in range(2)]
    for step in range(16):
        for row in range(2):
            expected = oracle_recompute_logits(model, config, embeds[row], {l: k[row] for l, k in kept.items()},
                                               tokens[row])
            torch.testing.assert_close(logits[row].double(), expected, atol=ATOL, rtol=0)
        next_ids = logits.argmax(-1)
        for row in range(2):
            tokens[row].append(int(next_ids[row]))
        logits = ref.decode(next_ids)
    # Every layer's cache holds exactly its own tokens plus the generated ones.
    assert ref.cache.lengths() == [n + 16 for n in ref.schedule.tokens]


def test_batch_rows_are_independent():
    model, layout, embeds = inputs("videollama2-tiny", seed=11)
    config = replace(get_model_spec("videollama2-tiny").preset, global_policy="rollout")
    batched = generate(TorchReference(model, layout, config), embeds, 6)
    for row in range(2):
        single = generate(TorchReference(model, layout, config), embeds[row: row + 1], 6)
        assert single.tokens[0] == batched.tokens[row]
        assert {l: r[0] for l, r in single.kept.items()} == {l: r[row] for l, r in batched.kept.items()}
    # Different contents, same counts: the rows keep different tokens.
    assert any(rows[0] != rows[1] for rows in batched.kept.values())


def test_streaming_and_dense_rollout_keep_the_same_tokens(tiny_name):
    model, layout, embeds = inputs(tiny_name, seed=4)
    config = replace(get_model_spec(tiny_name).preset, global_policy="rollout")
    runs = [generate(TorchReference(model, layout, config, rollout_impl=impl), embeds, 4) for impl in ("streaming", "dense")]
    assert runs[0].kept == runs[1].kept and runs[0].tokens == runs[1].tokens


def test_eager_and_sdpa_attention_make_the_same_decisions(tiny_name):
    layout = get_model_spec(tiny_name).default_layout()
    config = replace(get_model_spec(tiny_name).preset, global_policy="rollout")
    runs = []
    for attn in ("sdpa", "eager"):
        model = tiny_model(tiny_name, attn_implementation=attn)
        embeds = synthetic_embeds(model.model.embed_tokens.weight, layout, 2, seed=9)
        runs.append(generate(TorchReference(model, layout, config), embeds, 8))
    assert runs[0].kept == runs[1].kept and runs[0].tokens == runs[1].tokens
