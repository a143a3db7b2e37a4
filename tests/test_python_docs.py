"""docs/python.md's examples run as written, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fastav_export.media.sample_clip import write_sample_clip

PAGE = Path(__file__).parent.parent / "docs" / "python.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)


def test_the_page_shows_every_public_name():
    text = "".join(python_blocks())
    for name in ("fastav_export.build(", "Engine.open(", ".answer(", ".stream("):
        assert name in text


@pytest.mark.slow
def test_the_examples_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_sample_clip(tmp_path / "clip.mp4")  # what `fastav-export sample-clip clip.mp4` writes
    namespace: dict = {}
    for block in python_blocks():
        exec(compile(block, str(PAGE), "exec"), namespace)
    printed = capsys.readouterr().out
    assert "engines/videollama2-tiny-fp32" in printed and "rollout:0.3" in printed
