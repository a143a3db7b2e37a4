"""The ONNX files an engine is built from, run as `polygraphy run FILE --onnxrt` runs them.

A backend may load artifacts derived from the ONNX graphs (ONNX Runtime's optimised
copies, TensorRT engines), so a comparison that runs only what one backend loads says
nothing about the graphs another backend builds from, nor about the `polygraphy run`
commands `--save-graph-data` writes (they name those graphs). `SourceGraphs` is a
`GraphRunner` over exactly the files the manifest lists, executed by Polygraphy's own
ONNX Runtime runner, so the per-graph replay (graph_replay.py) checks them against the
reference the same way plain Polygraphy would.
"""

from __future__ import annotations

import numpy as np
import torch

from ..contract.precision import TORCH_DTYPES
from ..engine.manifest import EngineManifest


class SourceGraphs:
    """files: graph name -> its ONNX file, relative to the engine directory."""

    name = "onnx"
    device = torch.device("cpu")

    def __init__(self, manifest: EngineManifest, files: dict[str, str]):
        from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx

        self.dtype = TORCH_DTYPES[manifest.precision]
        self.files = files
        self._runners = {graph: OnnxrtRunner(SessionFromOnnx(str(manifest.file(path)), providers=["cpu"]),
                                             name=f"onnxrt-{graph}")
                         for graph, path in files.items()}
        self._active = set()

    def run(self, graph: str, inputs: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor]) -> None:
        runner = self._runners[graph]
        if graph not in self._active:  # opening a session costs: only for graphs that are replayed
            runner.activate()
            self._active.add(graph)
        results = runner.infer({name: t.detach().cpu().contiguous().numpy() for name, t in inputs.items()})
        for name, tensor in outputs.items():
            array = torch.from_numpy(np.asarray(results[name]))
            tensor.resize_(array.shape).copy_(array)  # a wrong shape then fails the comparison, not the copy

    def close(self) -> None:
        for graph in self._active:
            self._runners[graph].deactivate()
        self._active.clear()
