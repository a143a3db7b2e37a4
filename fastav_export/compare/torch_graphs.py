"""Every graph of an engine computed by the torch modules it was exported from: the per-graph reference.

`TorchGraphs` is a `GraphRunner` (see graph_pipeline.py), so `GraphPipeline` runs the
whole FastAV prefill/decode over it exactly as it runs ONNX Runtime or TensorRT graphs.
Each graph's arithmetic is done in fp32 by the modules `fastav-export build` exported
(`PrePruneGraph`, `PostLayerGraph`, the embedding, TopKGather's numpy reference) with the
reference weights; its inputs and outputs keep the engine's types (`dtype`), so what
it records can be fed to the engine's own graphs (an fp16 graph takes fp16 inputs).
"""

from __future__ import annotations

import torch

from .. import graph_io
from ..engine_dir import EngineManifest
from ..export.layer_graphs import PostLayerGraph, PrePruneGraph
from ..export.topk_gather import topk_gather_reference
from ..graph_pipeline import TORCH_DTYPES


class TorchGraphs:
    """model: the fp32 `Qwen2ForCausalLM` the engine was built from (see reference_model.py)."""

    name = "torch"
    device = torch.device("cpu")

    def __init__(self, model, manifest: EngineManifest):
        self.dtype = TORCH_DTYPES[manifest.precision]
        self.output_names = {name: entry.outputs for name, entry in manifest.graphs.items()}
        K, L = manifest.global_layer, manifest.dims.num_layers
        self.embed_tokens = model.model.embed_tokens
        self.pre = PrePruneGraph(model, K, manifest.rollout).eval()
        self.posts = {graph_io.post(layer): PostLayerGraph(model, layer, layer == L - 1).eval()
                      for layer in range(K, L)}
        self.global_layer = K

    @torch.no_grad()
    def run(self, graph: str, inputs: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor]) -> None:
        fp32 = {name: t.float() if t.is_floating_point() else t for name, t in inputs.items()}
        results = self._compute(graph, fp32)
        for name, value in zip(self.output_names[graph], results, strict=True):
            if name in outputs:  # callers may leave an output unbound (decode skips `importance`)
                outputs[name].copy_(torch.as_tensor(value))  # cast to the engine's output type

    def _compute(self, graph: str, x: dict) -> list:
        if graph == graph_io.EMBED:
            return [self.embed_tokens(x["input_ids"])]
        if graph == graph_io.TOPK_GATHER:
            arrays = [x[name].numpy() for name in graph_io.TOPK_INPUTS[:5]]
            return list(topk_gather_reference(*arrays, k=x["keep"].shape[0]))
        if graph == graph_io.PRE:
            past = [tuple(x[name] for name in graph_io.past(layer)) for layer in range(self.global_layer)]
            out = self.pre(x["inputs_embeds"], x["position_ids"], x["past_length"], past,
                           x.get("rollout_weights"), x.get("rollout_alpha"))
            flat = [out[0], *(t for pair in out[1] for t in pair)]
            return flat + list(out[2:])
        layer = int(graph.rsplit("_", 1)[1])
        return list(self.posts[graph](x["hidden_states"], x["position_ids"], x["past_length"],
                                      *(x[name] for name in graph_io.past(layer))))
