"""The FastAV runtime on ONNX Runtime (CPU): the shared graph pipeline over ORT sessions.

`OrtGraphs` runs each engine graph with every input and output bound to the caller's
CPU tensors through ONNX Runtime's I/O binding (torch CPU tensors are viewed as
numpy arrays, no copies); `GraphPipeline` does the rest.
"""

from __future__ import annotations

import torch

from ...closing import Closing
from ...contract.layout import TokenLayout
from ...contract.precision import ORT_CPU_PRECISIONS, TORCH_DTYPES
from ...contract.pruning_config import PruningConfig
from ...engine.manifest import EngineManifest
from ...engine.ort_sessions import load_session
from ...errors import FastAVError
from ..graph_pipeline import GraphPipeline


class OrtGraphs(Closing):
    """One ONNX Runtime session per graph of the engine directory."""

    name = "ort"
    device = torch.device("cpu")

    def __init__(self, manifest: EngineManifest, threads: int | None = None):
        if "ort" not in manifest.backends:
            raise FastAVError(f"{manifest.path} was not built for ONNX Runtime (--export-only or --backend trt): "
                              "rebuild it with --backend ort")
        if manifest.precision not in ORT_CPU_PRECISIONS:
            raise FastAVError(f"ONNX Runtime's CPU provider cannot run {manifest.precision} engines: "
                              "build with --fp16 or fp32 for --backend ort")
        self.dtype = TORCH_DTYPES[manifest.precision]
        settings = manifest.backends["ort"].session
        self.sessions = {name: load_session(manifest.file(entry.onnx), settings, manifest.precision, threads)
                         for name, entry in manifest.graphs.items()}

    def run(self, graph: str, inputs: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor]) -> None:
        self.prepare(graph, inputs, outputs)()

    def prepare(self, graph: str, inputs: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor]):
        """The graph bound once to these tensors (torch CPU tensors viewed as numpy: no copies)."""
        for name, tensor in inputs.items():
            if not tensor.is_contiguous():
                raise ValueError(f"{graph}: input {name} is not contiguous")
        return _BoundGraph(self.sessions[graph], inputs, outputs)

    def close(self) -> None:
        """Drop the sessions (ONNX Runtime frees a session's memory when its last reference goes)."""
        self.sessions.clear()



class _BoundGraph:
    """One session bound to fixed tensors; it holds them, since the binding keeps only their addresses."""

    def __init__(self, session, inputs: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor]):
        self.session, self.tensors = session, (dict(inputs), dict(outputs))
        self.binding = bind(session, {name: t.numpy() for name, t in inputs.items()},
                            {name: t.numpy() for name, t in outputs.items()})

    def __call__(self) -> None:
        self.session.run_with_iobinding(self.binding)


class OrtPipeline(GraphPipeline):
    """The `ort` backend: same interface as `TorchReference` (prefill, decode, schedule)."""

    name = "ort"

    def __init__(self, manifest: EngineManifest, layout: TokenLayout, config: PruningConfig,
                 threads: int | None = None, graphs: OrtGraphs | None = None):
        super().__init__(manifest, layout, config, graphs or OrtGraphs(manifest, threads))
        self.owns_graphs = graphs is None


def bind(session, inputs: dict, outputs: dict):
    """An I/O binding of every input and output to caller-owned numpy memory (no copies).

    inputs/outputs: name -> C-contiguous numpy array; outputs must have the exact shapes.
    An output may share its memory with an input (a KV buffer the graph writes in place).
    The binding refers to the arrays' memory, so it can be run again after their
    contents change (`session.run_with_iobinding(binding)`).
    """
    binding = session.io_binding()
    for name, array in inputs.items():
        binding.bind_cpu_input(name, array)
    for name, array in outputs.items():
        binding.bind_output(name, "cpu", 0, array.dtype, list(array.shape), array.ctypes.data)
    return binding
