"""The FastAV runtime on ONNX Runtime (CPU): the shared graph pipeline over ORT sessions.

`OrtGraphs` runs each engine graph with every input and output bound to the caller's
CPU tensors through ONNX Runtime's I/O binding (torch CPU tensors are viewed as
numpy arrays, no copies); `GraphPipeline` does the rest.
"""

from __future__ import annotations

import torch

from ..engine_dir import EngineManifest
from ..errors import FastAVError
from ..graph_pipeline import TORCH_DTYPES, GraphPipeline
from ..layout import TokenLayout
from ..pruning_config import PruningConfig
from .sessions import check_onnxruntime_version, load_session, run_bound

ORT_PRECISIONS = ("fp32", "fp16")  # ONNX Runtime's CPU provider has no bf16 kernels


class OrtGraphs:
    """One ONNX Runtime session per graph of the engine directory."""

    name = "ort"
    device = torch.device("cpu")

    def __init__(self, manifest: EngineManifest, threads: int | None = None):
        if "ort" not in manifest.backends:
            raise FastAVError(f"{manifest.path} has no ONNX Runtime artifacts (built with --export-only): "
                              "rebuild it without --export-only")
        if manifest.precision not in ORT_PRECISIONS:
            raise FastAVError(f"ONNX Runtime's CPU provider cannot run {manifest.precision} engines: "
                              "build with --fp16 or fp32 for --backend ort")
        self.dtype = TORCH_DTYPES[manifest.precision]
        ort = manifest.backends["ort"]
        check_onnxruntime_version(manifest.versions.get("onnxruntime"), manifest.path)
        self.sessions = {name: load_session(manifest.file(path), ort["session"], manifest.precision, threads)
                         for name, path in ort["models"].items()}

    def run(self, graph: str, inputs: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor]) -> None:
        run_bound(self.sessions[graph], {name: tensor.contiguous().numpy() for name, tensor in inputs.items()},
                  {name: tensor.numpy() for name, tensor in outputs.items()})


class OrtPipeline(GraphPipeline):
    """The `ort` backend: same interface as `TorchReference` (prefill, decode, schedule)."""

    name = "ort"

    def __init__(self, manifest: EngineManifest, layout: TokenLayout, config: PruningConfig,
                 threads: int | None = None, graphs: OrtGraphs | None = None):
        super().__init__(manifest, layout, config, graphs or OrtGraphs(manifest, threads))
