"""`fastav-export build`: the engine appears whole or not at all."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from fastav_export.build import check_target
from fastav_export.engine_dir import load_engine_dir
from fastav_export.errors import FastAVError

from .conftest import build_tiny_engine


def _start_build(out, cwd):
    return subprocess.Popen([sys.executable, "-m", "fastav_export", "build", "--out", str(out)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait_for(process, text: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    for line in process.stderr:
        if text in line:
            return
        if time.monotonic() > deadline:
            break
    process.kill()
    pytest.fail(f"the build never printed {text!r}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_interrupted_build_leaves_no_engine_directory(tmp_path, sig):
    out = tmp_path / "engines" / "tiny"
    process = _start_build(out, tmp_path)
    _wait_for(process, "export post_4.onnx")  # mid-way: pre and post_3 are written
    process.send_signal(sig)
    process.wait(timeout=60)
    assert process.returncode != 0
    assert not out.exists()
    leftovers = sorted(p.name for p in (tmp_path / "engines").iterdir())
    if sig == signal.SIGTERM:
        assert leftovers == []  # cleaned up on the way out
    else:
        assert leftovers and all(name.startswith(".tiny.partial-") for name in leftovers)
        build_tiny_engine(out, "videollama2-tiny")  # the next build removes the dead partial
        assert sorted(p.name for p in (tmp_path / "engines").iterdir()) == ["tiny"]


def test_rebuild_replaces_an_engine_but_never_other_directories(tiny_engine, tmp_path):
    out = tmp_path / "engine"
    shutil.copytree(tiny_engine("videollama2-tiny", rollout=False).path, out)
    rebuilt = build_tiny_engine(out, "videollama2-tiny", rollout=True)
    assert rebuilt.rollout and load_engine_dir(out).rollout
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(FastAVError, match="is not an engine directory"):
        check_target(precious)
    with pytest.raises(FastAVError):
        build_tiny_engine(precious, "videollama2-tiny")
    assert (precious / "notes.txt").read_text() == "keep me"
