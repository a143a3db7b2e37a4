"""The exported graphs: checker, names, shapes, and fp16/bf16 typing and accuracy."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import pytest
import torch

from fastav_export.contract import graph_io
from fastav_export.contract.synthetic_inputs import synthetic_embeds
from fastav_export.engine.manifest import OrtSection
from fastav_export.errors import FastAVError
from fastav_export.models import get_model_spec
from fastav_export.reference.torch_reference import TorchReference
from fastav_export.runtime.ort.graphs import OrtPipeline
from fastav_export.testing.models import tiny_model

FP16_LOGITS_ATOL = 1e-2  # fp16 engine vs the fp32 reference; `python benchmarks/fp16_accuracy.py` prints the measured
ELEM = {"fp32": onnx.TensorProto.FLOAT, "fp16": onnx.TensorProto.FLOAT16, "bf16": onnx.TensorProto.BFLOAT16}


def _graphs(manifest):
    return {name: onnx.load(str(manifest.file(entry.onnx)), load_external_data=False)
            for name, entry in manifest.graphs.items()}


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_graphs_pass_the_full_checker_with_the_declared_io(tiny_engine, precision):
    manifest = tiny_engine("videollama2-tiny", precision, export_only=precision == "bf16")
    L, K = manifest.dims.num_layers, manifest.global_layer
    assert set(manifest.graphs) == {graph_io.EMBED, graph_io.PRE, *(graph_io.post(layer) for layer in range(K, L))}
    for name, model in _graphs(manifest).items():
        path = str(manifest.file(manifest.graphs[name].onnx))
        onnx.checker.check_model(path, full_check=True)
        entry = manifest.graphs[name]
        assert [i.name for i in model.graph.input] == entry.inputs
        assert [o.name for o in model.graph.output] == entry.outputs
        assert model.opset_import[0].version >= 23
        assert all(node.name.startswith(f"{name}/") for node in model.graph.node)  # stable, unique names
        assert len(model.graph.value_info) > 0  # intermediate shapes inferred
        # weights live in the external data file, in the exported precision
        weights = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
        assert weights and {t.data_type for t in weights} == {ELEM[precision]}
        # parameters the optimiser did not fold keep their checkpoint names (the fused q/k/v: qkv_proj)
        assert any(t.name.startswith(("model.", "lm_head.")) for t in model.graph.initializer)
        named = ("model.", "lm_head.", "val_", "rotary.")
        assert all(t.name.startswith(named) or t.data_location != onnx.TensorProto.EXTERNAL
                   for t in model.graph.initializer)


def test_post_graphs_serve_prefill_and_decode_shapes(tiny_engine):
    manifest = tiny_engine("videollama2-tiny")
    model = onnx.load(str(manifest.file(manifest.graphs["post_3"].onnx)), load_external_data=False)
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    assert dims["hidden_states"] == ["batch", "new_tokens", 64]
    assert dims["past_key_values.3.key"] == ["batch", 2, "past_tokens", 16]
    assert dims["past_length"] == ["batch"]  # one past length per row of the batch


def test_fp16_norm_statistics_and_scores_run_in_fp32(tiny_engine):
    manifest = tiny_engine("videollama2-tiny", "fp16")
    model = onnx.load(str(manifest.file(manifest.graphs["post_3"].onnx)), load_external_data=False)
    inferred = {v.name: v.type.tensor_type.elem_type for v in model.graph.value_info}
    softmax = [n for n in model.graph.node if n.op_type == "Softmax"]  # the last-query score
    assert softmax and all(inferred[n.output[0]] == onnx.TensorProto.FLOAT for n in softmax)
    norms = [n for n in model.graph.node if n.op_type == "RMSNormalization"]
    stash = [onnx.helper.get_attribute_value(a) for n in norms for a in n.attribute if a.name == "stash_type"]
    assert norms and all(value == onnx.TensorProto.FLOAT for value in stash)  # default: statistics in fp32


@pytest.mark.parametrize("policy", ["positional", "rollout"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fp16_engine_agrees_with_the_fp32_reference(tiny_engine, policy, seed):
    """Teacher-forced over 8 steps: logits within FP16_LOGITS_ATOL at every step, the
    same greedy token wherever the reference's top-2 margin exceeds fp16 noise, and
    the same kept token sets."""
    name = "videollama2-tiny"
    spec = get_model_spec(name)
    layout = spec.default_layout()
    config = replace(spec.preset, global_policy=policy).resolve(spec.dims.num_layers)
    model = tiny_model(name)
    embeds = synthetic_embeds(model.model.embed_tokens.weight, layout, 2, seed)
    reference, engine = TorchReference(model, layout, config), OrtPipeline(tiny_engine(name, "fp16"), layout, config)
    expected, got = reference.prefill(embeds, max_new_tokens=8), engine.prefill(embeds, max_new_tokens=8)
    assert {k: v.tolist() for k, v in got.kept.items()} == {k: v.tolist() for k, v in expected.kept.items()}
    ref_logits, fp16_logits = expected.logits, got.logits
    for step in range(8):
        np.testing.assert_allclose(fp16_logits.numpy(), ref_logits.numpy(), atol=FP16_LOGITS_ATOL, rtol=0)
        top2 = ref_logits.topk(2, dim=-1).values
        clear = (top2[:, 0] - top2[:, 1]) > 2 * FP16_LOGITS_ATOL
        assert torch.equal(fp16_logits.argmax(-1)[clear], ref_logits.argmax(-1)[clear])
        forced = ref_logits.argmax(-1)
        ref_logits, fp16_logits = reference.decode(forced), engine.decode(forced)


def test_bf16_graphs_are_refused_by_onnx_runtime_cpu_with_one_line(tiny_engine):
    manifest = tiny_engine("videollama2-tiny", "bf16", export_only=True)
    layout = get_model_spec("videollama2-tiny").default_layout()
    with pytest.raises(FastAVError, match="was not built for ONNX Runtime"):
        OrtPipeline(manifest, layout, manifest.pruning)
    manifest.backends = {"ort": OrtSection()}
    with pytest.raises(FastAVError, match="cannot run bf16 engines"):
        OrtPipeline(manifest, layout, manifest.pruning)


def _symbolic_token_axes(value) -> int:
    """Axes of a value whose size is a free dimension other than the batch."""
    dims = value.type.tensor_type.shape.dim
    return sum(1 for d in dims if d.dim_param and d.dim_param != "batch" and not d.dim_value)


# (model, flavour, backend): both flavours on ONNX Runtime, and what `build --backend trt --export-only`
# writes for TensorRT (onnx-standard) of the M-RoPE decoder (Qwen2.5-Omni's thinker, [3, B, N] positions).
FUSED_ATTENTION_CASES = [
    pytest.param("videollama2-tiny", "ort-contrib", "ort", id="ort-contrib"),
    pytest.param("videollama2-tiny", "onnx-standard", "ort", id="onnx-standard"),
    pytest.param("qwen2.5-omni-tiny", "onnx-standard", "trt", id="qwen2.5-omni-trt-export-only"),
]


@pytest.mark.parametrize("model_name, flavour, backend", FUSED_ATTENTION_CASES)
def test_attention_is_one_fused_op_and_no_probability_map_is_materialised(tiny_engine, model_name, flavour, backend):
    manifest = tiny_engine(model_name, flavour=flavour, backend=backend, export_only=backend == "trt")
    K, L = manifest.global_layer, manifest.dims.num_layers
    fused = "GroupQueryAttention" if flavour == "ort-contrib" else "Attention"
    for name, model in _graphs(manifest).items():
        if name == graph_io.EMBED:
            continue
        model = onnx.shape_inference.infer_shapes(model)
        layers = K if name == graph_io.PRE else 1
        attention = [n for n in model.graph.node if n.op_type in ("GroupQueryAttention", "Attention")]
        assert [n.op_type for n in attention] == [fused] * layers, name
        if flavour == "onnx-standard":  # TensorRT imports single-output Attention nodes only
            assert all(len(n.output) == 1 for n in attention)
        # the only Softmax outside the fused op: the last query's row per head, [B, Hkv, G, q]
        values = {v.name: v for v in (*model.graph.value_info, *model.graph.output)}
        for node in (n for n in model.graph.node if n.op_type == "Softmax"):
            assert _symbolic_token_axes(values[node.output[0]]) == 1, f"{name}: {node.name}"
        if name == graph_io.PRE:  # rollout: one blockwise step per layer, no N x N map in the graph
            assert sum(n.op_type == "RolloutStep" for n in model.graph.node) == K
            assert {f.name for f in model.functions} == {"TopKGather", "RolloutStep"}
        elif name != graph_io.post(L - 1):
            assert [n.op_type for n in model.graph.node if n.domain == "fastav"] == ["TopKGather"]
