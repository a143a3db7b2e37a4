"""Export a Qwen2 decoder as FastAV's graphs: embed, pre, topk_gather, post_K..post_{L-1}.

Each graph goes through torch.onnx's dynamo exporter (opset 20, with its optimiser),
then gets stable names (nodes prefixed by their graph; parameters named as in the
Hugging Face checkpoint, except the matmul weights the optimiser folds into
transposed constants), weights in one external data file per graph, and
`onnx.checker`'s full check with strict shape inference.
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

from .. import graph_io
from .layer_graphs import PostLayerGraph, PrePruneGraph
from .topk_gather import OPSET, topk_gather_model

log = logging.getLogger("fastav_export")

# Sample sizes for tracing; all different so the exporter infers no equalities.
_BATCH, _NEW, _PAST = 2, 5, 3


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
    cfg = model.config
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
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
            out_dir: Path, weight_names: dict[int, str]) -> ExportedGraph:
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(module, args, dynamo=True, opset_version=OPSET, input_names=inputs,
                                    output_names=outputs, dynamic_shapes=dynamic_shapes, optimize=True,
                                    verbose=False)
    graph = program.model.graph
    graph.name = name
    for node in graph:
        node.name = f"{name}/{node.name}"
    # Parameters keep their checkpoint names (model.layers.3.input_layernorm.weight ...).
    params = dict(module.named_parameters(remove_duplicate=False))
    for value in list(graph.initializers.values()):
        param = params.get(value.name)
        if param is not None and param.data_ptr() in weight_names:
            value.name = weight_names[param.data_ptr()]
    path = out_dir / f"{name}.onnx"
    program.save(path, external_data=True)
    _check(path)
    return ExportedGraph(name, path, list(inputs), list(outputs))


def _check(path: Path) -> None:
    import onnx

    onnx.shape_inference.infer_shapes_path(str(path), str(path), strict_mode=True, data_prop=True)
    onnx.checker.check_model(str(path), full_check=True)


def export_graphs(model, out_dir: Path, global_layer: int, rollout: bool,
                  progress: Callable[[str], None] = lambda name: None) -> list[ExportedGraph]:
    """Writes every graph into out_dir; `model` is a transformers Qwen2ForCausalLM in
    the precision to export (fp32, fp16 or bf16). progress(name) is called before each graph."""
    cfg = model.config
    num_layers, dtype = cfg.num_hidden_layers, model.lm_head.weight.dtype
    if not 0 < global_layer < num_layers:
        raise ValueError(f"global layer {global_layer} must be in 1..{num_layers - 1}")
    out_dir.mkdir(parents=True, exist_ok=True)
    weight_names = {p.data_ptr(): n for n, p in model.named_parameters(remove_duplicate=False)}
    batch, new, past = _dims()
    hidden = torch.zeros(_BATCH, _NEW, cfg.hidden_size, dtype=dtype)
    positions = torch.arange(_NEW).expand(_BATCH, _NEW).contiguous()
    past_length = torch.tensor(_PAST, dtype=torch.int64)
    token_dims = {0: batch, 1: new}
    kv_dims = ({0: batch, 2: past}, {0: batch, 2: past})
    graphs = []

    progress(graph_io.EMBED)
    graphs.append(_export(_Embed(model), (positions,), ({0: batch, 1: new},), graph_io.EMBED,
                          *graph_io.embed_io(), out_dir, weight_names))

    progress(graph_io.PRE)
    pre = PrePruneGraph(model, global_layer, rollout).eval()
    pasts = [_sample_past(model, dtype) for _ in range(global_layer)]
    args = [hidden, positions, past_length, pasts]
    shapes = [token_dims, token_dims, None, [kv_dims] * global_layer]
    if rollout:
        args += [torch.full((_NEW,), 1.0 / _NEW), torch.tensor(0.5)]
        shapes += [{0: new}, None]
    graphs.append(_export(pre, tuple(args), tuple(shapes), graph_io.PRE,
                          *graph_io.pre_io(global_layer, rollout), out_dir, weight_names))

    progress(graph_io.TOPK_GATHER)
    import onnx

    topk_path = out_dir / f"{graph_io.TOPK_GATHER}.onnx"
    onnx.save(topk_gather_model(cfg.hidden_size, _onnx_type(dtype)), topk_path)
    _check(topk_path)
    graphs.append(ExportedGraph(graph_io.TOPK_GATHER, topk_path, *graph_io.topk_gather_io()))

    for layer in range(global_layer, num_layers):
        name = graph_io.post(layer)
        progress(name)
        final = layer == num_layers - 1
        module = PostLayerGraph(model, layer, final).eval()
        args = (hidden, positions, past_length, *_sample_past(model, dtype))
        shapes = (token_dims, token_dims, None, *kv_dims)
        graphs.append(_export(module, args, shapes, name, *graph_io.post_io(layer, final), out_dir, weight_names))
    return graphs


def _onnx_type(dtype: torch.dtype) -> int:
    from onnx import TensorProto

    return {torch.float32: TensorProto.FLOAT, torch.float16: TensorProto.FLOAT16,
            torch.bfloat16: TensorProto.BFLOAT16}[dtype]
