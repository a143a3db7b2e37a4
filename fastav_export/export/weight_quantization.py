"""Quantize an exported graph's linear-layer weights in place (contract/weights.py says what and why).

ONNX Runtime's own quantizer (`onnxruntime.quantization.matmul_nbits_quantizer`) does the work:
round-to-nearest, symmetric, per block, written as MatMulNBits (ort-contrib) or as an int4
DequantizeLinear in front of the MatMul (onnx-standard, QDQ). It quantizes MatMul nodes whose
second input is a constant, which in FastAV's graphs are exactly the linear layers: attention,
scoring and rollout multiply activations only. The exporter writes the lm_head as a Gemm (its
input is 2-D); with `lm_head` it is turned into the equivalent MatMul first, so the quantizer
takes it too.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..contract.weights import WeightQuantization

LM_HEAD_SCOPE = "lm_head"  # the name scope torch.onnx records on the lm_head's node


def quantize_graph(path: Path, quantization: WeightQuantization) -> int:
    """Rewrite the graph at `path` (weights in `<file>.data` beside it) with quantized linear
    weights; returns how many MatMuls were quantized."""
    import onnx
    from onnxruntime.quantization import QuantFormat

    MatMulNBitsQuantizer = _quantizer_class()  # noqa: N806
    model = onnx.load(str(path))
    heads = [node for node in model.graph.node if _scope(node) == LM_HEAD_SCOPE]
    if quantization.lm_head:
        for node in heads:
            _gemm_to_matmul(model.graph, node)
    ort_contrib = quantization.op == "MatMulNBits"
    quantizer = MatMulNBitsQuantizer(
        model, bits=quantization.bits, block_size=quantization.block_size, is_symmetric=True,
        accuracy_level=quantization.accuracy_level if ort_contrib and quantization.accuracy_level else None,
        nodes_to_exclude=[] if quantization.lm_head else [node.name for node in heads],
        quant_format=QuantFormat.QOperator if ort_contrib else QuantFormat.QDQ)
    logger = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level = logger.level
    logger.setLevel(logging.WARNING)  # it logs every node at INFO
    try:
        quantizer.process()
    finally:
        logger.setLevel(level)
    quantized = quantizer.model.model
    count = sum(node.op_type == "MatMulNBits" or (node.op_type == "DequantizeLinear" and not ort_contrib)
                for node in quantized.graph.node)
    data = path.with_name(path.name + ".data")
    data.unlink()
    onnx.save(quantized, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location=data.name)
    return count


def _quantizer_class():
    """MatMulNBitsQuantizer, imported without the root-logger setup its module does on import
    (`logging.basicConfig(level=INFO)`, which would print every library's INFO lines from then on)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(level)
    return MatMulNBitsQuantizer


def _scope(node) -> str | None:
    """The innermost torch module scope of a node (from torch.onnx's metadata), if recorded."""
    import json

    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            scopes = json.loads(prop.value.replace("'", '"'))
            return scopes[1] if len(scopes) > 1 else None
    return None


def _gemm_to_matmul(graph, node) -> None:
    """Gemm(x, W, transB=1) with no bias -> MatMul(x, W^T): the same product in the form the quantizer takes."""
    from onnx import helper, numpy_helper

    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    weights = {init.name: init for init in graph.initializer}
    if (node.op_type != "Gemm" or len(node.input) != 2 or attributes.get("transA", 0)
            or attributes.get("alpha", 1.0) != 1.0 or node.input[1] not in weights):
        raise ValueError(f"{node.name}: expected a bias-free Gemm over a constant weight for the lm_head")
    weight = numpy_helper.to_array(weights[node.input[1]])
    if attributes.get("transB", 0):
        weight = weight.T
    transposed = numpy_helper.from_array(np.ascontiguousarray(weight), node.input[1] + ".T")
    graph.initializer.append(transposed)
    graph.initializer.remove(weights[node.input[1]])
    node.op_type = "MatMul"
    del node.attribute[:]
    node.input[1] = transposed.name
