"""fastav::RolloutStep as a model-local ONNX function: one backward step of the rollout chain.

    RolloutStep(vector [B, N] fp32, query [B, N, H*hd], key [B, N, Hkv*hd], alpha [] fp32, enabled [] bool)
      attributes num_heads, kv_heads, scale, block
      -> alpha * v^T A + (1 - alpha) * v      [B, N] fp32   (v itself when not enabled)

A = the head-mean causal attention map of the layer, softmax(q k^T * scale) averaged
over the H query heads (GQA: each query head against its KV head). The body never
holds A or a full [.., N, N] score tensor: a Loop walks the query rows in blocks of
`block`, scores each block only against the keys it can see (keys up to the block's
last row, so causality halves the work), and adds the block's v-weighted column sums
to an [B, N] accumulator. Per block the largest tensor is [B, H, block, N]. This is
the dV computation of a FlashAttention backward pass with a one-column dO.

Everything is computed in fp32 whatever the graph's precision.
"""

from __future__ import annotations

import onnx
from onnx import AttributeProto, TensorProto, helper

from .custom_ops import FASTAV_DOMAIN

OP_TYPE = "RolloutStep"
DEFAULT_BLOCK = 64  # query rows per block: the fastest of 16..1024 on ONNX Runtime's CPU at N = 2,892
# (`python benchmarks/prefill_kernels.py`)


def _attr_constant(output: str, attribute: str, kind: int) -> onnx.NodeProto:
    """Constant whose value is the function attribute `attribute` (INT or FLOAT)."""
    node = helper.make_node("Constant", [], [output])
    field = "value_int" if kind == AttributeProto.INT else "value_float"
    node.attribute.append(AttributeProto(name=field, ref_attr_name=attribute, type=kind))
    return node


def _ints(name: str, values) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, TensorProto.INT64, [len(values)],
                                                                             values))


def _scalar(name: str, value, elem=TensorProto.INT64) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, elem, [], [value]))


def _loop_body() -> onnx.GraphProto:
    """One block of query rows [start, end): adds its v-weighted column sums to the accumulator.

    Outer-scope values: q5 [B, Hkv, G, N, hd] (queries times the softmax scale), kt [B, Hkv, hd, N],
    vector, block, tokens, zero, one, neg_inf, zero_f.
    """
    n = helper.make_node
    nodes = [
        n("Mul", ["i", "block"], ["start"]),
        n("Add", ["start", "block"], ["block_end"]),
        n("Min", ["block_end", "tokens"], ["end"]),
        _ints("row_axis", [0]),
        n("Unsqueeze", ["start", "row_axis"], ["start1"]),
        n("Unsqueeze", ["end", "row_axis"], ["end1"]),
        _ints("zero1", [0]),
        _ints("axis3", [3]),
        _ints("axis_last", [-1]),
        _ints("axis1", [1]),
        # queries of the block, the G heads of each KV head stacked into one GEMM: [B, Hkv, G*nb, hd]
        n("Slice", ["q5", "start1", "end1", "axis3"], ["q_block"]),
        n("Shape", ["q_block"], ["q_block_shape"]),
        _ints("merged_shape", [0, 0, -1]),
        n("Shape", ["q5"], ["q5_shape"], start=4, end=5),
        n("Concat", ["merged_shape", "q5_shape"], ["q_merged_shape"], axis=0),
        n("Reshape", ["q_block", "q_merged_shape"], ["q_merged"]),
        # keys the block can see: [B, Hkv, hd, end]
        n("Slice", ["kt", "zero1", "end1", "axis_last"], ["k_visible"]),
        n("MatMul", ["q_merged", "k_visible"], ["scaled"]),  # q5 is pre-scaled
        n("Shape", ["scaled"], ["scaled_tail"], start=3, end=4),
        _ints("four1", [4]),
        n("Slice", ["q_block_shape", "zero1", "four1"], ["q_block_lead"]),
        n("Concat", ["q_block_lead", "scaled_tail"], ["scores_shape"], axis=0),
        n("Reshape", ["scaled", "scores_shape"], ["scores"]),  # [B, Hkv, G, nb, end]
        # causal: row start + r sees keys 0 .. start + r
        n("Range", ["start", "end", "one"], ["rows"]),
        n("Unsqueeze", ["rows", "axis1"], ["rows_col"]),
        n("Range", ["zero", "end", "one"], ["cols"]),
        n("Greater", ["cols", "rows_col"], ["blocked"]),
        n("Where", ["blocked", "neg_inf", "zero_f"], ["bias"]),
        n("Add", ["scores", "bias"], ["masked"]),
        n("Softmax", ["masked"], ["probs"], axis=-1),
        # v-weighted column sums of the block, summed over heads: [B, end]
        n("Slice", ["vector", "start1", "end1", "axis1"], ["weights"]),
        _ints("weights_shape", [0, 1, 1, 1, -1]),
        n("Reshape", ["weights", "weights_shape"], ["weights5"]),
        n("MatMul", ["weights5", "probs"], ["column_sums"]),  # [B, Hkv, G, 1, end]
        _ints("head_axes", [1, 2, 3]),
        n("ReduceSum", ["column_sums", "head_axes"], ["block_sum"], keepdims=0),
        n("Sub", ["tokens", "end"], ["missing"]),
        n("Unsqueeze", ["missing", "row_axis"], ["missing1"]),
        n("Concat", ["zero1", "zero1", "zero1", "missing1"], ["pads"], axis=0),
        n("Pad", ["block_sum", "pads"], ["padded"]),
        n("Add", ["acc_in", "padded"], ["acc_out"]),
        n("Identity", ["cond_in"], ["cond_out"]),
    ]
    return helper.make_graph(
        nodes, "rollout_block",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, None)],
    )


def _step_graph() -> list[onnx.NodeProto]:
    """The enabled branch: the blockwise step (outer-scope: the function's inputs and constants)."""
    n = helper.make_node
    return [
        _scalar("zero", 0), _scalar("one", 1),
        _scalar("neg_inf", float("-inf"), TensorProto.FLOAT), _scalar("zero_f", 0.0, TensorProto.FLOAT),
        _scalar("one_f", 1.0, TensorProto.FLOAT),
        n("Div", ["heads", "kv_heads"], ["groups"]),
        _ints("axis0", [0]),
        n("Unsqueeze", ["kv_heads", "axis0"], ["kv_heads1"]),
        n("Unsqueeze", ["groups", "axis0"], ["groups1"]),
        _ints("lead", [0, 0]), _ints("minus_one", [-1]),
        # q5 [B, Hkv, G, N, hd] and kt [B, Hkv, hd, N], in fp32
        n("Cast", ["query"], ["q32"], to=TensorProto.FLOAT),
        n("Concat", ["lead", "kv_heads1", "groups1", "minus_one"], ["q_shape"], axis=0),
        n("Reshape", ["q32", "q_shape"], ["q_split"]),
        n("Transpose", ["q_split"], ["q5_unscaled"], perm=[0, 2, 3, 1, 4]),
        n("Mul", ["q5_unscaled", "scale"], ["q5"]),  # scale the queries once, not every block's scores
        n("Cast", ["key"], ["k32"], to=TensorProto.FLOAT),
        n("Concat", ["lead", "kv_heads1", "minus_one"], ["k_shape"], axis=0),
        n("Reshape", ["k32", "k_shape"], ["k_split"]),
        n("Transpose", ["k_split"], ["kt"], perm=[0, 2, 3, 1]),
        # ceil(N / block) blocks of query rows
        n("Shape", ["vector"], ["tokens1"], start=1, end=2),
        n("Squeeze", ["tokens1", "axis0"], ["tokens"]),
        n("Sub", ["block", "one"], ["block_minus_one"]),
        n("Add", ["tokens", "block_minus_one"], ["rounded_up"]),
        n("Div", ["rounded_up", "block"], ["trips"]),
        n("Shape", ["vector"], ["vector_shape"]),
        n("ConstantOfShape", ["vector_shape"], ["acc0"],
          value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0])),
        n("Loop", ["trips", "", "acc0"], ["total"], body=_loop_body()),
        n("Cast", ["heads"], ["heads_f"], to=TensorProto.FLOAT),
        n("Div", ["total", "heads_f"], ["mapped"]),
        n("Mul", ["alpha", "mapped"], ["mixed"]),
        n("Sub", ["one_f", "alpha"], ["residual_weight"]),
        n("Mul", ["residual_weight", "vector"], ["residual"]),
        n("Add", ["mixed", "residual"], ["stepped"]),
    ]


def rollout_function(opset: int) -> onnx.FunctionProto:
    n = helper.make_node
    enabled = helper.make_graph(_step_graph(), "rollout_step", [],
                                [helper.make_tensor_value_info("stepped", TensorProto.FLOAT, None)])
    disabled = helper.make_graph([n("Identity", ["vector"], ["unchanged"])], "rollout_skipped", [],
                                 [helper.make_tensor_value_info("unchanged", TensorProto.FLOAT, None)])
    nodes = [
        _attr_constant("heads", "num_heads", AttributeProto.INT),
        _attr_constant("kv_heads", "kv_heads", AttributeProto.INT),
        _attr_constant("scale", "scale", AttributeProto.FLOAT),
        _attr_constant("block", "block", AttributeProto.INT),
        n("If", ["enabled"], ["output"], then_branch=enabled, else_branch=disabled),
    ]
    return helper.make_function(FASTAV_DOMAIN, OP_TYPE, ["vector", "query", "key", "alpha", "enabled"], ["output"],
                                nodes, opset_imports=[helper.make_opsetid("", opset)],
                                attributes=["num_heads", "kv_heads", "scale", "block"])
