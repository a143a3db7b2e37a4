"""Optional packages, imported on first use: a missing one is one error line that says what installs it.

Every lazy import of an optional (or swappable) package goes through `require`, so a
missing TensorRT, Polygraphy or tritonclient reads the same wherever it is needed.
"""

from __future__ import annotations

import importlib
import importlib.util

from .errors import MissingDependencyError

# top-level module -> (the name users know it by, what installs it)
PACKAGES = {
    "tensorrt": ("TensorRT", "`pip install fastav-export[trt]` (TensorRT 10 or newer) on a machine with an NVIDIA GPU"),
    "polygraphy": ("Polygraphy", "`pip install fastav-export[compare]`"),
    "tritonclient": ("tritonclient", "`pip install fastav-export[triton]`"),
    "onnxruntime": ("ONNX Runtime", "`pip install onnxruntime` (or onnxruntime-gpu)"),  # core, but users swap it
    "onnxruntime_genai": ("onnxruntime-genai", "`pip install fastav-export[bench]`"),
    "fastapi": ("FastAPI", "`pip install fastav-export[openai]`"),
    "uvicorn": ("uvicorn", "`pip install fastav-export[openai]`"),
}


def missing(module: str, feature: str | None = None) -> MissingDependencyError:
    name, install = PACKAGES[module.split(".")[0]]
    return MissingDependencyError(f"{name} is not installed: {install}" + (f" ({feature} needs it)" if feature else ""))


def require(module: str, feature: str | None = None):
    """`module` imported, or a MissingDependencyError naming what installs its package."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise missing(module, feature) from None


def check_installed(module: str, feature: str | None = None) -> None:
    """Like `require`, without importing (TensorRT's import is slow and initialises CUDA)."""
    if not available(module):
        raise missing(module, feature)


def available(module: str) -> bool:
    return importlib.util.find_spec(module.split(".")[0]) is not None
