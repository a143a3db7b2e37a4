"""Finding, building and loading libfastav_plugins.so: every failure is one actionable line."""

from __future__ import annotations

import ctypes.util
import shutil
from pathlib import Path

import pytest

from fastav_export.engine.trt import plugin_library
from fastav_export.errors import FastAVError


@pytest.fixture
def build_dir(tmp_path, monkeypatch):
    """Builds go to a temporary directory instead of plugins/build."""
    monkeypatch.delenv(plugin_library.ENV_VAR, raising=False)
    monkeypatch.setattr(plugin_library, "BUILD_DIR", tmp_path / "build")
    return tmp_path / "build"


def test_default_path_is_the_cmake_build_dir(build_dir):
    assert plugin_library.plugin_library_path() == build_dir / "libfastav_plugins.so"


def test_env_var_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(plugin_library.ENV_VAR, str(tmp_path / "custom.so"))
    assert plugin_library.plugin_library_path() == tmp_path / "custom.so"


def test_env_var_to_a_missing_file(tmp_path, monkeypatch):
    monkeypatch.setenv(plugin_library.ENV_VAR, str(tmp_path / "missing.so"))
    with pytest.raises(FastAVError, match="does not exist: point it at a built libfastav_plugins.so"):
        plugin_library.ensure_plugin_library()


def test_env_var_to_a_file_that_is_not_a_shared_library(tmp_path, monkeypatch):
    bogus = tmp_path / "libfastav_plugins.so"
    bogus.write_text("not an ELF file")
    monkeypatch.setenv(plugin_library.ENV_VAR, str(bogus))
    with pytest.raises(FastAVError, match="cannot load the TensorRT plugin library .*LD_LIBRARY_PATH") as error:
        plugin_library.load_plugin_library()
    assert "\n" not in str(error.value)


def test_a_shared_library_without_the_tensorrt_entry_points(monkeypatch):
    libm = ctypes.util.find_library("m")
    candidates = [Path(p) / libm for p in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib")]
    existing = [p for p in candidates if libm and p.is_file()]
    if not existing:
        pytest.skip("no libm shared library found to stand in for a foreign .so")
    monkeypatch.setenv(plugin_library.ENV_VAR, str(existing[0]))
    with pytest.raises(FastAVError, match="is not a TensorRT plugin library .*getCreators"):
        plugin_library.load_plugin_library()


def test_no_build_requested(build_dir):
    with pytest.raises(FastAVError, match="TensorRT plugin library not built .*cmake --build"):
        plugin_library.ensure_plugin_library(build=False)


def test_missing_cmake(build_dir, monkeypatch):
    monkeypatch.setattr(plugin_library.shutil, "which", lambda name: None)
    with pytest.raises(FastAVError, match="needs CMake"):
        plugin_library.ensure_plugin_library()


def test_missing_sources(build_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(plugin_library, "PLUGINS_DIR", tmp_path / "no-sources")
    with pytest.raises(FastAVError, match="plugin sources are not here"):
        plugin_library.ensure_plugin_library()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("nvcc") is None, reason="needs cmake and nvcc")
def test_build_without_tensorrt_fails_with_a_clear_error_and_a_log(build_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORRT_ROOT", str(tmp_path / "no-tensorrt"))
    try:
        plugin_library.ensure_plugin_library()
    except FastAVError as error:
        message = str(error)
    else:
        pytest.skip("TensorRT is installed here: the plugin library was built")
    assert message.startswith("cannot build the TensorRT plugins: TensorRT headers not found (NvInfer.h)")
    assert "TENSORRT_ROOT" in message and str(build_dir / "fastav-build.log") in message
    assert "NvInfer.h" in (build_dir / "fastav-build.log").read_text()
