"""benchmarks/serving_load.py without a server: its flags, its target arithmetic and its KV figures."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def load():
    """The script as a module (benchmarks/ is no package: its scripts import their neighbours by name)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        yield importlib.import_module("serving_load")


def test_defaults_follow_the_spec(load):
    args = load.build_parser().parse_args([])
    assert args.concurrency == (1, 4, 16, 64) and args.new_tokens == 64 and args.kv_budget_mib == 1024
    assert args.requests_per_level is None and args.work.parts[-2:] == ("engines", "serving-load")
    assert [load.default_requests(c) for c in (1, 4, 16, 64)] == [8, 8, 32, 128]


def test_flags_are_parsed(load, tmp_path):
    args = load.build_parser().parse_args(["--concurrency", "1, 16", "--requests-per-level", "4", "--new-tokens", "8",
                                           "--kv-budget-mib", "12.5", "--threads", "1", "--json",
                                           str(tmp_path / "f.json"), "--work", str(tmp_path)])
    assert (args.concurrency, args.requests_per_level, args.new_tokens, args.kv_budget_mib, args.threads) == \
        ((1, 16), 4, 8, 12.5, 1)


@pytest.mark.parametrize("argv, message", [
    (["--concurrency", "1,0"], "must be an integer >= 1"),
    (["--concurrency", "4,4"], "names 4 twice"),
    (["--concurrency", "1,,4"], "is not a whole number"),
    (["--new-tokens", "0"], "must be an integer >= 1"),
    (["--kv-budget-mib", "nan"], "finite number > 0"),
])
def test_bad_flags_are_one_error_line_and_exit_2(load, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        load.build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=6, unique=True), st.sampled_from([",", ", ", " ,"]))
def test_concurrency_levels_read_back_any_list_of_distinct_counts(load, levels, separator):
    assert load.concurrency_levels(separator.join(map(str, levels))) == tuple(levels)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789, -+x."), max_size=12) | st.text(max_size=12))
def test_concurrency_levels_give_distinct_positive_counts_or_one_error(load, text):
    import argparse

    try:
        levels = load.concurrency_levels(text)
    except argparse.ArgumentTypeError as exc:
        assert repr(text) in str(exc)  # the message quotes what was given
        return
    assert len(levels) == text.count(",") + 1 == len(set(levels))
    assert all(isinstance(level, int) and level >= 1 for level in levels)


def _level(load, variant, concurrency, seconds, latencies, failed=0, mismatched=0):
    return load.LevelFigures(variant, concurrency, len(latencies) + failed, seconds=seconds, tokens=8 * len(latencies),
                             ttft=list(latencies), end_to_end=list(latencies), failed=failed, mismatched=mismatched)


def test_targets_are_computed_from_requests_per_second_and_percentiles(load):
    pruned_1 = _level(load, "pruned", 1, 10.0, [1.0] * 10)           # 1 request/s
    pruned_16 = _level(load, "pruned", 16, 5.0, [2.0] * 9 + [5.0])   # 2 requests/s
    dense_16 = _level(load, "dense", 16, 10.0, [4.0] * 12)           # 1.2 requests/s
    targets = load.load_targets({(lv.variant, lv.concurrency): lv for lv in (pruned_1, pruned_16, dense_16)})
    speedup, batching, errors, tail = targets
    assert speedup.value == pytest.approx(2.0 / 1.2) and speedup.met and not speedup.at_most
    assert batching.value == pytest.approx(2.0) and batching.met
    assert errors.value == 0 and errors.met
    # p50 2.0; p99 by linear interpolation between the 9th and 10th sorted values: 2 + 0.91 * 3
    assert tail.value == pytest.approx((2.0 + 0.91 * 3.0) / 2.0) and tail.met
    assert pruned_16.tokens_per_s == pytest.approx(16.0)
    assert "met" in speedup.line() and ">= 1.5" in speedup.line() and "NOT" not in speedup.line()


def test_targets_not_met_below_their_limits_or_with_a_failure(load):
    pruned_1 = _level(load, "pruned", 1, 10.0, [1.0] * 10)
    pruned_16 = _level(load, "pruned", 16, 10.0, [1.0] * 9 + [10.0] * 3, failed=1)   # 1.2 requests/s
    dense_16 = _level(load, "dense", 16, 10.0, [2.0] * 10, mismatched=2)             # 1.0 requests/s
    speedup, batching, errors, tail = load.load_targets(
        {(lv.variant, lv.concurrency): lv for lv in (pruned_1, pruned_16, dense_16)})
    assert speedup.value == pytest.approx(1.2) and not speedup.met
    assert batching.value == pytest.approx(1.2) and not batching.met
    assert errors.value == 3 and not errors.met and "NOT MET" in errors.line()
    assert tail.value == pytest.approx(10.0) and not tail.met


def test_targets_of_levels_not_run_are_not_measured_and_not_met(load):
    targets = load.load_targets({("pruned", 1): _level(load, "pruned", 1, 4.0, [1.0] * 4)})
    speedup, batching, errors, tail = targets
    assert speedup.value is None and batching.value is None and tail.value is None
    assert not any(t.met for t in (speedup, batching, tail)) and errors.met
    assert "not measured" in tail.line()
    assert math.isnan(_level(load, "dense", 4, 1.0, []).percentile("end_to_end", 50))


def test_kv_footprint_counts_kept_plus_new_tokens_of_every_layer(load):
    from fastav_export.contract.dims import DecoderDims
    from fastav_export.contract.layout import Segment, TokenLayout
    from fastav_export.contract.pruning_config import PruningConfig

    class Request:  # the fields kv_footprint reads from a parsed ServingRequest
        def __init__(self, layout, config, max_new_tokens):
            self.layout, self.config, self.max_new_tokens = layout, config, max_new_tokens

    dims = DecoderDims(hidden_size=64, intermediate_size=128, num_layers=4, num_heads=4, num_kv_heads=2,
                       vocab_size=256)
    dense = PruningConfig.dense().resolve(dims.num_layers)
    short = TokenLayout((Segment("text", 4), Segment("video", 8, frame=0), Segment("text", 4)))   # 16 tokens
    long = TokenLayout((Segment("text", 4), Segment("video", 24, frame=0), Segment("text", 4)))   # 32 tokens
    entry = 2 * 2 * 16 * 4  # keys + values, 2 KV heads, head size 16, fp32
    short_bytes, long_bytes = 4 * (16 + 8) * entry, 4 * (32 + 8) * entry
    budget_mib = 10 * long_bytes / (1 << 20)
    kv = load.kv_footprint([Request(short, dense, 8), Request(long, dense, 8)], dims, budget_mib)
    assert kv.mean_bytes == (short_bytes + long_bytes) / 2 and kv.longest_bytes == long_bytes
    assert kv.admitted_padded == 10 and kv.admitted_mean == int(10 * long_bytes // ((short_bytes + long_bytes) / 2))
