"""Every graph of an engine computed by the torch modules it was exported from: the per-graph reference.

`TorchGraphs` is a `GraphRunner` (see graph_pipeline.py), so `GraphPipeline` runs the
whole FastAV prefill/decode over it exactly as it runs ONNX Runtime or TensorRT graphs.
Each graph's arithmetic is done in fp32 by the modules `fastav-export build` exported
(`PrePruneGraph`, `PostLayerGraph`, the embedding; their fused ops run their eager
reference implementations) with the reference weights; its inputs and outputs keep the
engine's types (`dtype`), so what it records can be fed to the engine's own graphs (an
fp16 graph takes fp16 inputs).
"""

from __future__ import annotations

import torch

from ..contract import graph_io
from ..contract.precision import TORCH_DTYPES
from ..engine.manifest import EngineManifest
from ..export.layer_graphs import PostLayerGraph, PrePruneGraph


class TorchGraphs:
    """model: the fp32 `Qwen2ForCausalLM` the engine was built from (see reference_model.py)."""

    name = "torch"
    device = torch.device("cpu")

    def __init__(self, model, manifest: EngineManifest):
        self.dtype = TORCH_DTYPES[manifest.precision]
        self.output_names = {name: entry.outputs for name, entry in manifest.graphs.items()}
        K, L = manifest.global_layer, manifest.dims.num_layers
        in_place = graph_io.IN_PLACE_KV[manifest.flavour]
        self.input_names = {name: entry.inputs for name, entry in manifest.graphs.items()}
        self.embed_tokens = model.model.embed_tokens
        self.pre = PrePruneGraph(model, K, manifest.rollout, in_place).eval()
        self.posts = {graph_io.post(layer): PostLayerGraph(model, layer, layer == L - 1, in_place).eval()
                      for layer in range(K, L)}
        self.global_layer = K

    @torch.no_grad()
    def close(self) -> None:
        """Nothing to release (the GraphRunner protocol)."""

    def run(self, graph: str, inputs: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor]) -> None:
        fp32 = {name: t.float() if t.is_floating_point() else t for name, t in inputs.items()}
        results = self._compute(graph, fp32)
        for name, value in zip(self.output_names[graph], results, strict=True):
            if name in outputs:  # callers may leave an output unbound (decode skips `importance`)
                outputs[name].copy_(torch.as_tensor(value))  # cast to the engine's output type

    def prepare(self, graph: str, inputs: dict, outputs: dict):
        return lambda: self.run(graph, inputs, outputs)

    def _compute(self, graph: str, x: dict) -> list:
        """The graph's outputs in manifest order, from its inputs by name."""
        if graph == graph_io.EMBED:
            return [self.embed_tokens(x["input_ids"])]
        if graph == graph_io.PRE:
            past = [tuple(x[name] for name in graph_io.past(layer)) for layer in range(self.global_layer)]
            rest = [x[name] for name in self.input_names[graph][3 + 2 * self.global_layer:]]
            out = self.pre(x["inputs_embeds"], x["position_ids"], x["past_length"], past, *rest)
            hidden, kept_index, kept_positions, present = out[:4]
            return [hidden, kept_index, kept_positions, *(t for pair in present for t in pair), *out[4:]]
        return list(self.posts[graph](*(x[name] for name in self.input_names[graph])))
