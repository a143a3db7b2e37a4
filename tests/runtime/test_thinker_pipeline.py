"""Qwen2.5-Omni's thinker decoder (M-RoPE) through exported graphs and the runtime pipeline.

The tiny thinker's engine, in both graph flavours, reproduces the PyTorch reference with the
TMRoPE positions transformers' `get_rope_index` gives a prompt with interleaved video and
audio: the same kept tokens at every layer, logits within LOGITS_ATOL, the same greedy tokens,
and every cut returns the kept tokens' original three position rows.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from fastav_export.contract.positions import take_positions
from fastav_export.contract.pruning_config import PruningConfig
from fastav_export.contract.synthetic_inputs import synthetic_embeds
from fastav_export.engine.build import build_engine
from fastav_export.errors import FastAVError
from fastav_export.models.families.qwen2_5_omni.thinker import ThinkerDecoder, tiny_thinker
from fastav_export.reference.torch_reference import TorchReference
from fastav_export.runtime.generation import greedy_steps
from fastav_export.runtime.ort.graphs import OrtPipeline
from tests.thinker_prompts import thinker_prompt

pytestmark = pytest.mark.slow  # exports and builds the tiny thinker's engine
# The ort-contrib flavour's M-RoPE path is what `build` writes by default: the family's media engine runs it
# against the torch reference and transformers (tests/models/families/qwen2_5_omni/), so one build here.
FLAVOURS = ["onnx-standard"]

LOGITS_ATOL = 1e-4  # fp32 engines vs the fp32 PyTorch reference (as for the Qwen2 families)
NEW_TOKENS = 5
K = 3  # of the tiny thinker's 6 layers
CONFIGS = {
    "positional": PruningConfig(global_policy="positional", global_layer=K, cutoff=20, keep_audio=6, fine_ratio=0.3),
    "rollout": PruningConfig(global_policy="rollout", global_layer=K, global_budget=0.4, fine_ratio=0.3),
}


@functools.cache
def _thinker():
    thinker = tiny_thinker(0)
    return thinker, ThinkerDecoder(thinker)


@pytest.fixture(scope="module")
def thinker_engine(tmp_path_factory):
    """thinker_engine(flavour) -> the tiny thinker's fp32 ONNX Runtime engine (rollout graphs), built once."""
    built = {}

    def make(flavour: str):
        if flavour not in built:
            thinker, decoder = _thinker()
            layout = thinker_prompt(thinker).layout
            built[flavour] = build_engine(
                decoder, model_name="qwen2.5-omni-thinker-tiny", source={"kind": "random", "seed": 0},
                dims=decoder.dims, precision="fp32", layout=layout, config=CONFIGS["rollout"].resolve(6),
                max_tokens=128, max_new_tokens=8, out=tmp_path_factory.mktemp("thinker") / flavour,
                backend="ort", max_batch=2, flavour=flavour)
        return built[flavour]

    return make


def _recording_cuts(pipeline) -> dict[str, torch.Tensor]:
    """Record each prefill graph's kept_position_ids (graph name -> copy) as the pipeline runs."""
    recorded, run = {}, pipeline.graphs.run

    def recording_run(graph, inputs, outputs):
        run(graph, inputs, outputs)
        if "kept_position_ids" in outputs:
            recorded[graph] = outputs["kept_position_ids"].clone()

    pipeline.graphs.run = recording_run
    return recorded


def _greedy(backend, embeds, positions):
    out = backend.prefill(embeds, max_new_tokens=NEW_TOKENS, position_ids=positions)
    tokens = torch.stack(list(greedy_steps(backend, out, NEW_TOKENS)), dim=1)
    return out, tokens


@pytest.mark.parametrize("policy", CONFIGS)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_thinker_engine_matches_the_reference_with_tmrope_positions(thinker_engine, flavour, policy):
    thinker, decoder = _thinker()
    prompt = thinker_prompt(thinker, batch=2, seed=1)
    config = CONFIGS[policy].resolve(6)
    embeds = synthetic_embeds(decoder.model.embed_tokens.weight, prompt.layout, 2, seed=1)
    manifest = thinker_engine(flavour)
    assert manifest.dims.mrope_section == (2, 3, 3)

    expected, expected_tokens = _greedy(TorchReference(decoder, prompt.layout, config), embeds, prompt.position_ids)
    pipeline = OrtPipeline(manifest, prompt.layout, config)
    cuts = _recording_cuts(pipeline)
    got, got_tokens = _greedy(pipeline, embeds, prompt.position_ids)

    assert {l: k.tolist() for l, k in got.kept.items()} == {l: k.tolist() for l, k in expected.kept.items()}
    assert len(got.kept[K][0]) < prompt.layout.n_tokens and len(got.kept[K + 1][0]) < len(got.kept[K][0])
    np.testing.assert_allclose(got.logits.numpy(), expected.logits.numpy(), atol=LOGITS_ATOL, rtol=0)
    assert torch.equal(got_tokens, expected_tokens)
    # Each cut returns the kept tokens' original rows: pre's cut gives layer K's tokens, post_l's layer l+1's.
    for graph, layer in [("pre", K), *((f"post_{l}", l + 1) for l in range(K, 5))]:
        assert cuts[graph].shape[0] == 3
        assert torch.equal(cuts[graph], take_positions(prompt.position_ids, got.kept[layer])), graph


def test_thinker_engine_decodes_where_transformers_continues(thinker_engine):
    """Unpruned, the engine's greedy tokens and logits equal the thinker's own forward with the
    generated tokens at cache position + rope_deltas."""
    thinker, decoder = _thinker()
    prompt = thinker_prompt(thinker, batch=1, seed=2)
    n = prompt.layout.n_tokens
    embeds = synthetic_embeds(decoder.model.embed_tokens.weight, prompt.layout, 1, seed=2)
    pipeline = OrtPipeline(thinker_engine("ort-contrib"), prompt.layout, PruningConfig.dense().resolve(6))  # K = 6 // 2
    out = pipeline.prefill(embeds, max_new_tokens=NEW_TOKENS, position_ids=prompt.position_ids)
    logits, tokens = out.logits, []
    for step in range(NEW_TOKENS):
        generated = (torch.arange(n, n + step) + prompt.rope_deltas).expand(3, -1, -1)
        generated_embeds = decoder.model.embed_tokens(torch.tensor([tokens], dtype=torch.int64)).detach()
        sequence = torch.cat([embeds, generated_embeds], dim=1)
        with torch.no_grad():
            expected = decoder(inputs_embeds=sequence,
                               position_ids=torch.cat([prompt.position_ids, generated], dim=2))[:, -1]
        np.testing.assert_allclose(logits.numpy(), expected.numpy(), atol=LOGITS_ATOL, rtol=0)
        tokens.append(int(logits.argmax(-1)))
        logits = pipeline.decode(torch.tensor(tokens[-1:]))


def test_one_row_positions_are_refused_by_an_mrope_engine(thinker_engine):
    thinker, decoder = _thinker()
    prompt = thinker_prompt(thinker)
    config = CONFIGS["positional"].resolve(6)
    pipeline = OrtPipeline(thinker_engine("ort-contrib"), prompt.layout, config)
    embeds = torch.zeros(1, prompt.layout.n_tokens, decoder.config.hidden_size)
    with pytest.raises(FastAVError, match=r"position_ids are .* expected integers \[3, B, N\]"):
        pipeline.prefill(embeds, position_ids=prompt.position_ids[0])


def _shape(value) -> list:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_thinker_graphs_take_and_return_three_position_rows(thinker_engine, flavour):
    """Same I/O names as the Qwen2 graphs; position ids gain the rows axis; one TopKGather per cut, as before."""
    import onnx

    manifest = thinker_engine(flavour)
    for name in ["pre", *(f"post_{l}" for l in range(K, 6))]:
        model = onnx.load(str(manifest.file(manifest.graphs[name].onnx)), load_external_data=False)
        inputs = {i.name: i for i in model.graph.input}
        outputs = {o.name: o for o in model.graph.output}
        assert [i.name for i in model.graph.input] == manifest.graphs[name].inputs
        assert _shape(inputs["position_ids"])[:2] == [3, "batch"]
        topk = [n for n in model.graph.node if n.op_type == "TopKGather"]
        if name == "post_5":  # the last layer: logits, no cut
            assert not topk and "kept_position_ids" not in outputs
            continue
        assert len(topk) == 1 and _shape(outputs["kept_position_ids"])[:2] == [3, "batch"]
