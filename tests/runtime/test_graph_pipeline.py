"""The graph pipeline reproduces the PyTorch reference on every engine backend and graph flavour.

Kept sets are exact, logits within LOGITS_ATOL and greedy tokens identical, for ONNX
Runtime here (both flavours: GroupQueryAttention and the standard Attention op) and
TensorRT wherever `tensorrt` and a GPU are present (skipped otherwise, with the reason).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from fastav_export.contract.layout import Segment, TokenLayout
from fastav_export.contract.pruning_config import PruningConfig
from fastav_export.contract.synthetic_inputs import synthetic_embeds
from fastav_export.errors import FastAVError
from fastav_export.models import get_model_spec
from fastav_export.reference.torch_reference import TorchReference
from fastav_export.runtime.backends import open_engine_backend
from fastav_export.runtime.generation import generate
from fastav_export.testing.models import TINY_MODELS, tiny_model
from tests.conftest import ENGINE_BACKENDS

pytestmark = pytest.mark.slow  # builds the tiny engines in every flavour and generates on each

LOGITS_ATOL = 1e-4  # fp32 engines vs the fp32 PyTorch reference
NEW_TOKENS = 16

LAYOUTS = {
    "default": None,
    # text between the audio-visual segments: protected tokens sit mid-sequence
    "interleaved": TokenLayout((Segment("text", 4), Segment("video", 12, 0), Segment("text", 3),
                                Segment("video", 12, 1), Segment("audio", 10), Segment("text", 5))),
    # ends in audio: the last token (always kept) is an audio-visual one
    "ends-in-audio": TokenLayout((Segment("text", 6), Segment("video", 20, 0), Segment("audio", 14))),
}


@pytest.fixture(params=ENGINE_BACKENDS)
def backend_and_flavour(request) -> tuple[str, str]:
    return request.param


@pytest.fixture
def backend(backend_and_flavour) -> str:
    return backend_and_flavour[0]


@pytest.fixture
def engine(tiny_engine, backend_and_flavour):
    """engine(name, rollout=True) -> the tiny fp32 engine built for the backend, in the flavour."""
    backend, flavour = backend_and_flavour
    return lambda name, rollout=True: tiny_engine(name, rollout=rollout, backend=backend, flavour=flavour)


def _config(name, policy):
    spec = get_model_spec(name)
    return replace(spec.preset, global_policy=policy).resolve(spec.dims.num_layers)


def _compare(engine, backend, name, layout, config, batch, seed):
    model = tiny_model(name)
    embeds = synthetic_embeds(model.model.embed_tokens.weight, layout, batch, seed)
    expected = generate(TorchReference(model, layout, config), embeds, NEW_TOKENS)
    got = generate(open_engine_backend(engine, layout, config, backend), embeds, NEW_TOKENS)
    assert got.kept == expected.kept
    np.testing.assert_allclose(got.first_logits, expected.first_logits, atol=LOGITS_ATOL, rtol=0)
    assert got.tokens == expected.tokens
    return got


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("seed", [0, 5])
@pytest.mark.parametrize("policy", ["positional", "rollout"])
@pytest.mark.parametrize("name", TINY_MODELS)
def test_pipeline_matches_the_reference(engine, backend, name, policy, seed, batch):
    engine = engine(name)
    layout = get_model_spec(name).default_layout()
    result = _compare(engine, backend, name, layout, _config(name, policy), batch, seed)
    K = engine.global_layer
    assert len(result.kept[K][0]) < layout.n_tokens  # pruning did happen


@pytest.mark.parametrize("layout_name", ["interleaved", "ends-in-audio"])
@pytest.mark.parametrize("policy", ["positional", "rollout"])
def test_pipeline_matches_the_reference_on_other_layouts(engine, backend, layout_name, policy):
    name = "videollama2-tiny"
    config = replace(_config(name, policy), cutoff=20, keep_audio=2)
    _compare(engine(name), backend, name, LAYOUTS[layout_name], config, batch=2, seed=3)


@pytest.mark.parametrize("config", [
    dict(global_policy="rollout", global_budget=0.4, rollout_queries="text", alpha=0.7),
    dict(global_policy="rollout", global_budget=10_000),  # keeps every candidate: no global cut
    dict(global_policy="none", fine_ratio=0.35),
    dict(fine_ratio=0.0),
], ids=["rollout-fraction-text-rows", "budget-above-candidates", "fine-only", "P=0"])
def test_run_time_overrides_match_the_reference(engine, backend, config):
    name = "video-salmonn2-tiny"
    base = _config(name, "positional")
    _compare(engine(name), backend, name, get_model_spec(name).default_layout(), replace(base, **config), 2, 1)


def test_unpruned_pipeline_equals_transformers(engine, backend, tiny_name):
    engine = engine(tiny_name)
    model = tiny_model(tiny_name)
    layout = get_model_spec(tiny_name).default_layout()
    embeds = synthetic_embeds(model.model.embed_tokens.weight, layout, 2, seed=4)
    dense = replace(PruningConfig.dense(), global_layer=engine.global_layer)
    result = generate(open_engine_backend(engine, layout, dense, backend), embeds, NEW_TOKENS)
    with torch.no_grad():
        logits = model(inputs_embeds=embeds).logits[:, -1]
        tokens = model.generate(inputs_embeds=embeds, max_new_tokens=NEW_TOKENS, do_sample=False,
                                eos_token_id=None, pad_token_id=0)
    np.testing.assert_allclose(result.first_logits, logits.numpy(), atol=LOGITS_ATOL, rtol=0)
    assert result.tokens == tokens[:, -NEW_TOKENS:].tolist()


def test_kv_buffers_are_allocated_once_and_written_in_place(engine, backend):
    name = "videollama2-tiny"
    layout = get_model_spec(name).default_layout()
    pipeline = open_engine_backend(engine(name), layout, _config(name, "positional"), backend)
    embeds = synthetic_embeds(tiny_model(name).model.embed_tokens.weight, layout, 2, 0)
    pipeline.prefill(embeds, max_new_tokens=4)
    schedule = pipeline.schedule
    capacities = [key.shape[2] for key, _ in pipeline.kv.buffers]
    assert capacities == [n + 4 for n in schedule.tokens]  # N + T before K, |T_l| + T after
    addresses = [key.data_ptr() for key, _ in pipeline.kv.buffers]
    before = [key.clone() for key, _ in pipeline.kv.buffers]
    for _ in range(3):
        pipeline.decode(torch.tensor([1, 2], device=pipeline.device))
    assert [key.data_ptr() for key, _ in pipeline.kv.buffers] == addresses
    for layer, (key, _) in enumerate(pipeline.kv.buffers):
        n = schedule.tokens[layer]
        assert torch.equal(key[:, :, :n], before[layer][:, :, :n])  # the past is untouched
        assert pipeline.kv[layer].length == n + 3
        assert key[:, :, n:n + 3].abs().sum() > 0  # the 3 decoded tokens were appended
    pipeline.decode(torch.tensor([1, 2]))
    with pytest.raises(FastAVError, match="KV buffers are full"):
        pipeline.decode(torch.tensor([1, 2], device=pipeline.device))


def test_requests_the_engine_cannot_serve_are_refused(engine, backend):
    name = "videollama2-tiny"
    positional_only = engine(name, rollout=False)
    engine = engine(name)
    layout = get_model_spec(name).default_layout()
    with pytest.raises(FastAVError, match="split the decoder at layer 3"):
        open_engine_backend(engine, layout, replace(_config(name, "positional"), global_layer=2), backend)
    too_long = TokenLayout((Segment("text", 100), Segment("video", 40)))
    with pytest.raises(FastAVError, match="built for at most 128"):
        open_engine_backend(engine, too_long, _config(name, "positional"), backend)
    pipeline = open_engine_backend(engine, layout, _config(name, "positional"), backend)
    with pytest.raises(FastAVError, match="layout covers 72 tokens"):
        pipeline.prefill(torch.zeros(1, 70, 64))
    with pytest.raises(FastAVError, match="exceed the engine's limit of 20"):
        pipeline.prefill(torch.zeros(1, 72, 64), max_new_tokens=21)
    with pytest.raises(FastAVError, match="built without rollout"):
        open_engine_backend(positional_only, layout, _config(name, "rollout"), backend)
