"""The fused operations FastAV's graphs are written with: torch custom ops and their ONNX forms.

The layer modules (`layer_graphs.py`) call these ops; eagerly they compute the
contract's reference result (in fp32), and torch.onnx's exporter translates each one
into the ONNX node(s) of the chosen graph *flavour*:

    op                 "ort-contrib" (ONNX Runtime)              "onnx-standard" (TensorRT, any runtime)
    cached_attention   com.microsoft GroupQueryAttention over    Attention (opset 23) over Concat(past, new)
                       the layer's KV buffer, written in place   with a boolean mask; the new entries are
                       (past and present share one buffer)       outputs, the runtime appends them
    topk_gather        fastav::TopKGather (a model-local ONNX function; the TensorRT plugin of that name)
    rollout_step       fastav::RolloutStep (a model-local ONNX function, blockwise: no N x N map;
                       skipped when its `enabled` input is false)

Neither attention form materialises an [.., q, P + q] probability tensor in the graph:
the fused kernels keep it inside. RoPE is applied before the op (pruned positions are
not contiguous, so the op's own rotary could not be used).

Schemas of the non-standard ops are registered with ONNX only while a graph is being
exported (`registered_schemas`), so onnxscript can build the nodes.
"""

from __future__ import annotations

from contextlib import contextmanager

import onnx
import torch
from onnx.defs import OpSchema

from ..contract.graph_io import FLAVOURS
from ..reference.rollout import rollout_vector_step

# ---- eager (reference) implementations ----------------------------------------------


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[B, q, heads * hd] -> [B, heads, q, hd]."""
    batch, q_len, width = x.shape
    return x.view(batch, q_len, heads, width // heads).transpose(1, 2)


@torch.library.custom_op("fastav::cached_attention", mutates_args=())
def cached_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, past_key: torch.Tensor,
                     past_value: torch.Tensor, past_length: torch.Tensor, num_heads: int, kv_heads: int,
                     scale: float, in_place: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Causal attention of q new tokens over each row's first `past_length[b]` past entries and themselves.

    query [B, q, H*hd], key/value [B, q, Hkv*hd] (after RoPE); past_key/value [B, Hkv, P, hd]
    (the layer's buffer; a row's entries at or beyond its past_length are ignored);
    past_length [B] int64, one length per row (rows of a batch may hold different requests).
    Returns (output [B, q, H*hd], present_key, present_value):
      in_place: the buffer [B, Hkv, max(P, past + q), hd] with each row's new entries at its
                past_length (entries past the new ones zero here; in the runtime the buffer
                itself is written);
      else:     the new entries [B, Hkv, q, hd] only.
    """
    q, k, v = _heads(query, num_heads), _heads(key, kv_heads), _heads(value, kv_heads)
    batch, q_len = query.shape[:2]
    lengths = [int(n) for n in past_length.reshape(-1).expand(batch)]
    rows, present_rows = [], []
    for b, past in enumerate(lengths):
        keys = torch.cat((past_key[b:b + 1, :, :past], k[b:b + 1]), dim=2)
        values = torch.cat((past_value[b:b + 1, :, :past], v[b:b + 1]), dim=2)
        causal = torch.ones(q_len, past + q_len, dtype=torch.bool, device=query.device).tril(past)
        rows.append(torch.nn.functional.scaled_dot_product_attention(
            q[b:b + 1].float(), keys.float(), values.float(), attn_mask=causal, scale=scale, enable_gqa=True))
        present_rows.append((keys, values))
    out = torch.cat(rows).to(query.dtype).transpose(1, 2).reshape(query.shape)
    if not in_place:
        return out, k.contiguous(), v.contiguous()
    present = []
    for i, buffer in enumerate((past_key, past_value)):
        _, heads, capacity, head_dim = buffer.shape
        written = buffer.new_zeros(batch, heads, max([capacity, *(n + q_len for n in lengths)]), head_dim)
        for b, past in enumerate(lengths):
            written[b, :, :past + q_len] = present_rows[b][i][0]
        present.append(written)
    return out, present[0], present[1]


@cached_attention.register_fake
def _(query, key, value, past_key, past_value, past_length, num_heads, kv_heads, scale, in_place):
    if in_place:  # the runtime sizes each buffer for every entry it will hold
        return torch.empty_like(query), torch.empty_like(past_key), torch.empty_like(past_value)
    shape = (key.shape[0], kv_heads, key.shape[1], past_key.shape[3])
    return torch.empty_like(query), key.new_empty(shape), value.new_empty(shape)


@torch.library.custom_op("fastav::topk_gather", mutates_args=())
def topk_gather(scores: torch.Tensor, hidden_states: torch.Tensor, position_ids: torch.Tensor,
                candidates: torch.Tensor, protected: torch.Tensor,
                keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """TopKGather (see topk_gather.py): keep `protected` plus the len(keep) best-scored `candidates`.

    scores [B, N] fp32, hidden_states [B, N, D], position_ids [B, N], candidates [B, C],
    protected [B, M] (int64 token indices), keep [k] (only its length counts).
    Returns kept_index [B, M + k] ascending, kept hidden_states [B, M + k, D], kept position_ids.
    """
    ordered = candidates.sort(dim=1).values  # ties go to the lower token index (stable sorts below)
    order = torch.sort(scores.gather(1, ordered), dim=1, descending=True, stable=True).indices[:, :keep.shape[0]]
    index = torch.cat((protected, ordered.gather(1, order)), dim=1).sort(dim=1).values
    return index, gather_rows(hidden_states, index), position_ids.gather(1, index)


@topk_gather.register_fake
def _(scores, hidden_states, position_ids, candidates, protected, keep):
    kept = protected.shape[1] + keep.shape[0]
    batch = scores.shape[0]
    return (position_ids.new_empty((batch, kept)), hidden_states.new_empty((batch, kept, hidden_states.shape[2])),
            position_ids.new_empty((batch, kept)))


@torch.library.custom_op("fastav::rollout_step", mutates_args=())
def rollout_step(vector: torch.Tensor, query: torch.Tensor, key: torch.Tensor, alpha: torch.Tensor,
                 enabled: torch.Tensor, num_heads: int, kv_heads: int, scale: float) -> torch.Tensor:
    """One step of the rollout chain backwards: alpha * v^T A_l + (1 - alpha) * v.

    vector [B, N] fp32; query [B, N, H*hd], key [B, N, Hkv*hd] of layer l (after RoPE);
    alpha [] fp32; enabled [] bool: false returns `vector` unchanged (and costs nothing),
    for runs whose cut does not rank by importance (positional, dense, decode).
    A_l is the head-mean causal attention map, never materialised.
    """
    if not bool(enabled):
        return vector.clone()
    return rollout_vector_step(vector, _heads(query, num_heads), _heads(key, kv_heads), alpha, scale)


@rollout_step.register_fake
def _(vector, query, key, alpha, enabled, num_heads, kv_heads, scale):
    return torch.empty_like(vector)


def gather_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """[B, N, W] rows picked by [B, n] int64 -> [B, n, W], as one flat Gather in ONNX."""
    batch, tokens, width = x.shape
    offsets = torch.arange(batch, device=x.device).unsqueeze(1) * tokens
    return x.reshape(batch * tokens, width)[index + offsets]


# ---- ONNX translations --------------------------------------------------------------

MSFT_DOMAIN, FASTAV_DOMAIN = "com.microsoft", "fastav"


def _schema(name: str, domain: str, inputs, outputs, types: dict, attributes=()) -> OpSchema:
    param = OpSchema.FormalParameter
    return OpSchema(name, domain, 1,
                    inputs=[param(n, t) for n, t in inputs], outputs=[param(n, t) for n, t in outputs],
                    type_constraints=[(t, allowed, "") for t, allowed in types.items()],
                    attributes=[OpSchema.Attribute(a, kind, "") for a, kind in attributes])


_FLOATS = ["tensor(float)", "tensor(float16)", "tensor(bfloat16)"]
_INT, _FLOAT, _STRING = OpSchema.AttrType.INT, OpSchema.AttrType.FLOAT, OpSchema.AttrType.STRING
SCHEMAS = [
    # Only what these graphs use of ONNX Runtime's contrib op (its full spec has more inputs).
    _schema("GroupQueryAttention", MSFT_DOMAIN,
            [("query", "T"), ("key", "T"), ("value", "T"), ("past_key", "T"), ("past_value", "T"),
             ("seqlens_k", "M"), ("total_sequence_length", "M")],
            [("output", "T"), ("present_key", "T"), ("present_value", "T")],
            {"T": _FLOATS, "M": ["tensor(int32)"]},
            [("num_heads", _INT), ("kv_num_heads", _INT), ("scale", _FLOAT)]),
    _schema("TopKGather", FASTAV_DOMAIN,
            [("scores", "F"), ("hidden_states", "T"), ("position_ids", "I"), ("candidates", "I"),
             ("protected", "I"), ("keep", "I")],
            [("kept_index", "I"), ("kept_hidden_states", "T"), ("kept_position_ids", "I")],
            {"F": ["tensor(float)"], "T": _FLOATS, "I": ["tensor(int64)"]},
            [("plugin_namespace", _STRING), ("plugin_version", _STRING)]),
    _schema("RolloutStep", FASTAV_DOMAIN,
            [("vector", "F"), ("query", "T"), ("key", "T"), ("alpha", "F"), ("enabled", "B")], [("output", "F")],
            {"F": ["tensor(float)"], "T": _FLOATS, "B": ["tensor(bool)"]},
            [("num_heads", _INT), ("kv_heads", _INT), ("scale", _FLOAT), ("block", _INT)]),
]


@contextmanager
def registered_schemas():
    """Register SCHEMAS with ONNX for the duration of an export (and its checks)."""
    added = []
    try:
        for schema in SCHEMAS:
            try:
                onnx.defs.get_schema(schema.name, schema.since_version, schema.domain)
            except onnx.defs.SchemaError:
                onnx.defs.register_schema(schema)
                added.append(schema)
        yield
    finally:
        for schema in added:
            onnx.defs.deregister_schema(schema.name, schema.since_version, schema.domain)


def translation_table(flavour: str, rollout_block: int) -> dict:
    """{torch op overload: onnxscript function} for torch.onnx.export's custom_translation_table."""
    import onnxscript
    from onnxscript import opset23 as op

    if flavour not in FLAVOURS:
        raise ValueError(f"unknown graph flavour {flavour!r}: one of {FLAVOURS}")
    msft = onnxscript.values.Opset(MSFT_DOMAIN, 1)
    fastav = onnxscript.values.Opset(FASTAV_DOMAIN, 1)
    int32 = onnx.TensorProto.INT32

    def contrib_attention(query, key, value, past_key, past_value, past_length, num_heads: int, kv_heads: int,
                          scale: float, in_place: bool):
        # GroupQueryAttention: seqlens_k [B] is the index of each row's last entry, total the longest
        # row's entry count; with past and present bound to one buffer it writes each row's new
        # entries at that row's past_length.
        total = op.Add(past_length, op.Squeeze(op.Shape(query, start=1, end=2)))
        seqlens = op.Cast(op.Sub(total, op.Constant(value_int=1)), to=int32)
        longest = op.ReduceMax(total, keepdims=0)
        return msft.GroupQueryAttention(query, key, value, past_key, past_value, seqlens, op.Cast(longest, to=int32),
                                        num_heads=num_heads, kv_num_heads=kv_heads, scale=scale, _num_outputs=3)

    def standard_attention(query, key, value, past_key, past_value, past_length, num_heads: int, kv_heads: int,
                           scale: float, in_place: bool):
        def heads(x, n):  # [B, q, n*hd] -> [B, n, q, hd]
            return op.Transpose(op.Reshape(x, op.Constant(value_ints=[0, 0, n, -1])), perm=[0, 2, 1, 3])

        k, v = heads(key, kv_heads), heads(value, kv_heads)
        keys, values = op.Concat(past_key, k, axis=2), op.Concat(past_value, v, axis=2)
        # mask [B, 1, q, P + q]: each row's valid past entries, then the new tokens causally.
        zero, one = op.Constant(value_int=0), op.Constant(value_int=1)
        q_len = op.Squeeze(op.Shape(query, start=1, end=2))
        past_slots = op.Squeeze(op.Shape(past_key, start=2, end=3))
        rows = op.Unsqueeze(op.Range(zero, q_len, one), op.Constant(value_ints=[1]))
        cols = op.Range(zero, op.Add(past_slots, q_len), one)
        new_col = op.Sub(cols, past_slots)
        causal = op.And(op.GreaterOrEqual(new_col, zero), op.LessOrEqual(new_col, rows))
        row_lengths = op.Reshape(past_length, op.Constant(value_ints=[-1, 1, 1, 1]))
        mask = op.Or(op.Less(cols, row_lengths), causal)
        # Only the first output is used; `onnx_graphs` drops the others from the node, because
        # TensorRT's importer takes single-output Attention nodes only.
        out = op.Attention(heads(query, num_heads), keys, values, mask, scale=scale)[0]
        out = op.Reshape(op.Transpose(out, perm=[0, 2, 1, 3]), op.Constant(value_ints=[0, 0, -1]))
        return out, k, v

    def topk(scores, hidden_states, position_ids, candidates, protected, keep):
        from .topk_gather import PLUGIN_NAMESPACE, PLUGIN_VERSION

        return fastav.TopKGather(scores, hidden_states, position_ids, candidates, protected, keep,
                                 plugin_namespace=PLUGIN_NAMESPACE, plugin_version=PLUGIN_VERSION, _num_outputs=3)

    def rollout(vector, query, key, alpha, enabled, num_heads: int, kv_heads: int, scale: float):
        return fastav.RolloutStep(vector, query, key, alpha, enabled, num_heads=num_heads, kv_heads=kv_heads,
                                  scale=scale, block=rollout_block)

    return {
        torch.ops.fastav.cached_attention.default:
            contrib_attention if flavour == "ort-contrib" else standard_attention,
        torch.ops.fastav.topk_gather.default: topk,
        torch.ops.fastav.rollout_step.default: rollout,
    }
