"""`fastav-export bench` and the timing rounds behind it (figures are printed, never asserted on)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastav_export.runtime.bench import current_rss_mb, peak_rss_mb, reset_peak_rss

from ..cli.test_cli import run_cli
from ..families import family_cases


def test_bench_prints_both_variants_and_writes_one_entry_per_round(tiny_engine, tmp_path, capsys):
    engine = tiny_engine("videollama2-tiny").path
    report = tmp_path / "bench.json"
    code, out, err = run_cli(capsys, "bench", str(engine), "--rounds", "3", "--warmup", "1", "--decode-steps", "4",
                             "--json", str(report))
    assert code == 0, err
    lines = out.splitlines()
    assert any(line.startswith("pruned ") for line in lines) and any(line.startswith("dense ") for line in lines)
    assert any(line.startswith("ratio (pruned / dense, medians): prefill") for line in lines)
    assert lines[-1].startswith("FLOPs ratio (pruned / dense): paper formula")
    data = json.loads(report.read_text())
    assert set(data["variants"]) == {"pruned", "dense"}
    for variant in data["variants"].values():
        assert len(variant["prefill_ms"]) == len(variant["decode_ms_per_token"]) == 3
        assert all(value > 0 for value in variant["prefill_ms"] + variant["decode_ms_per_token"])
        assert isinstance(variant["peak_rss_mb"], float) and variant["peak_rss_mb"] > 0
    assert set(data["flops_ratio"]) == {"paper", "exact_macs", "exact_macs_without_early_drop"}
    assert data["flops_ratio"]["exact_macs"] < data["flops_ratio"]["exact_macs_without_early_drop"] < 1


@pytest.mark.parametrize("case", family_cases(where=lambda case: case.positions_rows == 3))
def test_bench_runs_an_mrope_engine(case, tiny_engine, capsys):
    """Its synthetic prompt gets [3, B, N] positions (0..N-1 in every row, transformers' text positions)."""
    code, out, err = run_cli(capsys, "bench", str(tiny_engine(case.model, media=True).path), "--rounds", "1",
                             "--warmup", "0", "--decode-steps", "2")
    assert code == 0, err
    assert out.splitlines()[-1].startswith("FLOPs ratio (pruned / dense): paper formula")


@pytest.mark.parametrize("args, message", [
    (["--rounds", "0"], "argument --rounds: 0 must be an integer >= 1"),
    (["--decode-steps", "0"], "argument --decode-steps: 0 must be an integer >= 1"),
    (["--warmup", "-1"], "argument --warmup: -1 must be an integer >= 0"),
    (["--decode-steps", "64"], "exceed the engine's limit of 20"),
])
def test_bench_refuses_bad_counts_in_one_line(tiny_engine, capsys, args, message):
    code, _, err = run_cli(capsys, "bench", str(tiny_engine("videollama2-tiny").path), *args)
    assert code == 2 and err.count("\n") == 1 and message in err


def test_bench_checks_the_json_path_before_any_work(tiny_engine, tmp_path, capsys):
    code, out, err = run_cli(capsys, "bench", str(tiny_engine("videollama2-tiny").path), "--json", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "--json" in err and out == ""


def test_peak_rss_resets_per_round_where_linux_allows():
    if not reset_peak_rss():
        pytest.skip("this kernel does not let a process reset its RSS high-water mark (/proc/self/clear_refs)")
    before = peak_rss_mb()
    block = np.ones(64 * 2**20, np.uint8)  # 64 MiB touched
    assert peak_rss_mb() >= before + 60
    del block
    _return_freed_memory()
    high = peak_rss_mb()
    reset_peak_rss()
    resident = current_rss_mb()
    # The mark restarts from the resident size now (which other threads of a long test process may
    # have grown meanwhile), well below the peak the freed 64 MiB block left.
    assert peak_rss_mb() <= resident + 30 < high


def test_current_rss_follows_memory_touched_and_freed():
    before = current_rss_mb()
    block = np.ones(64 * 2**20, np.uint8)
    assert current_rss_mb() >= before + 60
    del block
    _return_freed_memory()
    assert current_rss_mb() < before + 30


def _return_freed_memory() -> None:
    """Hand freed heap memory back to the kernel: a library in a long test process may have raised glibc's
    mmap threshold, so a freed 64 MiB block can stay resident; the reset is what is under test, not malloc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name:
        ctypes.CDLL(name).malloc_trim(0)
