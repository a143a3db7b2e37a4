"""ONNX Runtime sessions for an engine directory: optimise at build time, load at run time.

Build time writes each graph optimised at ORT's "extended" level (fusions that do not
depend on the CPU it runs on) into `ort/`, plus the session settings in the manifest.
Run time loads those graphs; the remaining hardware-specific passes run on load.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import FastAVError

ORT_DIR = "ort"
SESSION_SETTINGS = {"graph_optimization_level": "ORT_ENABLE_ALL", "intra_op_num_threads": 0,
                    "providers": ["CPUExecutionProvider"]}


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:  # a core dependency, but users swap it for onnxruntime-gpu
        raise FastAVError("ONNX Runtime is not installed: `pip install onnxruntime` (or onnxruntime-gpu)") from None
    return onnxruntime


def check_onnxruntime_version(built: str | None, engine: Path) -> None:
    """Optimised graphs may use ONNX Runtime's internal ops: refuse another minor version."""
    installed = import_onnxruntime().__version__
    if built is None or built.split(".")[:2] != installed.split(".")[:2]:
        raise FastAVError(f"{engine} was optimised by onnxruntime {built} but {installed} is installed: "
                          "rebuild it with `fastav-export build`")


def _cannot_run(exc: Exception, precision: str, what: str) -> FastAVError:
    if "NOT_IMPLEMENTED" in str(exc) or "NotImplemented" in type(exc).__name__:
        return FastAVError(f"ONNX Runtime's CPU provider has no {precision} kernels for {what}: "
                           f"use --fp16 or fp32 for --backend ort ({precision} graphs are for TensorRT), "
                           "or build with --export-only")
    return FastAVError(f"ONNX Runtime cannot load {what}: {str(exc).splitlines()[0]}")


def optimize_graph(source: Path, target: Path, precision: str) -> None:
    """Write `source` optimised for ONNX Runtime to `target` (weights in <target>.data)."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(target)
    options.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                     target.name + ".data")
    options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    try:
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise _cannot_run(exc, precision, source.name) from None


def load_session(path: Path, settings: dict, precision: str, threads: int | None = None):
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, settings["graph_optimization_level"])
    options.intra_op_num_threads = threads if threads is not None else settings["intra_op_num_threads"]
    try:
        return ort.InferenceSession(str(path), options, providers=settings["providers"])
    except Exception as exc:
        raise _cannot_run(exc, precision, path.name) from None


def run_bound(session, inputs: dict, outputs: dict) -> None:
    """Run with every input and output bound to caller-owned numpy memory (no copies).

    inputs/outputs: name -> C-contiguous numpy array; outputs must have the exact shapes.
    """
    binding = session.io_binding()
    for name, array in inputs.items():
        binding.bind_cpu_input(name, array)
    for name, array in outputs.items():
        binding.bind_output(name, "cpu", 0, array.dtype, list(array.shape), array.ctypes.data)
    session.run_with_iobinding(binding)
