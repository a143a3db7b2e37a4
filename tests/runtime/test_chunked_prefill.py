"""A chunked prefill (graph calls over windows of the prompt) gives what one call gives, bit for bit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from fastav_export.contract.pruning_config import PruningConfig
from fastav_export.contract.synthetic_inputs import synthetic_embeds
from fastav_export.runtime.generation import generate
from fastav_export.runtime.ort.graphs import OrtPipeline
from fastav_export.testing.models import tiny_model

NEW_TOKENS = 6


def _config(manifest, policy: str) -> PruningConfig:
    if policy == "dense":
        return replace(PruningConfig.dense(), global_layer=manifest.global_layer).resolve(manifest.dims.num_layers)
    return replace(manifest.pruning, global_policy=policy).resolve(manifest.dims.num_layers)


def _run(manifest, config, embeds, chunk):
    pipeline = OrtPipeline(manifest, manifest.layout, config)
    pipeline.prefill_chunk = chunk
    windows = []
    run_pre = pipeline._run_pre
    pipeline._run_pre = lambda hidden, *args: (windows.append(hidden.shape[1]), run_pre(hidden, *args))[1]
    return generate(pipeline, embeds, NEW_TOKENS), windows


@pytest.mark.parametrize("policy", ["positional", "dense", "rollout"])
@pytest.mark.parametrize("name", ["videollama2-tiny", "qwen2.5-omni-tiny"])
def test_windows_of_the_prompt_give_what_one_call_gives(tiny_engine, name, policy):
    manifest = tiny_engine(name)
    config = _config(manifest, policy)
    embeds = synthetic_embeds(tiny_model(name).model.embed_tokens.weight, manifest.layout, 1, 3)
    whole, calls = _run(manifest, config, embeds, None)
    chunked, windows = _run(manifest, config, embeds, 7)
    n = manifest.layout.n_tokens
    # a rollout ranking needs every token's importance first: one call
    assert windows == ([n] if policy == "rollout" else [7] * (n // 7) + [n % 7] * (n % 7 > 0)), windows
    assert calls == [n]
    assert chunked.kept == whole.kept and chunked.tokens == whole.tokens
    np.testing.assert_array_equal(chunked.first_logits, whole.first_logits)


def test_several_rows_take_one_call(tiny_engine):
    manifest = tiny_engine("videollama2-tiny")
    config = _config(manifest, "positional")
    embeds = torch.randn(2, manifest.layout.n_tokens, manifest.dims.hidden_size) * 0.02
    whole, _ = _run(manifest, config, embeds, None)
    batched, windows = _run(manifest, config, embeds, 7)
    assert windows == [manifest.layout.n_tokens]  # GroupQueryAttention: new tokens over a past, one row only
    assert batched.kept == whole.kept and batched.tokens == whole.tokens
