"""TopKGather: the selection op at every cut, as an ONNX function and in numpy.

    TopKGather(scores [B, N] fp32, hidden_states [B, N, D], position_ids [B, N] int64,
               candidates [B, C] int64, protected [B, M] int64, keep [k] int64)
      -> kept_index [B, M + k] int64 (ascending), hidden_states [B, M + k, D],
         position_ids [B, M + k]

Keeps every `protected` token plus the k `candidates` with the largest scores; tokens
listed in neither input are dropped (how a static positional cut is expressed). On a
tie the lower index wins, which is the contract's rule for both cuts (the global cut
keeps the lower position; the fine cut drops the higher position first). ONNX TopK
breaks ties the same way.

k is the *length* of `keep` (its values are ignored): the count then comes from
shapes, which the runtime computes from the layout and the pruning schedule, so every
output shape is a shape expression and never depends on data. TensorRT needs that to
replace the node by the `TopKGather` plugin (domain/namespace `fastav`, version 1):
the node carries `plugin_namespace` and `plugin_version` for its ONNX parser, while
ONNX Runtime and `onnx.reference` run the model-local function body.

The op sits inside the pre graph (the global cut) and every post graph but the last
(the fine cut), where it picks the rows that the rest of the layer computes;
`topk_gather_model` wraps it alone, to test the function and the plugin.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..contract.graph_io import TOPK_INPUTS, TOPK_OUTPUTS

DOMAIN = "fastav"
OP_TYPE = "TopKGather"
PLUGIN_VERSION = "1"
PLUGIN_NAMESPACE = "fastav"
OPSET = 23  # the standard Attention op needs 23; every graph and function uses one opset
INPUTS, OUTPUTS = TOPK_INPUTS, TOPK_OUTPUTS


def topk_gather_reference(scores, hidden, positions, candidates, protected, k: int):
    """numpy reference with the same contract: (kept_index, hidden, positions)."""
    batch = scores.shape[0]
    kept = []
    for row in range(batch):
        cand = candidates[row]
        # Stable order: largest score first, lower index first among equal scores.
        order = np.lexsort((cand, -scores[row, cand].astype(np.float64)))
        kept.append(np.sort(np.concatenate([protected[row], cand[order[:k]]])))
    index = np.stack(kept).astype(np.int64) if batch else np.zeros((0, 0), np.int64)
    rows = np.arange(batch)[:, None]
    return index, hidden[rows, index], positions[rows, index]


def topk_gather_function() -> onnx.FunctionProto:
    nodes = [
        helper.make_node("Shape", ["keep"], ["k"]),
        # TopK breaks ties by slot; sorting the candidates first makes that the token index,
        # the contract's rule, whatever order a caller lists them in (the plugin's kernel
        # compares token indices directly).
        helper.make_node("Shape", ["candidates"], ["candidate_count"], start=1, end=2),
        helper.make_node("TopK", ["candidates", "candidate_count"], ["sorted_candidates", "candidate_slots"],
                         axis=1, largest=0, sorted=1),
        helper.make_node("GatherElements", ["scores", "sorted_candidates"], ["candidate_scores"], axis=1),
        helper.make_node("TopK", ["candidate_scores", "k"], ["top_values", "top_slots"], axis=1, largest=1, sorted=1),
        helper.make_node("GatherElements", ["sorted_candidates", "top_slots"], ["chosen"], axis=1),
        helper.make_node("Concat", ["protected", "chosen"], ["merged"], axis=1),
        # Restore the original order: sort the merged indices ascending.
        helper.make_node("Shape", ["merged"], ["kept_count"], start=1, end=2),
        helper.make_node("TopK", ["merged", "kept_count"], ["kept_index", "sort_slots"], axis=1, largest=0, sorted=1),
        helper.make_node("GatherElements", ["position_ids", "kept_index"], ["kept_position_ids"], axis=1),
        # Rows of hidden_states through one flat Gather: index b * N + i into [B * N, D].
        helper.make_node("Shape", ["hidden_states"], ["batch"], start=0, end=1),
        helper.make_node("Shape", ["hidden_states"], ["tokens"], start=1, end=2),
        helper.make_node("Shape", ["hidden_states"], ["width"], start=2, end=3),
        helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("zero", TensorProto.INT64, [], [0])),
        helper.make_node("Constant", [], ["one"], value=helper.make_tensor("one", TensorProto.INT64, [], [1])),
        helper.make_node("Constant", [], ["minus_one"], value=helper.make_tensor("minus_one", TensorProto.INT64, [1], [-1])),
        helper.make_node("Squeeze", ["batch"], ["batch_scalar"]),
        helper.make_node("Range", ["zero", "batch_scalar", "one"], ["rows"]),
        helper.make_node("Mul", ["rows", "tokens"], ["row_offsets"]),
        helper.make_node("Unsqueeze", ["row_offsets", "one"], ["row_offsets_2d"]),
        helper.make_node("Add", ["kept_index", "row_offsets_2d"], ["flat_index"]),
        helper.make_node("Concat", ["minus_one", "width"], ["flat_shape"], axis=0),
        helper.make_node("Reshape", ["hidden_states", "flat_shape"], ["flat_hidden"]),
        helper.make_node("Gather", ["flat_hidden", "flat_index"], ["kept_hidden_states"], axis=0),
    ]
    return helper.make_function(
        DOMAIN, OP_TYPE, list(INPUTS), list(OUTPUTS), nodes,
        opset_imports=[helper.make_opsetid("", OPSET)],
        attributes=["plugin_namespace", "plugin_version"],
    )


def topk_gather_node(inputs, outputs, name: str = "topk_gather") -> onnx.NodeProto:
    """The call node; `inputs`/`outputs` are the six and three tensor names in order."""
    return helper.make_node(OP_TYPE, list(inputs), list(outputs), name=name, domain=DOMAIN,
                            plugin_namespace=PLUGIN_NAMESPACE, plugin_version=PLUGIN_VERSION)


def topk_gather_model(hidden_size: int, hidden_type: int = TensorProto.FLOAT) -> onnx.ModelProto:
    """A model of one TopKGather node (the graph the runtime runs between layers)."""
    def value(name, elem, shape):
        return helper.make_tensor_value_info(name, elem, shape)

    inputs = [
        value("scores", TensorProto.FLOAT, ["batch", "tokens"]),
        value("hidden_states", hidden_type, ["batch", "tokens", hidden_size]),
        value("position_ids", TensorProto.INT64, ["batch", "tokens"]),
        value("candidates", TensorProto.INT64, ["batch", "candidates"]),
        value("protected", TensorProto.INT64, ["batch", "protected"]),
        value("keep", TensorProto.INT64, ["keep"]),
    ]
    outputs = [
        value("kept_index", TensorProto.INT64, ["batch", "kept"]),
        value("kept_hidden_states", hidden_type, ["batch", "kept", hidden_size]),
        value("kept_position_ids", TensorProto.INT64, ["batch", "kept"]),
    ]
    graph = helper.make_graph([topk_gather_node(INPUTS, OUTPUTS)], "topk_gather", inputs, outputs)
    model = helper.make_model(
        graph, functions=[topk_gather_function()], producer_name="fastav-export",
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(DOMAIN, 1)],
    )
    model.ir_version = 10
    return model
