"""Export a Qwen2 decoder as FastAV's graphs: embed, pre, post_K..post_{L-1}.

Each graph goes through torch.onnx's dynamo exporter (opset 23, with its optimiser);
the fused ops (`custom_ops.py`) are translated into the chosen flavour's nodes, and the
model-local functions of FastAV's own ops (TopKGather, RolloutStep) are attached to the
graphs that call them. Then every graph gets stable names (nodes prefixed by their
graph; parameters named as in the Hugging Face checkpoint, except the matmul weights
the optimiser folds into transposed constants), weights in one external data file per
graph, and `onnx.checker`'s full check with strict shape inference. With FASTAV_EXPORT_CACHE
set, a graph this code exported before from the same module and samples is copied instead
(graph_cache.py).
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..contract import graph_io
from ..contract.dims import DecoderDims
from ..contract.positions import default_positions
from .custom_ops import FASTAV_DOMAIN, registered_schemas, translation_table
from .graph_cache import cached_export, graph_key
from .layer_graphs import DecoderLayerGraph, PostLayerGraph, PrePruneGraph
from .rollout_function import DEFAULT_BLOCK, rollout_function
from .topk_gather import OPSET, topk_gather_function

log = logging.getLogger("fastav_export")

# Sample sizes for tracing; all different so the exporter infers no equalities.
_BATCH, _NEW, _PAST = 2, 7, 11


@dataclass(frozen=True)
class ExportedGraph:
    name: str
    path: Path  # the .onnx file (weights beside it in <file>.data)
    inputs: list[str]
    outputs: list[str]


class _Embed(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.embed_tokens = model.model.embed_tokens

    def forward(self, input_ids):
        return self.embed_tokens(input_ids)


def _dims():
    batch = torch.export.Dim("batch")
    new = torch.export.Dim("new_tokens")
    past = torch.export.Dim("past_tokens", min=0)
    return batch, new, past


def _sample_past(model, dtype):
    """A KV buffer sample: _PAST slots, more than the _NEW tokens traced (the in-place flavour writes them)."""
    cfg = model.config
    head_dim = DecoderDims.from_qwen2_config(cfg).head_size
    shape = (_BATCH, cfg.num_key_value_heads, _PAST, head_dim)
    return torch.zeros(shape, dtype=dtype), torch.zeros(shape, dtype=dtype)


@contextmanager
def _quiet_exporter():
    """The exporter warns about optional torchvision ops and deprecations on every call."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _export(module: nn.Module, args: tuple, dynamic_shapes, name: str, inputs, outputs,
            out_dir: Path, weight_names: dict[int, str], translations: dict, settings: dict) -> ExportedGraph:
    """One graph, or its copy from the export cache (graph_cache.py; `settings`: what else shapes it)."""
    names = sorted(weight_names.get(p.data_ptr(), "") for p in module.parameters())
    key = graph_key(name, module, args, {**settings, "inputs": list(inputs), "outputs": list(outputs),
                                          "dynamic_shapes": repr(dynamic_shapes), "weight_names": names})
    path = cached_export(name, out_dir, key, lambda: _export_now(module, args, dynamic_shapes, name, inputs, outputs,
                                                                 out_dir, weight_names, translations))
    return ExportedGraph(name, path, list(inputs), list(outputs))


def _export_now(module: nn.Module, args: tuple, dynamic_shapes, name: str, inputs, outputs,
                out_dir: Path, weight_names: dict[int, str], translations: dict) -> Path:
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(module, args, dynamo=True, opset_version=OPSET, input_names=inputs,
                                    output_names=outputs, dynamic_shapes=dynamic_shapes, optimize=True,
                                    verbose=False, custom_translation_table=translations)
    graph = program.model.graph
    graph.name = name
    for node in graph:
        node.name = f"{name}/{node.name}"
    # Parameters keep their checkpoint names (model.layers.3.input_layernorm.weight ...).
    params = dict(module.named_parameters(remove_duplicate=False))
    weight_names = {**weight_names, **{ptr: name for m in module.modules() if isinstance(m, DecoderLayerGraph)
                                       for ptr, name in m.fused_parameter_names().items()}}
    for value in list(graph.initializers.values()):
        param = params.get(value.name)
        if param is not None and param.data_ptr() in weight_names:
            value.name = weight_names[param.data_ptr()]
    path = out_dir / f"{name}.onnx"
    program.save(path, external_data=True)
    _finalise(path)
    _check(path)
    return path


_FUNCTIONS = {"TopKGather": lambda: topk_gather_function(), "RolloutStep": lambda: rollout_function(OPSET)}


def _finalise(path: Path) -> None:
    """Attach the model-local function of every FastAV op the graph calls, and trim the
    unused optional outputs of Attention nodes (weights stay external)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    consumed = {name for node in model.graph.node for name in node.input} | {o.name for o in model.graph.output}
    for node in model.graph.node:
        if node.op_type == "Attention" and node.domain == "" and not consumed & set(node.output[1:]):
            del node.output[1:]  # TensorRT imports single-output Attention nodes only
    used = {node.op_type for node in model.graph.node if node.domain == FASTAV_DOMAIN}
    model.functions.extend(_FUNCTIONS[op]() for op in sorted(used))
    if used and not any(opset.domain == FASTAV_DOMAIN for opset in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid(FASTAV_DOMAIN, 1))
    onnx.save(model, str(path))


def _check(path: Path) -> None:
    import onnx

    onnx.shape_inference.infer_shapes_path(str(path), str(path), strict_mode=True, data_prop=True)
    onnx.checker.check_model(str(path), full_check=True)


def export_graphs(model, out_dir: Path, global_layer: int, rollout: bool, flavour: str,
                  progress: Callable[[str], None] = lambda name: None,
                  rollout_block: int = DEFAULT_BLOCK) -> list[ExportedGraph]:
    """Writes every graph into out_dir; `model` is a transformers Qwen2ForCausalLM in
    the precision to export (fp32, fp16 or bf16), or a decoder shaped like one with M-RoPE
    (`ThinkerDecoder`: its graphs take and return position ids [3, B, q]);
    `flavour` one of custom_ops.FLAVOURS. progress(name) is called before each graph."""
    cfg = model.config
    num_layers, dtype = cfg.num_hidden_layers, model.lm_head.weight.dtype
    if not 0 < global_layer < num_layers:
        raise ValueError(f"global layer {global_layer} must be in 1..{num_layers - 1}")
    out_dir.mkdir(parents=True, exist_ok=True)
    in_place = graph_io.IN_PLACE_KV[flavour]
    translations = translation_table(flavour, rollout_block)
    # what shapes every graph besides its module and samples (the cache key's settings); the pre graph also
    # depends on the split and the rollout
    settings = {"flavour": flavour, "rollout_block": rollout_block, "config": cfg.to_json_string(use_diff=False)}
    weight_names = {p.data_ptr(): n for n, p in model.named_parameters(remove_duplicate=False)}
    batch, new, past = _dims()
    hidden = torch.zeros(_BATCH, _NEW, cfg.hidden_size, dtype=dtype)
    token_ids = torch.arange(_NEW).expand(_BATCH, _NEW).contiguous()
    rows = DecoderDims.from_qwen2_config(cfg).position_rows
    positions = default_positions(_BATCH, _NEW, rows).contiguous()
    past_length = torch.zeros(_BATCH, dtype=torch.int64)  # one past length per row
    token_dims = {0: batch, 1: new}
    position_dims = token_dims if rows == 1 else {1: batch, 2: new}
    kv_dims = ({0: batch, 2: past}, {0: batch, 2: past})
    cut_args, cut_dims = _sample_cut(batch)
    graphs = []

    with registered_schemas():
        progress(graph_io.EMBED)
        graphs.append(_export(_Embed(model), (token_ids,), ({0: batch, 1: new},), graph_io.EMBED,
                              *graph_io.embed_io(), out_dir, weight_names, translations, settings))

        progress(graph_io.PRE)
        pre = PrePruneGraph(model, global_layer, rollout, in_place).eval()
        pasts = [_sample_past(model, dtype) for _ in range(global_layer)]
        args = [hidden, positions, past_length, pasts, *cut_args]
        shapes = [token_dims, position_dims, {0: batch}, [kv_dims] * global_layer, *cut_dims]
        if rollout:
            args += [torch.full((_NEW,), 1.0 / _NEW), torch.tensor(0.5), torch.tensor(True)]
            shapes += [{0: new}, None, None]
        graphs.append(_export(pre, tuple(args), tuple(shapes), graph_io.PRE,
                              *graph_io.pre_io(global_layer, rollout), out_dir, weight_names, translations,
                              {**settings, "global_layer": global_layer, "rollout": rollout}))

        for layer in range(global_layer, num_layers):
            name = graph_io.post(layer)
            progress(name)
            final = layer == num_layers - 1
            module = PostLayerGraph(model, layer, final, in_place).eval()
            args = (hidden, positions, past_length, *_sample_past(model, dtype))
            shapes = (token_dims, position_dims, {0: batch}, *kv_dims)
            if not final:
                args, shapes = (*args, *cut_args), (*shapes, *cut_dims)
            graphs.append(_export(module, args, shapes, name, *graph_io.post_io(layer, final), out_dir,
                                  weight_names, translations, settings))
    return graphs


def _sample_cut(batch):
    """TopKGather inputs for tracing (candidates 0..3, protected 4..6, keep 1) and their dynamic dims."""
    candidates = torch.arange(4).expand(_BATCH, 4).contiguous()
    protected = torch.arange(4, _NEW).expand(_BATCH, _NEW - 4).contiguous()
    keep = torch.zeros(1, dtype=torch.int64)
    dims = ({0: batch, 1: torch.export.Dim("candidates", min=0)}, {0: batch, 1: torch.export.Dim("protected", min=0)},
            {0: torch.export.Dim("keep", min=0)})
    return (candidates, protected, keep), dims


def _onnx_type(dtype: torch.dtype) -> int:
    from onnx import TensorProto

    return {torch.float32: TensorProto.FLOAT, torch.float16: TensorProto.FLOAT16,
            torch.bfloat16: TensorProto.BFLOAT16}[dtype]
