"""What runs without TensorRT: its one-line errors, version/GPU checks and backend choice."""

from __future__ import annotations

import copy
import types

import pytest

from fastav_export.engine.manifest import TrtSection
from fastav_export.engine.trt import tensorrt_env
from fastav_export.errors import FastAVError
from fastav_export.models import get_model_spec
from fastav_export.runtime.backends import default_backend, open_engine_backend

from ...cli.test_cli import run_cli
from ...conftest import tensorrt_missing

NAME = "videollama2-tiny"
no_tensorrt = pytest.mark.skipif(tensorrt_missing() is None, reason="TensorRT is installed here")


def _pretend(monkeypatch, version="10.8.0", capability="9.0", gpu="NVIDIA H200"):
    monkeypatch.setattr(tensorrt_env, "import_tensorrt", lambda: types.SimpleNamespace(__version__=version))
    monkeypatch.setattr(tensorrt_env, "gpu_info", lambda: {"gpu": gpu, "compute_capability": capability})


def test_engines_from_another_tensorrt_or_gpu_are_refused(monkeypatch, tmp_path):
    section = TrtSection(engines={}, tensorrt="10.8.0", gpu="NVIDIA H200", compute_capability="9.0")
    _pretend(monkeypatch)
    tensorrt_env.check_engine_compatible(section, tmp_path)  # same version, same architecture
    _pretend(monkeypatch, version="10.9.0")
    with pytest.raises(FastAVError, match=r"TensorRT 10.8.0 engines but TensorRT 10.9.0 is installed: rebuild"):
        tensorrt_env.check_engine_compatible(section, tmp_path)
    _pretend(monkeypatch, capability="8.9", gpu="NVIDIA L40S")
    with pytest.raises(FastAVError, match=r"built for compute capability 9.0 \(NVIDIA H200\) but this GPU is 8.9"):
        tensorrt_env.check_engine_compatible(section, tmp_path)


@no_tensorrt
def test_missing_tensorrt_names_the_extra():
    with pytest.raises(FastAVError, match=r"TensorRT is not installed: `pip install fastav-export\[trt\]`"):
        tensorrt_env.import_tensorrt()


@no_tensorrt
def test_build_backend_trt_fails_in_one_line_before_exporting(capsys, tmp_path):
    code, out, err = run_cli(capsys, "build", "--backend", "trt", "--out", str(tmp_path / "engine"))
    assert code == 2
    assert err.strip().count("\n") == 0 and "TensorRT is not installed" in err
    assert not (tmp_path / "engine").exists()


def test_bf16_is_refused_for_ort_but_allowed_for_trt(capsys, tmp_path):
    code, _, err = run_cli(capsys, "build", "--bf16", "--out", str(tmp_path / "e"))
    assert code == 2 and "--bf16 --backend trt" in err
    code, _, err = run_cli(capsys, "build", "--bf16", "--backend", "trt", "--out", str(tmp_path / "e"))
    assert code == 2 and ("TensorRT" in err or "GPU" in err)  # gets as far as the TensorRT check


def test_an_ort_engine_runs_on_ort_and_refuses_trt(tiny_engine):
    engine = tiny_engine(NAME)
    layout = get_model_spec(NAME).default_layout()
    assert default_backend(engine) == "ort"
    with pytest.raises(FastAVError, match="has no TensorRT engines: build them with `fastav-export build --backend trt`"):
        open_engine_backend(engine, layout, engine.pruning, "trt")


@no_tensorrt
def test_a_trt_engine_without_tensorrt_falls_back_or_fails_in_one_line(tiny_engine):
    engine = copy.copy(tiny_engine(NAME))
    engine.backends = {**engine.backends, "trt": TrtSection(engines={}, tensorrt="10.8.0", compute_capability="9.0")}
    assert default_backend(engine) == "ort"  # TensorRT is not importable: ONNX Runtime serves it
    with pytest.raises(FastAVError, match="TensorRT is not installed"):
        open_engine_backend(engine, get_model_spec(NAME).default_layout(), engine.pruning, "trt")


def test_run_refuses_torch_on_an_engine_and_trt_without_one(capsys, tiny_engine):
    code, _, err = run_cli(capsys, "run", str(tiny_engine(NAME).path), "--backend", "torch")
    assert code == 2 and "not --backend torch" in err
    code, _, err = run_cli(capsys, "run", "--model", NAME, "--backend", "trt")
    assert code == 2 and "--backend trt runs an engine directory" in err
