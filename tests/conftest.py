"""Shared fixtures: the tiny seed models, built once per test session."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from fastav_export.testing.models import TINY_MODELS, build_tiny_engine


# The fast tier (`pytest -m "not slow"`) leaves out what takes seconds a test: a test that builds
# an engine (it asks for `tiny_engine`, whose builds export ONNX graphs) is slow wherever it lives;
# other slow tests (real tritonserver, README commands, full media paths, big exports, compilers)
# carry `@pytest.mark.slow` themselves.
ENGINE_FIXTURES = {"tiny_engine"}


def pytest_collection_modifyitems(items):
    for item in items:
        if ENGINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def pytest_configure(config):
    """The fast tier starts no servers, so nothing needs loadgroup's groups (pyproject.toml): idle
    workers take tests from busy ones instead, which finishes it sooner."""
    if "not slow" in (config.getoption("markexpr") or "") and getattr(config.option, "dist", None) == "loadgroup":
        config.option.dist = "worksteal"


def pytest_xdist_auto_num_workers(config) -> int:
    """Workers for `-n auto` (pyproject.toml): 2 for the fast tier, which computes all the time, and 3
    for everything, where a third of the time a worker waits on a tritonserver or a child process."""
    return 2 if "not slow" in (config.getoption("markexpr") or "") else 3


def _shared_temp(tmp_path_factory):
    """The session's temporary directory, or under pytest-xdist the one all workers' directories sit in."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return tmp_path_factory.getbasetemp().parent if worker else tmp_path_factory.getbasetemp()


@pytest.fixture(scope="session", autouse=True)
def _export_cache(tmp_path_factory):
    """Every build of the session (in process or a `fastav-export` child) reuses graphs exported before
    from the same module (export/graph_cache.py): most builds export the same tiny decoders again, and
    exporting takes most of a build. The first export of each graph in the session still runs the exporter,
    and a module or sample that differs in any byte misses the cache (its key covers them all)."""
    from fastav_export.export.graph_cache import ENV_VAR

    previous = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = str(_shared_temp(tmp_path_factory) / "export-cache")
    yield
    if previous is None:
        os.environ.pop(ENV_VAR, None)
    else:
        os.environ[ENV_VAR] = previous


@pytest.fixture(autouse=True)
def _same_global_random_state():
    """Every test starts from one global RNG state, so unseeded random inputs (`torch.randn`) are the
    same whichever tests ran before: a tolerance cannot pass in one test order and fail in another."""
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(params=TINY_MODELS)
def tiny_name(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def tiny_engine(tmp_path_factory):
    """tiny_engine(name, precision="fp32", rollout=True, export_only=False, backend="ort", flavour=None,
    media=False, weights=None) -> manifest, built once per session (tests must not modify the directory:
    copy it first). flavour None: the backend's default (graph_io.DEFAULT_FLAVOUR); media: with encoders
    and tokenizer; weights: "int4" or "int8" quantized linear weights.

    Under pytest-xdist the workers share the builds: each engine is built once, by whichever worker
    asks first, into the directory all workers' temporary directories sit in, under a file lock."""
    from filelock import FileLock

    from fastav_export.engine.manifest import load_engine_dir

    shared = _shared_temp(tmp_path_factory)
    built = {}

    def make(name: str, precision: str = "fp32", rollout: bool = True, export_only: bool = False,
             backend: str = "ort", flavour: str | None = None, media: bool = False, weights: str | None = None):
        from fastav_export.contract.graph_io import DEFAULT_FLAVOUR

        flavour = flavour or DEFAULT_FLAVOUR[backend]
        key = (name, precision, rollout, export_only, backend, flavour, media, weights)
        if key not in built:
            # named like `fastav-export build` names it (the served model's default name)
            variant = "-".join(str(part) for part in (backend, flavour, rollout, export_only, media)
                               ) + (f"-{weights}" if weights else "")
            out = shared / "tiny-engines" / variant / f"{name}-{precision}"
            out.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(out.parent / f"{out.name}.lock")):
                done = out.parent / f"{out.name}.built"
                if done.is_file():
                    built[key] = load_engine_dir(out, verify=False)
                else:
                    built[key] = build_tiny_engine(out, name, precision, rollout, export_only, backend=backend,
                                                   flavour=flavour, media=media, weights=weights)
                    done.touch()
        return built[key]

    return make


def tensorrt_missing() -> str | None:
    """Why TensorRT tests cannot run here, or None when they can."""
    import importlib.util

    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT is not installed (it cannot be installed on this project's CI machines)"
    if not torch.cuda.is_available():
        return "TensorRT needs a CUDA GPU and none is visible"
    return None


requires_tensorrt = pytest.mark.skipif(tensorrt_missing() is not None, reason=str(tensorrt_missing()))
# (engine backend, graph flavour) pairs every parity test runs on: ONNX Runtime runs both
# flavours here; trt skips with its reason where it cannot run.
ENGINE_BACKENDS = [pytest.param(("ort", "ort-contrib"), id="ort-contrib"),
                   pytest.param(("ort", "onnx-standard"), id="ort-standard"),
                   pytest.param(("trt", "onnx-standard"), id="trt", marks=requires_tensorrt)]


@pytest.fixture
def deny_reading(monkeypatch):
    """deny_reading(path): reading `path` fails with PermissionError, as for a file without read permission.

    The mode bits are cleared; when they do not stop this process (root ignores them, and
    CI containers run as root), opening the file through Python's open() is made to fail
    the same way.
    """
    import builtins
    import io
    import os

    denied: set[str] = set()
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.path.abspath(os.fspath(file)) in denied:
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    def deny(path):
        os.chmod(path, 0)
        if os.access(path, os.R_OK):  # root: the mode bits are not enough
            denied.add(os.path.abspath(path))
            monkeypatch.setattr(builtins, "open", guarded_open)
            monkeypatch.setattr(io, "open", guarded_open)

    yield deny


@pytest.fixture(scope="session")
def media_clip(tmp_path_factory):
    """A 3 s test clip (moving coloured frames, a 440 Hz tone on its audio track), written with PyAV."""
    from fastav_export.testing.media_clips import write_test_clip

    return write_test_clip(tmp_path_factory.mktemp("media") / "clip.mp4", seconds=3.0)
