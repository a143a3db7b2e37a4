"""The launcher's check that the python backend stub loads this Python's libpython: the loader's answer
(`ldd`) read from fake outputs, each mismatch one line saying what to do, and the real stub of this
machine's nvidia-pytriton wheel under the launcher's environment and under a bare one."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastav_export.errors import FastAVError
from fastav_export.serving import stub_libpython
from fastav_export.serving.stub_libpython import StubLibpython, check_stub_libpython, libpython_problem, parse_ldd

LDD = """\
\tlinux-vdso.so.1 (0x00007fd8c60a6000)
\tlibcudart-09529672.so.12.6.77 => /site/nvidia_pytriton.libs/libcudart-09529672.so.12.6.77 (0x00007fd8c5c00000)
\tlibpython3.11.so.1.0 => {resolved} (0x00007fd8c5400000)
\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007fd8c5000000)
"""


def test_ldd_output_gives_the_needed_libpython_and_the_file_it_resolves_to():
    found = parse_ldd(LDD.format(resolved="/usr/lib/libpython3.11.so.1.0"))
    assert found == StubLibpython("libpython3.11.so.1.0", Path("/usr/lib/libpython3.11.so.1.0"))
    assert parse_ldd(LDD.format(resolved="not found")) == StubLibpython("libpython3.11.so.1.0", None)
    assert parse_ldd("\tnot a dynamic executable\n") is None


@pytest.fixture
def pythons(tmp_path):
    """(this Python's libpython, another build's libpython of the same version)."""
    ours, theirs = tmp_path / "pyenv" / "libpython3.11.so.1.0", tmp_path / "system" / "libpython3.11.so.1.0"
    for path in (ours, theirs):
        path.parent.mkdir()
        path.write_bytes(b"\x7fELF")
    return ours, theirs


def test_the_stub_loading_this_pythons_libpython_passes(pythons):
    ours, _ = pythons
    assert libpython_problem(StubLibpython("libpython3.11.so.1.0", ours), ours, "3.11") is None


@pytest.mark.parametrize("case, words", [
    ("other build", ["would load", "system", "not this Python's", "_ssl", stub_libpython.LAUNCHER]),
    ("not found", ["finds no libpython3.11.so.1.0", "LD_LIBRARY_PATH"]),
    ("static python", ["no shared libpython", "--enable-shared"]),
    ("other version", ["Python 3.10", "Python 3.11"]),
])
def test_each_mismatch_is_one_line_saying_what_to_do(pythons, case, words):
    ours, theirs = pythons
    found, python, version = {
        "other build": (StubLibpython("libpython3.11.so.1.0", theirs), ours, "3.11"),
        "not found": (StubLibpython("libpython3.11.so.1.0", None), ours, "3.11"),
        "static python": (StubLibpython("libpython3.11.so.1.0", theirs), None, "3.11"),
        "other version": (StubLibpython("libpython3.10.so.1.0", theirs), ours, "3.11"),
    }[case]
    problem = libpython_problem(found, python, version)
    assert problem is not None and "\n" not in problem and all(word in problem for word in words), problem


def test_the_check_raises_the_problem_and_passes_without_ldd(pythons, monkeypatch, tmp_path):
    ours, theirs = pythons
    monkeypatch.setattr(stub_libpython, "this_libpython", lambda: ours)
    monkeypatch.setattr(stub_libpython, "resolve_stub_libpython",
                        lambda stub, env: StubLibpython("libpython3.11.so.1.0", theirs))
    monkeypatch.setattr(stub_libpython, "python_version", lambda: "3.11")
    with pytest.raises(FastAVError, match="would load"):
        check_stub_libpython(tmp_path / "stub", {})
    monkeypatch.setattr(stub_libpython, "resolve_stub_libpython", lambda stub, env: None)  # no ldd here
    check_stub_libpython(tmp_path / "stub", {})


def test_a_fake_stub_that_is_no_executable_resolves_to_nothing(tmp_path):
    stub = tmp_path / "triton_python_backend_stub"
    stub.write_text("not a binary\n")
    assert stub_libpython.resolve_stub_libpython(stub, {"PATH": "/usr/bin:/bin"}) is None


def _installed_stub():
    from fastav_export.serving.tritonserver import find_tritonserver

    try:
        return find_tritonserver()
    except FastAVError as exc:
        pytest.skip(str(exc))


def test_the_launchers_environment_makes_the_real_stub_load_this_python():
    from fastav_export.serving.tritonserver import server_env

    install = _installed_stub()
    if stub_libpython.this_libpython() is None:
        pytest.skip("this Python has no shared libpython")
    check_stub_libpython(install.stub, server_env(install))


def test_a_bare_environment_is_refused_where_the_system_has_another_libpython():
    """What running `tritonserver` directly gives the stub: the loader's default search."""
    import os

    install = _installed_stub()
    bare = {key: value for key, value in os.environ.items() if key != "LD_LIBRARY_PATH"}
    found = stub_libpython.resolve_stub_libpython(install.stub, bare)
    ours = stub_libpython.this_libpython()
    if found is None or ours is None or (found.resolved is not None and found.resolved.samefile(ours)):
        pytest.skip("here the stub finds this Python's libpython without help")
    with pytest.raises(FastAVError, match="python -m fastav_export.serving.tritonserver"):
        check_stub_libpython(install.stub, bare)


def test_the_launcher_refuses_to_start_a_server_whose_stub_would_load_another_libpython(pythons, monkeypatch,
                                                                                          tmp_path, capsys):
    from fastav_export.serving import tritonserver

    _installed_stub()
    ours, theirs = pythons
    monkeypatch.setattr(stub_libpython, "this_libpython", lambda: ours)
    monkeypatch.setattr(stub_libpython, "python_version", lambda: "3.11")
    monkeypatch.setattr(stub_libpython, "resolve_stub_libpython",
                        lambda stub, env: StubLibpython("libpython3.11.so.1.0", theirs))
    monkeypatch.setattr(tritonserver, "default_backend_dir", lambda: tmp_path / "backends")
    started = []
    monkeypatch.setattr(tritonserver.subprocess, "Popen", lambda *args, **kwargs: started.append(args))
    assert tritonserver.main(["--model-repository", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the python backend stub would load") and err.count("\n") == 1, err
    assert not started


class _BrokenExtension:
    """A meta-path finder that fails importing fastav_export's serving engine the way a stub with another
    build's libpython fails (the venv's _ssl extension misses a symbol of that libpython)."""

    def find_spec(self, name, path=None, target=None):
        if name == "fastav_export.serving.engine":
            raise ImportError("/venv/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so: "
                              "undefined symbol: _PyModule_Add")
        return None


def test_a_model_loaded_by_a_stub_with_another_libpython_says_to_use_the_launcher(monkeypatch):
    """What a bare `tritonserver` logs for each model: the launcher's advice, not "install fastav-export"."""
    import sys
    import types
    from string import Template

    from fastav_export.serving import repository

    template = (Path(repository.__file__).parent / "templates" / "model.py").read_text()
    source = Template(template).safe_substitute(fastav_version="test")
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", types.ModuleType("triton_python_backend_utils"))
    monkeypatch.delitem(sys.modules, "fastav_export.serving.engine", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_BrokenExtension(), *sys.meta_path])
    with pytest.raises(ImportError) as caught:
        exec(compile(source, "model.py", "exec"), {"__name__": "model"})
    message = str(caught.value)
    assert "undefined symbol" in message and stub_libpython.LAUNCHER in message and "\n" not in message, message
    assert "install it into" not in message, message
