"""TensorRT, Polygraphy and the GPU: imported lazily, checked with one-line errors.

Engines are only valid for the TensorRT version and GPU architecture that built
them, so the manifest records both (`backends.trt`) and loading compares them with
what is installed here before deserialising anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import FastAVError
from ...optional import require

if TYPE_CHECKING:
    from ..manifest import TrtSection


def import_tensorrt():
    return require("tensorrt")


def import_polygraphy_trt():
    """Polygraphy's TensorRT loaders (needs tensorrt too)."""
    import_tensorrt()
    return require("polygraphy.backend.trt", "building and running TensorRT engines")


def gpu_info() -> dict:
    """{"gpu": name, "compute_capability": "9.0"} of the current CUDA device."""
    import torch

    if not torch.cuda.is_available():
        raise FastAVError("TensorRT needs an NVIDIA GPU and a CUDA build of torch: none is visible here "
                          "(use --backend ort on CPU)")
    major, minor = torch.cuda.get_device_capability()
    return {"gpu": torch.cuda.get_device_name(), "compute_capability": f"{major}.{minor}"}


def require_trt_build_environment() -> None:
    """Everything `build --backend trt` needs, checked (and the plugin built) before the slow export."""
    from .plugin_library import load_plugin_library

    import_polygraphy_trt()
    gpu_info()
    load_plugin_library()  # compiles plugins/ on first use: fail here, not after minutes of export


def check_engine_compatible(trt_section: TrtSection, engine: Path) -> None:
    """Refuse engines from another TensorRT version or GPU architecture."""
    installed = import_tensorrt().__version__
    built = trt_section.tensorrt
    if built != installed:
        raise FastAVError(f"{engine} holds TensorRT {built} engines but TensorRT {installed} is installed: "
                          "rebuild with `fastav-export build --backend trt`")
    here = gpu_info()
    if trt_section.compute_capability != here["compute_capability"]:
        raise FastAVError(f"{engine} was built for compute capability {trt_section.compute_capability} "
                          f"({trt_section.gpu}) but this GPU is {here['compute_capability']} "
                          f"({here['gpu']}): rebuild with `fastav-export build --backend trt` here")
