"""Quantized linear weights: which nodes each flavour's graphs hold, and what stays at the graph precision."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from fastav_export.contract import graph_io

# Every decoder layer has 5 linear layers (fused QKV, output, gate, up and down projections).
LINEARS_PER_LAYER = 5


def _graph(manifest, name):
    return onnx.load(str(manifest.file(manifest.graphs[name].onnx)), load_external_data=False)


def _ops(model) -> list[tuple[str, str]]:
    return [(node.domain, node.op_type) for node in model.graph.node]


@pytest.mark.parametrize("weights", ["int4", "int8"])
def test_ort_contrib_graphs_hold_matmulnbits_for_every_linear_layer_but_the_lm_head(tiny_engine, weights):
    manifest = tiny_engine("videollama2-tiny", weights=weights)
    assert manifest.weights.kind == weights and manifest.weights.op == "MatMulNBits"
    layers = manifest.dims.num_layers
    counts = {}
    for name in manifest.graphs:
        model = _graph(manifest, name)
        nbits = [node for node in model.graph.node if node.op_type == "MatMulNBits"]
        assert all(helper.get_attribute_value(a) == (4 if weights == "int4" else 8)
                   for node in nbits for a in node.attribute if a.name == "bits")
        assert all(node.domain == "com.microsoft" for node in nbits)
        counts[name] = len(nbits)
    assert counts[graph_io.EMBED] == 0  # the embedding table is never quantized
    assert sum(counts.values()) == LINEARS_PER_LAYER * layers
    final = _graph(manifest, graph_io.post(layers - 1))
    assert [op for _, op in _ops(final)].count("Gemm") == 1  # the lm_head, at the graph precision


def test_onnx_standard_int4_graphs_hold_blocked_dequantize_linear_and_no_contrib_ops(tiny_engine):
    manifest = tiny_engine("video-salmonn2-tiny", flavour="onnx-standard", weights="int4")
    assert manifest.weights.op == "DequantizeLinear"
    total = 0
    for name in manifest.graphs:
        model = _graph(manifest, name)
        assert not any(domain == "com.microsoft" for domain, _ in _ops(model)), name
        weights = {init.name: init for init in model.graph.initializer}
        for node in model.graph.node:
            if node.op_type != "DequantizeLinear":
                continue
            total += 1
            attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            assert attributes["block_size"] == manifest.weights.block_size and attributes.get("axis", 1) == 0
            assert weights[node.input[0]].data_type == TensorProto.INT4  # signed: symmetric, no zero point
            assert len(node.input) == 2
    assert total == LINEARS_PER_LAYER * manifest.dims.num_layers
    assert max(opset.version for opset in _graph(manifest, graph_io.PRE).opset_import if opset.domain == "") >= 21


def test_quantize_lm_head_turns_the_lm_head_into_a_quantized_matmul(tiny_engine, tmp_path):
    import shutil

    from fastav_export.contract.weights import WeightQuantization
    from fastav_export.export.weight_quantization import quantize_graph

    manifest = tiny_engine("videollama2-tiny")
    source = manifest.file(manifest.graphs[graph_io.post(manifest.dims.num_layers - 1)].onnx)
    final = tmp_path / source.name
    for path in (source, source.with_name(source.name + ".data")):
        shutil.copy(path, tmp_path / path.name)
    count = quantize_graph(final, WeightQuantization("int4", "ort-contrib", lm_head=True))
    model = onnx.load(str(final), load_external_data=False)
    assert count == LINEARS_PER_LAYER + 1
    assert "Gemm" not in [op for _, op in _ops(model)]


def test_fp16_trt_flavour_int4_graphs_keep_fp16_scales_and_activations(tiny_engine):
    """What a TensorRT build takes: an fp16 onnx-standard export with int4 weights (export only: ONNX
    Runtime's CPU provider is not what runs it)."""
    manifest = tiny_engine("videollama2-tiny", precision="fp16", flavour="onnx-standard", export_only=True,
                           backend="trt", weights="int4")
    model = _graph(manifest, graph_io.PRE)
    weights = {init.name: init for init in model.graph.initializer}
    scales = [weights[node.input[1]] for node in model.graph.node if node.op_type == "DequantizeLinear"]
    assert scales and all(scale.data_type == TensorProto.FLOAT16 for scale in scales)
    assert not any(domain == "com.microsoft" for domain, _ in _ops(model))


def test_quantizing_leaves_the_root_logger_as_it_was(tiny_engine, tmp_path):
    """ONNX Runtime's quantizer module configures the root logger when imported; a build must not keep that."""
    import logging
    import shutil

    from fastav_export.contract.weights import WeightQuantization
    from fastav_export.export.weight_quantization import quantize_graph

    manifest = tiny_engine("videollama2-tiny")
    source = manifest.file(manifest.graphs[graph_io.PRE].onnx)
    for path in (source, source.with_name(source.name + ".data")):
        shutil.copy(path, tmp_path / path.name)
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    quantize_graph(tmp_path / source.name, WeightQuantization("int8", "ort-contrib"))
    assert (list(root.handlers), root.level) == before
