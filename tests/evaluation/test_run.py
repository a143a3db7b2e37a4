"""The predictions file: whole lines only, a cut-short last line dropped, a foreign file refused."""

from __future__ import annotations

import json

import pytest

from fastav_export.errors import FastAVError
from fastav_export.evaluation.run import read_predictions


def test_a_line_cut_short_is_dropped_and_the_file_truncated_to_whole_lines(tmp_path):
    path = tmp_path / "predictions.jsonl"
    whole = json.dumps({"id": "1", "policy": "dense", "prediction": "B"}) + "\n"
    path.write_text(whole + '{"id": "2", "pol')
    assert read_predictions(path) == [json.loads(whole)]
    assert path.read_text() == whole


def test_no_file_is_no_predictions(tmp_path):
    assert read_predictions(tmp_path / "none.jsonl") == []


@pytest.mark.parametrize("text, message", [("not json\n", "invalid JSON"), ('{"id": "1"}\n', "no id and policy"),
                                           ("[1, 2]\n", "no id and policy")])
def test_a_file_that_holds_no_predictions_is_refused(text, message, tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text(text)
    with pytest.raises(FastAVError, match=message):
        read_predictions(path)
