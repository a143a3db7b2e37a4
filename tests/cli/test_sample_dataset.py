"""`fastav-export sample-dataset`: clips and a questions file eval reads."""

from __future__ import annotations

from fastav_export.cli import main
from fastav_export.evaluation.datasets import read_dataset


def test_it_writes_clips_and_questions_eval_reads(tmp_path, capsys):
    assert main(["sample-dataset", str(tmp_path / "data"), "--clips", "2"]) == 0
    samples = read_dataset(tmp_path / "data" / "questions.jsonl")
    assert len(samples) == 6 and all(sample.video.is_file() for sample in samples)
    assert {sample.type for sample in samples} == {"length", "sound", "pitch"}
    assert samples[0].options is not None and samples[0].answer == "2 seconds"
    assert "wrote" in capsys.readouterr().out


def test_it_refuses_to_replace_a_dataset(tmp_path, capsys):
    assert main(["sample-dataset", str(tmp_path), "--clips", "1"]) == 0
    assert main(["sample-dataset", str(tmp_path), "--clips", "1"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert main(["sample-dataset", str(tmp_path / "x"), "--clips", "101"]) == 2
