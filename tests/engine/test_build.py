"""`fastav-export build`: the engine appears whole or not at all."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from fastav_export.engine.build import check_target
from fastav_export.engine.manifest import load_engine_dir
from fastav_export.errors import FastAVError
from fastav_export.testing.models import build_tiny_engine

from ..cli.test_cli import run_cli


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


@pytest.mark.slow
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


@pytest.mark.slow
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


# ---- what `build --out` may replace -------------------------------------------------
def _tree(path) -> dict:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_a_directory_with_a_foreign_config_json_is_never_replaced(tmp_path, capsys):
    """`build --out d` deleted d/notes.txt when d held any config.json (e.g. a Hugging Face snapshot)."""
    d = tmp_path / "d"
    d.mkdir()
    (d / "config.json").write_text('{"my": 1}')
    (d / "notes.txt").write_text("keep")
    before = _tree(d)
    code, _, err = run_cli(capsys, "build", "--out", str(d))
    assert code == 2 and "is not an engine directory" in err and err.count("\n") == 1, err
    assert _tree(d) == before


def test_building_over_the_checkpoint_it_reads_is_refused(tmp_path, capsys):
    """`build --checkpoint victim --out victim` is refused before the checkpoint's files are touched."""
    from ..models.test_checkpoint import tiny_model, write_videollama2

    victim = write_videollama2(tmp_path / "victim", tiny_model())
    before = _tree(victim)
    code, _, err = run_cli(capsys, "build", "--checkpoint", str(victim), "--model", "videollama2-tiny",
                           "--out", str(victim))
    assert code == 2 and "is also the input --checkpoint" in err and err.count("\n") == 1, err
    assert _tree(victim) == before


def test_an_engine_holding_a_user_file_is_not_replaced(tiny_engine, tmp_path, capsys):
    out = tmp_path / "engine"
    shutil.copytree(tiny_engine("videollama2-tiny", rollout=False).path, out)
    (out / "onnx" / "my-notes.txt").write_text("mine")
    code, _, err = run_cli(capsys, "build", "--out", str(out))
    assert code == 2 and "my-notes.txt" in err and "would be deleted" in err, err
    assert (out / "onnx" / "my-notes.txt").read_text() == "mine"


def test_out_dot_is_refused_before_building(tiny_engine, tmp_path, capsys, monkeypatch):
    """`build --out .` inside an engine directory built for 20 s, then crashed renaming `.` (EBUSY)."""
    out = tmp_path / "engine"
    shutil.copytree(tiny_engine("videollama2-tiny", rollout=False).path, out)
    before = _tree(out)
    monkeypatch.chdir(out)
    started = time.monotonic()
    code, _, err = run_cli(capsys, "build", "--out", ".")
    assert code == 2 and "current directory" in err and err.count("\n") == 1, err
    assert time.monotonic() - started < 10  # refused before the export, not after
    assert _tree(out) == before


def _unwritable_directory(tmp_path) -> Path:
    """A directory that refuses new entries to this process: a read-only one, or for root (whom
    mode bits do not stop) sysfs."""
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    for candidate in (read_only, Path("/sys")):
        try:
            os.rmdir(tempfile.mkdtemp(dir=candidate))
        except OSError:
            return candidate
    pytest.skip("no directory here refuses new entries to this process")


def test_a_read_only_build_directory_is_one_line(tmp_path, capsys):
    """Building below a directory that takes no new files is a one-line error, not a traceback."""
    out = _unwritable_directory(tmp_path) / "fastav-engine"
    code, _, err = run_cli(capsys, "build", "--out", str(out))
    assert code == 2 and "cannot write" in err and err.count("\n") == 1, err
    assert not out.exists()


# ---- how many tokens a decoder-only build with --layout takes --------------------------
@pytest.mark.slow
def test_a_decoder_only_build_is_sized_from_its_layout(tmp_path, capsys):
    """With --layout the engine takes that layout (not the family's longest clip), so a checkpoint with
    few positions builds without --max-tokens."""
    import json

    from fastav_export.contract.layout import TokenLayout
    from fastav_export.models.families.video_salmonn2.spec import TINY_INTERLEAVE
    from fastav_export.testing.snapshots import write_tiny_video_salmonn2_snapshot

    snapshot = write_tiny_video_salmonn2_snapshot(tmp_path / "snapshot")
    config = json.loads((snapshot / "config.json").read_text())
    (snapshot / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 4096}))
    layout = TINY_INTERLEAVE.layout_for_duration(4.0, 6, 6)
    (tmp_path / "small.json").write_text(json.dumps(layout.to_json()))
    out = tmp_path / "engine"
    code, _, err = run_cli(capsys, "build", "--checkpoint", str(snapshot), "--model", "video-salmonn2",
                           "--decoder-only", "--layout", str(tmp_path / "small.json"), "--export-only",
                           "--max-new-tokens", "16", "--out", str(out))
    assert code == 0, err
    manifest = load_engine_dir(out)
    assert manifest.layout == TokenLayout.load(tmp_path / "small.json") and manifest.max_tokens == layout.n_tokens
