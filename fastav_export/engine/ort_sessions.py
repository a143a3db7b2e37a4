"""ONNX Runtime sessions for an engine directory's graphs.

The graphs in `onnx/` are what ONNX Runtime runs (nothing ORT-specific is stored:
the session applies every graph optimisation when it loads them). Build time only
checks that each graph loads, so a precision the CPU provider cannot run fails there.

An engine is several sessions run one after another, each with its own thread pool.
ONNX Runtime's threads spin for a while after a run by default, so the idle pools of
the graphs that just ran fought the next graph's threads for the cores (decode was
1.7x slower): every session here stops its spinning at the end of each run
(`session.force_spinning_stop`) and spins only while it computes. All sessions share
one CPU memory arena registered with the environment, instead of each growing its own.
(ONNX Runtime's process-wide thread pool measured the same, but once created it makes
ONNX Runtime refuse every other session in the process that has threads of its own.)
"""

from __future__ import annotations

from pathlib import Path

from ..errors import FastAVError
from ..optional import require

SESSION_SETTINGS = {"graph_optimization_level": "ORT_ENABLE_ALL", "intra_op_num_threads": 0,
                    "providers": ["CPUExecutionProvider"]}
_SHARED_ARENA: list[bool] = []  # registered once per process


def _cannot_run(exc: Exception, precision: str, what: str) -> FastAVError:
    if "NOT_IMPLEMENTED" in str(exc) or "NotImplemented" in type(exc).__name__:
        return FastAVError(f"ONNX Runtime's CPU provider has no {precision} kernels for {what}: "
                           f"use --fp16 or fp32 for --backend ort ({precision} graphs are for TensorRT), "
                           "or build with --export-only")
    return FastAVError(f"ONNX Runtime cannot load {what}: {str(exc).splitlines()[0]}")


def _shared_arena(ort) -> None:
    """Register one CPU arena with ONNX Runtime's environment (sessions opt in), once per process."""
    if _SHARED_ARENA:
        return
    arena = ort.OrtArenaCfg({"arena_extend_strategy": 1})  # grow by what is requested, not by doubling
    memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    ort.create_and_register_allocator(memory, arena)
    _SHARED_ARENA.append(True)


def _session(path: Path, precision: str, optimization: str, providers, threads: int = 0):
    ort = require("onnxruntime")
    _shared_arena(ort)
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, optimization)
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.force_spinning_stop", "1")
    options.add_session_config_entry("session.use_env_allocators", "1")
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise _cannot_run(exc, precision, path.name) from None


def check_graph_loads(path: Path, precision: str) -> None:
    """Build-time check: ONNX Runtime's CPU provider has a kernel for every node of `path`."""
    _session(path, precision, "ORT_ENABLE_BASIC", ["CPUExecutionProvider"])


def load_session(path: Path, settings: dict, precision: str, threads: int | None = None):
    """A session over `path` with the engine's settings and `threads` intra-op threads (0: one per core)."""
    threads = threads if threads is not None else settings["intra_op_num_threads"]
    return _session(path, precision, settings["graph_optimization_level"], settings["providers"], threads)
