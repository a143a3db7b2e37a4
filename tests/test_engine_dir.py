"""Engine directories: the manifest round-trips, and damaged directories are refused in one line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from fastav_export.engine_dir import FORMAT_VERSION, load_engine_dir
from fastav_export.errors import FastAVError

from .test_cli import run_cli


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
    config.write_text(json.dumps(data))
    code, _, err = run_cli(capsys, "run", str(engine_copy))
    assert code == 2 and err.count("\n") == 1 and "unknown graph flavour 'cuda-graphs'" in err


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
    assert code == 2 and "built for at most 128: rebuild with --max-tokens 160" in err
    code, _, err = run_cli(capsys, "run", str(engine), "--max-new-tokens", "50")
    assert code == 2 and "exceed the engine's limit of 20: rebuild with --max-new-tokens 50" in err
    code, _, err = run_cli(capsys, "run", str(engine), "--global-layer", "2")
    assert code == 2 and "split the decoder at layer 3" in err
    code, _, err = run_cli(capsys, "run", str(engine), "--model", "videollama2-tiny")
    assert code == 2 and "drop --model" in err
