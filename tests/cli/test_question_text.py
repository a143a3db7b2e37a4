"""A question that is not valid UTF-8 is one `error:` line naming --question, for every command that takes one.

On Linux, argv bytes that are not UTF-8 reach Python as lone surrogates (surrogateescape);
the tokenizer cannot encode them, so they are refused where the argument is parsed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastav_export.cli.arg_types import utf8_text

NOT_UTF8 = b"\xff\xfe what is this?"


def _cli(*argv) -> subprocess.CompletedProcess:
    command = [os.fsencode(sys.executable), b"-m", b"fastav_export",
               *(arg if isinstance(arg, bytes) else os.fsencode(str(arg)) for arg in argv)]
    return subprocess.run(command, capture_output=True, timeout=300)


def _refused(result: subprocess.CompletedProcess) -> None:
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 2, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert "--question" in err and "UTF-8" in err, err
    assert result.stdout == b""


def test_run_torch_refuses_a_question_that_is_not_utf8(media_clip):
    _refused(_cli(b"run", b"--model", b"videollama2-tiny", b"--backend", b"torch", b"--video", media_clip,
                  b"--question", NOT_UTF8, b"--max-new-tokens", b"1"))


@pytest.mark.slow  # builds the tiny engine with its encoders
def test_run_engine_refuses_a_question_that_is_not_utf8(tiny_engine, media_clip):
    engine = tiny_engine("videollama2-tiny", media=True).path
    _refused(_cli(b"run", engine, b"--video", media_clip, b"--question", NOT_UTF8, b"--max-new-tokens", b"1"))


def test_calibrate_refuses_a_question_that_is_not_utf8(tmp_path, media_clip):
    _refused(_cli(b"calibrate", b"--model", b"videollama2-tiny", b"--samples", media_clip, b"--question", NOT_UTF8,
                  b"--out", tmp_path / "preset.json"))
    assert not (tmp_path / "preset.json").exists()


@given(st.text())
def test_utf8_text_accepts_exactly_what_encodes(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(argparse.ArgumentTypeError, match="UTF-8"):
            utf8_text(text)
    else:
        assert utf8_text(text) == text


@given(st.binary())
def test_utf8_text_of_any_argv_bytes(raw):
    """Whatever bytes the shell passes, the parser returns them decoded or refuses them in one line."""
    text = os.fsdecode(raw)
    try:
        assert utf8_text(text).encode("utf-8") == raw
    except argparse.ArgumentTypeError as exc:
        assert "\n" not in str(exc)
