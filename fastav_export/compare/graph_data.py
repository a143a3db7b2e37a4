"""Record every graph call of a pipeline run, and save it in Polygraphy's JSON formats.

`RecordingGraphs` wraps any `GraphRunner` and keeps a copy of each call's inputs and
outputs (the pipeline reuses its buffers, so references would change under us).
`record_calls` runs one prefill and one decode step through it, which calls every graph
of the engine: pre (with the global cut inside), post_K..post_{L-1} (each with its fine
cut inside), and, in the decode step, embed, pre and every post graph again with one
new token against the KV buffers.

`save_graph_data` writes, per graph, the files plain `polygraphy run` reads:

    <dir>/<graph>.inputs.json    a list of feed dicts, one per call    (--load-inputs)
    <dir>/<graph>.outputs.json   RunResults of the reference, same order (--load-outputs)
    <dir>/index.json             every call in execution order, and the commands that check them
"""

from __future__ import annotations

import json
import shlex
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..contract import graph_io
from ..errors import FastAVError
from ..runtime.graph_pipeline import GraphPipeline


@dataclass
class GraphCall:
    """One graph execution: what it was fed and what it returned (numpy copies)."""

    graph: str
    step: str  # "prefill" or "decode"
    role: str  # which layers this call is, e.g. "layers 0-2", "layer 4", "global cut before layer 3"
    inputs: OrderedDict = field(default_factory=OrderedDict)
    outputs: OrderedDict = field(default_factory=OrderedDict)

    def describe(self) -> str:
        return f"{self.graph} ({self.role}, {self.step})"


def to_numpy(tensor: torch.Tensor):
    if tensor.dtype == torch.bfloat16:
        raise FastAVError("Polygraphy's JSON and numpy cannot hold bf16 tensors: save graph data of an fp32 or "
                          "fp16 engine")
    return tensor.detach().cpu().numpy().copy()


class RecordingGraphs:
    """A `GraphRunner` that runs `inner` and records every call (see `GraphCall`)."""

    def __init__(self, inner, global_layer: int):
        self.inner, self.global_layer = inner, global_layer
        self.name, self.device, self.dtype = inner.name, inner.device, inner.dtype
        self.calls: list[GraphCall] = []
        self.step = "prefill"

    def prepare(self, graph: str, inputs: dict, outputs: dict):
        return lambda: self.run(graph, inputs, outputs)  # each call is recorded

    def close(self) -> None:
        """Nothing to release (the GraphRunner protocol)."""

    def run(self, graph: str, inputs: dict, outputs: dict) -> None:
        call = GraphCall(graph, self.step, self._role(graph),
                         OrderedDict((name, to_numpy(t)) for name, t in inputs.items()))
        self.inner.run(graph, inputs, outputs)
        call.outputs = OrderedDict((name, to_numpy(t)) for name, t in outputs.items())
        self.calls.append(call)

    def _role(self, graph: str) -> str:
        if graph == graph_io.PRE:
            return f"layers 0-{self.global_layer - 1} and the global cut"
        if graph == graph_io.EMBED:
            return "token embedding"
        return f"layer {graph.rsplit('_', 1)[1]}"


def record_calls(manifest, layout, config, graphs, inputs_embeds: torch.Tensor) -> list[GraphCall]:
    """Every graph call of one prefill + one greedy decode step of `inputs_embeds` [B, N, D] over `graphs`."""
    recorder = RecordingGraphs(graphs, manifest.global_layer)
    pipeline = GraphPipeline(manifest, layout, config, recorder)
    logits = pipeline.prefill(inputs_embeds, max_new_tokens=2).logits
    recorder.step = "decode"
    pipeline.decode(logits.argmax(dim=-1))
    return recorder.calls


def by_graph(calls: list[GraphCall]) -> dict[str, list[GraphCall]]:
    grouped: dict[str, list[GraphCall]] = {}
    for call in calls:
        grouped.setdefault(call.graph, []).append(call)
    return grouped


def polygraphy_command(onnx_path: str, directory: str, graph: str, atol: float, rtol: float,
                       exact_outputs=(), runner: str = "--onnxrt") -> str:
    """The `polygraphy run` command that checks `graph` against the saved reference outputs.

    exact_outputs (integer outputs) get `name:0` for both tolerances: with a global rtol,
    Polygraphy's elementwise rule would let index 2000 pass for 2001 (relative 5e-4).
    """
    stem = f"{directory}/{graph}"
    exact = "".join(f" {name}:0" for name in exact_outputs)
    return (f"polygraphy run {shlex.quote(onnx_path)} {runner} --load-inputs {shlex.quote(stem + '.inputs.json')} "
            f"--load-outputs {shlex.quote(stem + '.outputs.json')} --atol {atol:g}{exact} --rtol {rtol:g}{exact}")


def save_graph_data(calls: list[GraphCall], directory: Path, manifest, reference: str, atol: float,
                    rtol: float) -> list[str]:
    """Write the per-graph files (module docstring); returns the `polygraphy run` commands, one per graph.

    reference: the runner name stored in the outputs files (e.g. "reference-torch").
    """
    from polygraphy.comparator import IterationResult, RunResults
    from polygraphy.json import save_json

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    commands = []
    for graph, graph_calls in by_graph(calls).items():
        save_json([call.inputs for call in graph_calls], str(directory / f"{graph}.inputs.json"),
                  description=f"{graph} inputs")
        results = RunResults()
        results.append((reference, [IterationResult(outputs=call.outputs, runner_name=reference)
                                    for call in graph_calls]))
        results.save(str(directory / f"{graph}.outputs.json"))
        onnx_path = str(manifest.file(manifest.graphs[graph].onnx))
        exact = [name for name, array in graph_calls[0].outputs.items() if array.dtype.kind in "iub"]
        commands.append(polygraphy_command(onnx_path, str(directory), graph, atol, rtol, exact))
    index = {"reference": reference, "atol": atol, "rtol": rtol,
             "calls": [{"graph": c.graph, "step": c.step, "role": c.role} for c in calls],
             "commands": commands}
    (directory / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    return commands
