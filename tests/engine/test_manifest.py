"""Engine directories: the manifest round-trips, and damaged directories are refused in one line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from fastav_export.engine.manifest import FORMAT_VERSION, REBUILD, TrtSection, load_engine_dir
from fastav_export.errors import FastAVError

from ..cli.test_cli import run_cli


@pytest.fixture
def engine_copy(tiny_engine, tmp_path):
    source = tiny_engine("videollama2-tiny")
    target = tmp_path / "engine"
    shutil.copytree(source.path, target)
    return target


def test_manifest_records_what_was_built(tiny_engine):
    manifest = load_engine_dir(tiny_engine("videollama2-tiny").path)
    data = json.loads((manifest.path / "config.json").read_text())
    assert data["model"] == "videollama2-tiny" and data["precision"] == "fp32"
    assert data["limits"] == {"max_tokens": 128, "max_new_tokens": 20}
    assert data["pruning"]["global_layer"] == 3 and data["rollout"] is True
    assert {"torch", "onnx", "onnxruntime", "fastav-export"} <= set(data["versions"])
    assert data["flavour"] == "ort-contrib" and set(data["backends"]) == {"ort"}
    assert data["backends"]["ort"]["session"]["graph_optimization_level"] == "ORT_ENABLE_ALL"
    assert all(entry["onnx"].startswith("onnx/") for entry in data["graphs"].values())
    on_disk = {str(p.relative_to(manifest.path)) for p in manifest.path.rglob("*") if p.is_file()}
    assert on_disk - {"config.json"} == set(data["files"])
    assert all(len(digest) == 64 for digest in data["files"].values())


def test_tampered_weights_are_refused(engine_copy, capsys):
    weights = engine_copy / "onnx" / "post_4.onnx.data"
    data = bytearray(weights.read_bytes())
    data[100] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(FastAVError, match="post_4.onnx.data does not match the sha256"):
        load_engine_dir(engine_copy)
    code, _, err = run_cli(capsys, "run", str(engine_copy))
    assert code == 2 and err.count("\n") == 1 and "rebuild it with `fastav-export build`" in err


def test_missing_graph_is_refused(engine_copy, capsys):
    (engine_copy / "onnx" / "post_5.onnx").unlink()
    code, _, err = run_cli(capsys, "run", str(engine_copy))
    assert code == 2 and err.count("\n") == 1 and "onnx/post_5.onnx is missing" in err


def test_other_format_versions_and_non_engines_are_refused(engine_copy, tmp_path, capsys):
    config = engine_copy / "config.json"
    data = json.loads(config.read_text())
    data["format_version"] = FORMAT_VERSION + 1
    config.write_text(json.dumps(data))
    with pytest.raises(FastAVError, match=f"format {FORMAT_VERSION + 1}"):
        load_engine_dir(engine_copy)
    with pytest.raises(FastAVError, match="not an engine directory"):
        load_engine_dir(tmp_path)
    code, _, err = run_cli(capsys, "run", str(tmp_path / "nowhere"))
    assert code == 2 and "is not a directory" in err


def test_unknown_graph_flavours_are_refused(engine_copy, capsys):
    config = engine_copy / "config.json"
    data = json.loads(config.read_text())
    data["flavour"] = "cuda-graphs"
    from fastav_export.engine.manifest import write_manifest_data

    write_manifest_data(engine_copy, data)  # sealed, as if a build had written it
    code, _, err = run_cli(capsys, "run", str(engine_copy))
    assert code == 2 and err.count("\n") == 1
    assert "flavour is 'cuda-graphs', expected one of ort-contrib, onnx-standard" in err


def test_layout_that_does_not_match_is_refused(tiny_engine, tmp_path, capsys):
    engine = tiny_engine("videollama2-tiny").path
    layout = tmp_path / "layout.json"
    layout.write_text(json.dumps([{"kind": "text", "length": 10}, {"kind": "video", "length": 30}]))
    embeds = tmp_path / "embeds.npy"
    np.save(embeds, np.zeros((72, 64), np.float32))
    code, _, err = run_cli(capsys, "run", str(engine), "--layout", str(layout), "--embeds", str(embeds))
    assert code == 2 and err.count("\n") == 1 and "the layout covers 40 tokens but the input embeddings have 72" in err
    layout.write_text(json.dumps([{"kind": "text", "length": 100}, {"kind": "video", "length": 60}]))
    code, _, err = run_cli(capsys, "run", str(engine), "--layout", str(layout))
    assert code == 2 and "built for at most 128: rebuild it with `fastav-export build --max-tokens 160`" in err
    code, _, err = run_cli(capsys, "run", str(engine), "--max-new-tokens", "50")
    assert code == 2 and "exceed the engine's limit of 20" in err and "build --max-new-tokens 50`" in err
    code, _, err = run_cli(capsys, "run", str(engine), "--global-layer", "2")
    assert code == 2 and "split the decoder at layer 3" in err
    code, _, err = run_cli(capsys, "run", str(engine), "--model", "videollama2-tiny")
    assert code == 2 and "drop --model" in err


# ---- the manifest itself ---------------------------------------------------------------
EDITS = {
    "hidden_size 'abc'": lambda data: data["dims"].update(hidden_size="abc"),
    "num_layers 1000": lambda data: data["dims"].update(num_layers=1000),
    "graphs as a list": lambda data: data.update(graphs=list(data["graphs"].values())),
    "precision changed": lambda data: data.update(precision="fp16"),
    "global_layer changed": lambda data: data["pruning"].update(global_layer=2),
    "vocab_size 1e12": lambda data: data["dims"].update(vocab_size=10**12),
    "limits as text": lambda data: data.update(limits="many"),
    "a graph outside the directory": lambda data: data["graphs"]["pre"].update(onnx="../../etc/passwd"),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edited_manifest_is_reported_as_edited(engine_copy, capsys, edit):
    """Edited fields surfaced as ONNX Runtime, TypeError or AttributeError tracebacks."""
    config = engine_copy / "config.json"
    data = json.loads(config.read_text())
    EDITS[edit](data)
    config.write_text(json.dumps(data))
    code, _, err = run_cli(capsys, "run", str(engine_copy), "--max-new-tokens", "1")
    assert code == 2 and err.count("\n") == 1 and "was edited after the build" in err, err


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_a_sealed_but_inconsistent_manifest_is_refused_by_its_schema(engine_copy, capsys, edit):
    """The same edits with the integrity digest recomputed (as a tool that rewrote the manifest
    would) are caught by the schema and consistency checks, still in one line."""
    from fastav_export.engine.manifest import write_manifest_data

    data = json.loads((engine_copy / "config.json").read_text())
    EDITS[edit](data)
    write_manifest_data(engine_copy, data)
    code, _, err = run_cli(capsys, "run", str(engine_copy), "--max-new-tokens", "1")
    assert code == 2 and err.count("\n") == 1 and "config.json" in err and REBUILD in err, err


def test_unreadable_engine_files_are_one_line(engine_copy, capsys, deny_reading):
    """An unreadable graph file is a one-line error, not a PermissionError from the sha256 check."""
    deny_reading(engine_copy / "onnx" / "post_4.onnx.data")
    code, _, err = run_cli(capsys, "run", str(engine_copy))
    assert code == 2 and err.count("\n") == 1 and "cannot read" in err and "post_4.onnx.data" in err, err
    deny_reading(engine_copy / "config.json")
    code, _, err = run_cli(capsys, "run", str(engine_copy))
    assert code == 2 and err.count("\n") == 1 and "Permission denied" in err, err


def test_backend_files_name_what_each_backend_loads(tiny_engine):
    from fastav_export.engine.manifest import backend_files, source_graphs

    manifest = load_engine_dir(tiny_engine("videollama2-tiny").path)
    sources = source_graphs(manifest)
    assert sources["post_4"] == "onnx/post_4.onnx"
    assert backend_files(manifest, "ort") == sources  # ONNX Runtime loads the onnx/ graphs themselves
    assert backend_files(manifest, "trt") == sources  # no TensorRT section: it would build from onnx/
    manifest.backends["trt"] = TrtSection(engines={"post_4": "onnx/post_4.engine"}, tensorrt="10.8.0")
    assert backend_files(manifest, "trt") == {**sources, "post_4": "onnx/post_4.engine"}
