"""`fastav-export compare`: passes on a faithful engine, fails on a perturbed one and names the graph."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from fastav_export.cli import main
from fastav_export.compare.session import Comparison
from fastav_export.engine.manifest import load_engine_dir, write_manifest
from fastav_export.errors import FastAVError

from ..cli.test_cli import run_cli
from ..families import family_cases
from .conftest import ENGINE_MODEL


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_ort_engine_matches_the_torch_reference_in_fp32(tiny_engine, tmp_path, capsys):
    engine = tiny_engine(ENGINE_MODEL).path
    report = tmp_path / "report.json"
    assert main(["compare", str(engine), "--against", "torch", "--inputs", "2", "--batch", "2", "-q",
                 "--report", str(report)]) == 0
    assert _last_line(capsys.readouterr().out).startswith("PASSED | ")
    data = json.loads(report.read_text())
    assert data["passed"] and data["precision"] == "fp32" and len(data["iterations"]) == 2
    outputs = data["iterations"][0]
    assert set(outputs) == {"logits", "kept.3", "kept.4", "kept.5", "tokens"}
    assert outputs["logits"]["max_abs_diff"] < 1e-4 and outputs["tokens"]["max_abs_diff"] == 0
    assert data["tolerances"]["logits"] == {"atol": 1e-4, "rtol": 0.0}
    assert "first_divergence" not in data


@pytest.mark.parametrize("case", family_cases(where=lambda case: case.positions_rows == 3))
def test_an_mrope_engine_matches_the_torch_reference(case, tiny_engine, tmp_path, capsys):
    """The synthetic feeds reach an M-RoPE engine and the reference with [3, B, N] positions: 0..N-1 in every
    row (what transformers gives text), the same on both sides."""
    engine = tiny_engine(case.model, media=True)
    report = tmp_path / "report.json"
    assert main(["compare", str(engine.path), "--against", "torch", "--inputs", "1", "--batch", "2", "-q",
                 "--report", str(report)]) == 0, capsys.readouterr().err
    assert _last_line(capsys.readouterr().out).startswith("PASSED | ")
    outputs = json.loads(report.read_text())["iterations"][0]
    assert outputs["logits"]["max_abs_diff"] < 1e-4 and outputs["tokens"]["max_abs_diff"] == 0
    assert {f"kept.{layer}" for layer in range(engine.global_layer, engine.dims.num_layers)} <= set(outputs)


def _perturb_weights(engine, graph: str) -> None:
    """Add noise to the largest weight of `graph`'s ONNX model and re-hash the engine."""
    import onnx
    from onnx import numpy_helper

    path = engine / "onnx" / f"{graph}.onnx"
    model = onnx.load(str(path))  # external weights are read into memory
    weight = max(model.graph.initializer, key=lambda t: np.prod(t.dims))
    array = numpy_helper.to_array(weight)
    noisy = array + np.random.default_rng(0).normal(0, 0.5, array.shape).astype(array.dtype)
    weight.CopyFrom(numpy_helper.from_array(noisy, weight.name))
    (engine / "onnx" / f"{graph}.onnx.data").unlink()  # onnx appends to an existing data file
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=f"{graph}.onnx.data", size_threshold=1024)
    write_manifest(engine, load_engine_dir(engine, verify=False))


def test_perturbed_engine_fails_and_the_bisection_names_the_graph(engine_copy, tmp_path, capsys):
    _perturb_weights(engine_copy, "post_4")
    report = tmp_path / "report.json"
    assert main(["compare", str(engine_copy), "--against", "torch", "-q", "--report", str(report)]) == 1
    line = _last_line(capsys.readouterr().out)
    assert line.startswith("FAILED | ") and "first diverging graph: post_4 (layer 4, prefill)" in line
    data = json.loads(report.read_text())
    assert not data["passed"] and data["first_divergence"]["graph"] == "post_4"
    before = data["graphs"][:2]  # pre (with the global cut) and post_3 run before the perturbed layer
    assert [c["graph"] for c in before] == ["pre", "post_3"] and all(c["passed"] for c in before)


def test_against_trt_without_tensorrt_is_one_line_naming_the_extra(tiny_engine, capsys):
    if _has_tensorrt():
        pytest.skip("tensorrt is installed: the TensorRT comparison itself runs on a GPU machine")
    assert main(["compare", str(tiny_engine(ENGINE_MODEL).path), "--against", "trt"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install fastav-export[trt]" in err


def _has_tensorrt() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorrt") is not None


def test_missing_reference_weights_is_one_line(engine_copy, capsys):
    config = engine_copy / "config.json"
    data = json.loads(config.read_text())
    data["source"] = {"kind": "checkpoint", "path": str(engine_copy / "gone")}
    from fastav_export.engine.manifest import write_manifest_data

    write_manifest_data(engine_copy, data)  # an engine built from a checkpoint that was removed since
    assert main(["compare", str(engine_copy), "--against", "torch"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not there any more" in err and "--against ort" in err


def test_load_inputs_round_trip_and_bad_file(tiny_engine, tmp_path, capsys):
    engine = str(tiny_engine(ENGINE_MODEL).path)
    inputs = tmp_path / "inputs.json"
    assert main(["compare", engine, "--against", "ort", "-q", "--save-inputs", str(inputs), "--batch", "2"]) == 0
    assert main(["compare", engine, "--against", "ort", "-q", "--load-inputs", str(inputs)]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    assert main(["compare", engine, "--load-inputs", str(bad)]) == 2
    assert "non-empty list" in capsys.readouterr().err


def test_without_polygraphy_help_works_and_compare_names_the_extra(tiny_engine, monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "polygraphy" or m.startswith("polygraphy.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "polygraphy", None)  # import polygraphy -> ImportError
    with pytest.raises(SystemExit) as exc:
        main(["compare", "--help"])
    assert exc.value.code == 0
    assert main(["compare", str(tiny_engine(ENGINE_MODEL).path)]) == 2
    assert "pip install fastav-export[compare]" in capsys.readouterr().err


def test_a_nan_or_negative_tolerance_is_refused(engine_copy, capsys):
    """With a perturbed layer (compare FAILED), `--atol nan` or `--rtol nan` must not say PASSED."""
    _perturb_weights(engine_copy, "post_4")
    for flag, value in (("--atol", "nan"), ("--rtol", "nan"), ("--atol", "-1"), ("--rtol", "inf")):
        code, _, err = run_cli(capsys, "compare", str(engine_copy), "--against", "torch", flag, value)
        assert code == 2
        assert err.startswith(f"error: argument {flag}") and err.count("\n") == 1, err
    with pytest.raises(FastAVError, match="finite number"):
        Comparison(engine_copy, atol=float("nan"))


def _as_if_derived_artifacts(monkeypatch):
    """Compare as for a backend that loads artifacts built from the ONNX graphs (TensorRT engines):
    the pipeline comparison then runs those, so the onnx/ files must be replayed on their own."""
    from fastav_export.engine.manifest import source_graphs

    monkeypatch.setattr(Comparison, "unchecked_sources", lambda self: source_graphs(self.manifest))


def test_onnx_runtime_engines_run_the_onnx_graphs_themselves(tiny_engine):
    """compare runs ONNX Runtime on the onnx/ files that its saved `polygraphy run` commands name (not
    the optimised ort/ copies), so nothing is left unchecked (and the perturbed-onnx test above fails
    through the pipeline itself)."""
    assert Comparison(tiny_engine(ENGINE_MODEL).path).unchecked_sources() == {}


def test_compare_checks_the_onnx_graphs_the_engine_is_built_from(engine_copy, tmp_path, capsys, monkeypatch):
    """Where a backend loads derived artifacts, a changed onnx/ file fails the comparison and is named."""
    _as_if_derived_artifacts(monkeypatch)
    _perturb_weights(engine_copy, "post_4")
    report = tmp_path / "report.json"
    assert main(["compare", str(engine_copy), "--against", "torch", "-q", "--report", str(report)]) == 1
    data = json.loads(report.read_text())
    assert not data["passed"] and data["sources"]["checked"]
    assert data["sources"]["first_divergence"]["graph"] == "post_4"
    assert data["sources"]["first_divergence"]["file"] == "onnx/post_4.onnx"


def test_a_faithful_engine_passes_with_its_onnx_graphs_checked(tiny_engine, tmp_path, capsys, monkeypatch):
    _as_if_derived_artifacts(monkeypatch)
    report = tmp_path / "report.json"
    assert main(["compare", str(tiny_engine(ENGINE_MODEL).path), "-q", "--report", str(report)]) == 0
    sources = json.loads(report.read_text())["sources"]
    assert sources["checked"] and sources["passed"] and "onnx/post_4.onnx" in sources["files"]


@pytest.mark.parametrize("argv,message", [
    (["--report", "{tmp}"], "--report"),
    (["--save-inputs", "{tmp}/missing/inputs.json"], "--save-inputs"),
    (["--save-graph-data", "{tmp}/file.txt"], "--save-graph-data"),
    (["--inputs", str(10**8)], "of memory but"),  # refused before allocating
])
def test_outputs_and_sizes_are_checked_before_comparing(tiny_engine, tmp_path, capsys, argv, message):
    """`--report <directory>` and `--save-graph-data <file>` are refused before comparing (not with a
    traceback after it); `--inputs 100000000` is refused before any input is built in memory."""
    (tmp_path / "file.txt").write_text("not a directory")
    argv = [arg.format(tmp=tmp_path) for arg in argv]
    assert main(["compare", str(tiny_engine(ENGINE_MODEL).path), *argv]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.err.count("\n") == 1, captured.err
    assert "PASSED" not in captured.out and "FAILED" not in captured.out
