"""Open the runtime backend that runs an engine directory.

Every consumer of an engine directory (`fastav-export run`, `compare`, the Triton
model) goes through `open_engine_backend`, so the choice between TensorRT and ONNX
Runtime is made in one place: TensorRT when the engine has TensorRT engines and a
CUDA device is present, ONNX Runtime otherwise. Every backend offers the same
interface: `prefill`, `decode`, `embed`, `embedding_table` and `schedule`.
"""

from __future__ import annotations

from collections.abc import Callable

from .engine_dir import EngineManifest
from .errors import FastAVError
from .layout import TokenLayout
from .pruning_config import PruningConfig, cli_flag

ENGINE_BACKENDS = ("ort", "trt")


def check_request(manifest: EngineManifest, layout: TokenLayout, config: PruningConfig,
                  max_new_tokens: int | None = None, name: Callable[[str], str] = cli_flag) -> None:
    """One-line errors for a layout, pruning config or generation length the engine cannot serve.

    name: how a message names a setting the caller can change (default: `run`'s flags;
    the Triton request parser names request fields).
    """
    if layout.n_tokens > manifest.max_tokens:
        raise FastAVError(f"the layout has {layout.n_tokens} tokens but the engine was built for at most "
                          f"{manifest.max_tokens}: rebuild it with `fastav-export build --max-tokens "
                          f"{layout.n_tokens}`")
    if config.global_layer != manifest.global_layer:
        raise FastAVError(f"the engine's graphs split the decoder at layer {manifest.global_layer}, not "
                          f"{config.global_layer}: drop {name('global_layer')} or rebuild it with "
                          f"`fastav-export build --global-layer {config.global_layer}`")
    if config.global_policy == "rollout" and not manifest.rollout:
        raise FastAVError(f"this engine was built without rollout importance: set {name('global_policy')} "
                          "positional, or rebuild it with `fastav-export build --global-policy rollout`")
    if max_new_tokens is not None and max_new_tokens > manifest.max_new_tokens:
        raise FastAVError(f"{max_new_tokens} new tokens exceed the engine's limit of {manifest.max_new_tokens}: "
                          f"ask for at most {manifest.max_new_tokens} with {name('max_new_tokens')}, or rebuild it "
                          f"with `fastav-export build --max-new-tokens {max_new_tokens}`")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def default_backend(manifest: EngineManifest) -> str:
    """`trt` for an engine with TensorRT engines where TensorRT and a CUDA device are present, else `ort`."""
    import importlib.util

    if "trt" in manifest.backends and importlib.util.find_spec("tensorrt") and cuda_available():
        return "trt"
    return "ort"


def open_graphs(manifest: EngineManifest, backend: str | None = None, threads: int | None = None):
    """The object that runs `manifest`'s graphs (sessions or engines): the expensive part to open.

    One runner serves any number of pipelines (layouts, pruning configs) one request at a time.
    """
    backend = backend or default_backend(manifest)
    if backend == "ort":
        from .ort_backend.pipeline import OrtGraphs

        return OrtGraphs(manifest, threads)
    if backend == "trt":
        if "trt" not in manifest.backends:
            raise FastAVError(f"{manifest.path} has no TensorRT engines: build them with "
                              "`fastav-export build --backend trt` on a machine with TensorRT")
        from .trt_backend.pipeline import TrtGraphs

        return TrtGraphs(manifest)
    raise FastAVError(f"unknown engine backend {backend!r}: use one of {', '.join(ENGINE_BACKENDS)}")


def open_engine_backend(manifest: EngineManifest, layout: TokenLayout, config: PruningConfig,
                        backend: str | None = None, threads: int | None = None, graphs=None):
    """The backend object for `manifest` (validated by `load_engine_dir`) and one request shape.

    graphs: a runner from `open_graphs` to reuse (default: open a new one).
    """
    graphs = graphs or open_graphs(manifest, backend, threads)
    if graphs.name == "trt":
        from .trt_backend.pipeline import TrtPipeline

        return TrtPipeline(manifest, layout, config, graphs=graphs)
    from .ort_backend.pipeline import OrtPipeline

    return OrtPipeline(manifest, layout, config, graphs=graphs)
