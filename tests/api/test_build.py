"""`fastav_export.build`: the command line's flags as keywords, its checks and its one-line errors."""

from __future__ import annotations

import pytest

import fastav_export
from fastav_export.errors import FastAVError


@pytest.mark.parametrize("options, message", [
    ({"bogus": 1}, "unknown build option 'bogus'"),
    ({"fp16": "yes"}, "build option fp16 is a switch"),
    ({"model": "videollama3"}, "invalid choice: 'videollama3'"),
    ({"weights": "int3"}, "invalid choice: 'int3'"),
    ({"fine_ratio": "most"}, "invalid float value"),
    ({"bf16": True}, "ONNX Runtime's CPU provider cannot run bf16 graphs"),
    ({"weights": "int8", "graphs": "onnx-standard"}, "int8"),
    ({"model": "videollama2"}, "has no built-in weights"),
])
def test_bad_options_raise_the_command_lines_one_line(options, message, tmp_path):
    with pytest.raises(FastAVError, match=message) as caught:
        fastav_export.build(out=tmp_path / "engine", **options)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "engine").exists()


def test_the_public_names_are_the_documented_ones():
    assert {"Engine", "AnswerRecord", "build"} <= set(fastav_export.__all__)
    with pytest.raises(AttributeError):
        fastav_export.Missing  # noqa: B018
