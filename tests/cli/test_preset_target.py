"""`--preset` on build, run and flops: refused for another model family or layout kind, a warning for another size."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fastav_export.contract.preset import PresetTarget, preset_json
from fastav_export.models import get_model_spec

from .test_cli import run_cli


def write_preset(path, name: str):
    spec = get_model_spec(name)
    target = PresetTarget.of(spec.name, spec.family, spec.default_layout(), spec.dims.num_layers)
    path.write_text(preset_json(replace(spec.preset, global_layer=3), {}, target))
    return path


@pytest.mark.parametrize("argv", [["flops", "--model", "video-salmonn2-tiny"],
                                  ["build", "--model", "video-salmonn2-tiny"],
                                  ["run", "--model", "video-salmonn2-tiny", "--backend", "torch"]])
def test_a_videollama2_preset_is_refused_for_video_salmonn2(argv, tmp_path, capsys):
    preset = write_preset(tmp_path / "vl2.json", "videollama2-tiny")
    code, out, err = run_cli(capsys, *argv, "--preset", preset, *(["--out", tmp_path / "e"] if argv[0] == "build"
                                                                    else []))
    assert code == 2 and err.count("\n") == 1 and "calibrated for videollama2-tiny (blocks layout)" in err, err
    assert not (tmp_path / "e").exists()


def test_an_engine_refuses_a_preset_of_the_other_layout_kind(tiny_engine, tmp_path, capsys):
    manifest = tiny_engine("videollama2-tiny")
    preset = write_preset(tmp_path / "salmonn.json", "video-salmonn2-tiny")
    code, _, err = run_cli(capsys, "run", manifest.path, "--preset", preset)
    assert code == 2 and err.count("\n") == 1 and "calibrated for video-salmonn2-tiny" in err, err


def test_another_size_of_the_same_model_is_a_warning(tmp_path, capsys):
    preset = write_preset(tmp_path / "tiny.json", "videollama2-tiny")
    code, out, err = run_cli(capsys, "flops", "--model", "videollama2", "--preset", preset)
    assert code == 0 and "warning:" in err and "another size" in err, err
    assert "cutoff 24" in out  # the tiny preset's rule, applied as asked
