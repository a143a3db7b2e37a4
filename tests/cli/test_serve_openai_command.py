"""`fastav-export serve-openai`: its address arguments, and one error line for each bad setting."""

from __future__ import annotations

import argparse
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastav_export.cli import main
from fastav_export.cli.arg_types import host_port, port_number

from ..fuzz.contract import FUZZ


@pytest.mark.parametrize("text", ["localhost:8001", "127.0.0.1:1", "[::1]:65535", "triton.internal:8001"])
def test_host_port_accepts(text):
    assert host_port(text) == text


@pytest.mark.parametrize("text", ["localhost", ":8001", "localhost:", "localhost:0", "localhost:65536", "::1:8001",
                                  "local host:8001", "localhost:８００１", "localhost:+80", "localhost:" + "9" * 5000])
def test_host_port_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError, match="HOST:PORT"):
        host_port(text)


@FUZZ
@given(text=st.text(max_size=30) | st.tuples(st.text(max_size=10), st.integers(-10, 70_000)).map(
    lambda hp: f"{hp[0]}:{hp[1]}"))
def test_any_text_is_an_address_or_one_argument_error(text):
    for parse in (host_port, port_number):
        try:
            parse(text)
        except argparse.ArgumentTypeError as exc:
            assert "\n" not in str(exc)


def _one_error_line(capsys, *argv) -> str:
    assert main(["serve-openai", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    return err


def test_a_missing_media_root_and_an_empty_model(capsys, tmp_path):
    base = ["--triton", "127.0.0.1:1"]
    assert "is not a directory" in _one_error_line(capsys, *base, "--model", "m", "--media-root", str(tmp_path / "no"))
    assert "--model is empty" in _one_error_line(capsys, *base, "--model", "")


def test_a_port_in_use(capsys):
    pytest.importorskip("uvicorn")
    pytest.importorskip("fastapi")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        err = _one_error_line(capsys, "--triton", "127.0.0.1:1", "--model", "m", "--port", str(port))
    assert f"cannot listen on 127.0.0.1:{port}" in err
