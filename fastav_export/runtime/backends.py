"""Open the runtime backend that runs an engine directory.

Every consumer of an engine directory (`fastav-export run`, `compare`, the Triton
model) goes through `open_engine_backend`, so the choice between TensorRT and ONNX
Runtime is made in one place: TensorRT when the engine has TensorRT engines and a
CUDA device is present, ONNX Runtime otherwise. Every backend offers the same
interface: `prefill`, `decode`, `embed`, `embedding_table` and `schedule`.
"""

from __future__ import annotations

from ..contract.layout import TokenLayout
from ..contract.pruning_config import PruningConfig
from ..engine.manifest import EngineManifest
from ..engine.requests import check_request
from ..errors import FastAVError
from ..optional import available

ENGINE_BACKENDS = ("ort", "trt")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def default_backend(manifest: EngineManifest) -> str:
    """`trt` for an engine with TensorRT engines where TensorRT and a CUDA device are present, else `ort`."""
    if "trt" in manifest.backends and available("tensorrt") and cuda_available():
        return "trt"
    return "ort"


def open_graphs(manifest: EngineManifest, backend: str | None = None, threads: int | None = None):
    """The object that runs `manifest`'s graphs (sessions or engines): the expensive part to open.

    One runner serves any number of pipelines (layouts, pruning configs) one request at a time.
    """
    backend = backend or default_backend(manifest)
    if backend == "ort":
        from .ort.graphs import OrtGraphs

        return OrtGraphs(manifest, threads)
    if backend == "trt":
        if "trt" not in manifest.backends:
            raise FastAVError(f"{manifest.path} has no TensorRT engines: build them with "
                              "`fastav-export build --backend trt` on a machine with TensorRT")
        from .trt.graphs import TrtGraphs

        return TrtGraphs(manifest)
    raise FastAVError(f"unknown engine backend {backend!r}: use one of {', '.join(ENGINE_BACKENDS)}")


def open_engine_backend(manifest: EngineManifest, layout: TokenLayout, config: PruningConfig,
                        backend: str | None = None, threads: int | None = None, graphs=None,
                        max_new_tokens: int | None = None):
    """The backend object for `manifest` (validated by `load_engine_dir`) and one request shape.

    The request's limits are checked first (`check_request`: layout, K, rollout, and
    `max_new_tokens` when given), before anything is loaded.
    graphs: a runner from `open_graphs` to reuse (default: open a new one, which the pipeline's
    `close()` then closes too).
    """
    check_request(manifest, layout, config, max_new_tokens)
    opened = graphs is None
    graphs = graphs or open_graphs(manifest, backend, threads)
    if graphs.name == "trt":
        from .trt.graphs import TrtPipeline as Pipeline
    else:
        from .ort.graphs import OrtPipeline as Pipeline
    pipeline = Pipeline(manifest, layout, config, graphs=graphs)
    pipeline.owns_graphs = opened
    return pipeline
