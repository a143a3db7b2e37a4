"""`--embeds FILE.npy`: the header is checked before the data is read; bad files are one line."""

from __future__ import annotations

import numpy as np
import pytest

from ..cli.test_cli import run_cli

D = 64  # the tiny models' hidden size


def _run_with(capsys, path, *extra):
    return run_cli(capsys, "run", "--embeds", str(path), "--max-new-tokens", "2", *extra)


def _error(capsys, path):
    """(exit code, stderr) of `run --embeds path`."""
    code, _, err = _run_with(capsys, path)
    return code, err


def _one_error_line(code, err, *fragments):
    assert code == 2, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert all(f in err for f in fragments), err


def test_a_header_claiming_petabytes_is_refused_before_allocating(capsys, tmp_path):
    """np.load alone would try to allocate what the header claims (22 PiB here)."""
    path = tmp_path / "huge.npy"
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False,
                                                      "shape": (2**40, 2**10, D)})
    _one_error_line(*_error(capsys, path), "truncated")


def test_empty_and_npz_files_are_one_line(capsys, tmp_path):
    """A 0-byte file (EOFError) and an .npz archive (AttributeError) are one-line errors, not tracebacks."""
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    _one_error_line(*_error(capsys, empty), "is empty")
    archive = tmp_path / "embeds.npz"
    np.savez(archive, embeds=np.zeros((72, D), np.float32))
    _one_error_line(*_error(capsys, archive), "not a .npy array file")
    text = tmp_path / "notes.npy"
    text.write_text("these are not embeddings")
    _one_error_line(*_error(capsys, text), "not a .npy array file")


def test_truncated_data_is_refused(capsys, tmp_path):
    path = tmp_path / "cut.npy"
    np.save(path, np.zeros((72, D), np.float32))
    path.write_bytes(path.read_bytes()[:-100])
    _one_error_line(*_error(capsys, path), "truncated")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_embeddings_are_refused(capsys, tmp_path, bad):
    """NaN embeddings are refused: they would make every logit NaN and `run` print tokens `0 0`, exit 0."""
    embeds = np.random.default_rng(0).standard_normal((72, D)).astype(np.float32)
    embeds[5, 7] = bad
    path = tmp_path / "embeds.npy"
    np.save(path, embeds)
    _one_error_line(*_error(capsys, path), "NaN or infinite", "[5, 7]")


def test_non_finite_embeddings_are_refused_by_engines_too(capsys, tmp_path, tiny_engine):
    embeds = np.zeros((72, D), np.float32)
    embeds[0, 0] = np.nan
    np.save(tmp_path / "embeds.npy", embeds)
    engine = tiny_engine("videollama2-tiny").path
    code, _, err = run_cli(capsys, "run", str(engine), "--embeds", str(tmp_path / "embeds.npy"))
    _one_error_line(code, err, "NaN or infinite")


def test_fortran_order_and_batched_files_load(capsys, tmp_path):
    embeds = np.asfortranarray(np.random.default_rng(1).standard_normal((72, D)).astype(np.float32))
    np.save(tmp_path / "f.npy", embeds)
    np.save(tmp_path / "c.npy", np.ascontiguousarray(embeds)[None].repeat(2, axis=0))
    code_f, out_f, _ = _run_with(capsys, tmp_path / "f.npy")
    code_c, out_c, _ = _run_with(capsys, tmp_path / "c.npy")
    assert code_f == code_c == 0
    tokens_f = [line for line in out_f.splitlines() if line.startswith("tokens[0]")]
    assert tokens_f and tokens_f[0] in out_c and "tokens[1]" in out_c
