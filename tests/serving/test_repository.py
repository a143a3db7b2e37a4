"""`fastav-export triton`: template rendering and where it writes."""

from __future__ import annotations

import pytest

from fastav_export.cli import main
from fastav_export.errors import FastAVError
from fastav_export.serving import repository
from fastav_export.serving.repository import (
    MARKER,
    RepositorySettings,
    render,
    render_repository,
)


def _tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_render_fails_on_an_unfilled_placeholder():
    assert render("a ${x} b", {"x": 1}, "t") == "a 1 b"
    with pytest.raises(FastAVError, match=r"placeholder \$\{y\} with no value"):
        render("a ${x} ${y}", {"x": 1}, "t")
    with pytest.raises(FastAVError, match="malformed"):
        render("cost $ 5", {}, "t")


def test_cli_writes_two_models_inside_out_only(tiny_engine, tmp_path, capsys):
    engine = tiny_engine("videollama2-tiny")
    out = tmp_path / "parent" / "repo"
    out.parent.mkdir()
    (out.parent / "keep.txt").write_text("x")
    assert main(["triton", str(engine.path), "--out", str(out), "--name", "vl2", "--instances", "2"]) == 0
    assert "vl2, vl2_oneshot" in capsys.readouterr().out
    assert _tree(out.parent) == ["keep.txt", "repo", *[f"repo/{p}" for p in _tree(out)]]
    assert _tree(out) == [MARKER, "vl2", "vl2/1", "vl2/1/model.py", "vl2/config.pbtxt",
                          "vl2_oneshot", "vl2_oneshot/1", "vl2_oneshot/1/model.py", "vl2_oneshot/config.pbtxt"]
    config = (out / "vl2" / "config.pbtxt").read_text()
    assert "decoupled: true" in config and "count: 2" in config and str(engine.path.resolve()) in config
    assert "decoupled: false" in (out / "vl2_oneshot" / "config.pbtxt").read_text()
    assert "${" not in config + (out / "vl2" / "1" / "model.py").read_text()
    compile((out / "vl2" / "1" / "model.py").read_text(), "model.py", "exec")
    # Re-rendering replaces the earlier rendering (and only it).
    assert main(["triton", str(engine.path), "--out", str(out), "--name", "other"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "other", "other_oneshot"]


def test_unfilled_template_writes_nothing(tiny_engine, tmp_path, monkeypatch):
    engine = tiny_engine("videollama2-tiny")
    monkeypatch.setattr(repository, "template_text", lambda name: "name: ${model_name} ${forgotten}")
    with pytest.raises(FastAVError, match="forgotten"):
        render_repository(engine, tmp_path / "repo", RepositorySettings("m"))
    assert not (tmp_path / "repo").exists()


def test_refuses_unrelated_directories_and_bad_names(tiny_engine, tmp_path, capsys):
    engine = tiny_engine("videollama2-tiny")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert main(["triton", str(engine.path), "--out", str(tmp_path / "busy")]) == 2
    assert "did not write" in capsys.readouterr().err
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    for name in ("../escape", "a/b", ".hidden"):
        assert main(["triton", str(engine.path), "--out", str(tmp_path / "r"), "--name", name]) == 2
        assert "is not a model name" in capsys.readouterr().err
    assert main(["triton", str(engine.path), "--out", str(tmp_path / "r"), "--max-new-tokens", "999"]) == 2
    assert "engine's limit" in capsys.readouterr().err
    assert _tree(tmp_path) == ["busy", "busy/notes.txt"]


@pytest.mark.parametrize("out_name,engine_name,message", [
    ("my repo", None, "holds whitespace"),  # the stubs crashed (`std::invalid_argument stol`)
    ("repü", None, "non-ASCII"),  # the stub crashed (UnicodeEncodeError 'ascii')
    ("repo", "engé", "non-ASCII"),  # the model failed as "... is not a directory"
])
def test_paths_the_python_backend_cannot_use_are_refused_at_render_time(tiny_engine, tmp_path, capsys,
                                                                          out_name, engine_name, message):
    """Names and values that would render fine and then never load are refused while rendering."""
    import shutil

    engine = tiny_engine("videollama2-tiny").path
    if engine_name is not None:
        engine = shutil.copytree(engine, tmp_path / engine_name / "engine")
    out = tmp_path / out_name
    assert main(["triton", str(engine), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()
