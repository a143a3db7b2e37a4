"""Summaries of prediction records: accuracy, bootstrap interval, errors, cost and agreement with dense per
policy, per question type, as plain JSON and as markdown."""

from __future__ import annotations

import json
import math

import pytest

from fastav_export.evaluation.scoring import bootstrap_ci, summarize, summary_markdown


def record(sample_id, policy, prediction, correct, *, kind="Audio/Counting", flops=1.0, seconds=1.0, error=None):
    return {"id": sample_id, "policy": policy, "prediction": prediction, "choice": None, "correct": correct,
            "error": error, "prompt_tokens": 100, "kept_tokens": 100 if policy == "dense" else 56,
            "flops_ratio": flops, "seconds": seconds, "type": kind}


RECORDS = [
    record("1", "dense", "two", True, seconds=2.0),
    record("2", "dense", "yes", True, seconds=2.0, kind="Visual/Location"),
    record("3", "dense", "left", False, seconds=2.0, kind="Visual/Location"),
    record("4", "dense", "cello", True, seconds=2.0),
    record("1", "fastav", "two", True, flops=0.5, seconds=1.0),
    record("2", "fastav", "no", False, flops=0.6, seconds=1.5, kind="Visual/Location"),
    record("3", "fastav", "left", False, flops=0.7, seconds=0.5, kind="Visual/Location"),
    record("4", "fastav", None, None, flops=None, seconds=0.1, error="video 4.mp4 cannot be decoded"),
]


def test_summary_numbers():
    summary = summarize(RECORDS, ["dense", "fastav", "unused"])
    assert list(summary["policies"]) == ["dense", "fastav", "unused"]
    dense, fastav, unused = summary["policies"].values()
    assert (dense["accuracy"], dense["n"], dense["errors"]) == (0.75, 4, 0)
    assert (dense["flops_ratio"], dense["seconds_per_sample"], dense["agreement_with_dense"]) == (1.0, 2.0, 1.0)
    assert dense["by_type"] == {"Audio/Counting": {"accuracy": 1.0, "n": 2},
                                "Visual/Location": {"accuracy": 0.5, "n": 2}}
    assert (fastav["accuracy"], fastav["n"], fastav["errors"]) == (0.333333, 3, 1)
    assert fastav["flops_ratio"] == 0.6 and fastav["seconds_per_sample"] == 1.0
    assert fastav["agreement_with_dense"] == 0.666667  # ids 1 and 3 of the three that ran under both
    assert fastav["by_type"] == {"Audio/Counting": {"accuracy": 1.0, "n": 1},
                                 "Visual/Location": {"accuracy": 0.0, "n": 2}}
    for row in (dense, fastav):
        lo, hi = row["ci95"]
        assert 0.0 <= lo <= row["accuracy"] <= hi <= 1.0
    assert unused == {"accuracy": None, "n": 0, "errors": 0, "ci95": None, "flops_ratio": None,
                      "seconds_per_sample": None, "agreement_with_dense": None, "by_type": {}}
    json.dumps(summary, allow_nan=False)
    assert summarize(RECORDS, ["dense", "fastav"]) == summarize(list(RECORDS), ["dense", "fastav"])


def test_no_dense_means_no_agreement():
    summary = summarize([r for r in RECORDS if r["policy"] == "fastav"], ["fastav"])
    assert summary["policies"]["fastav"]["agreement_with_dense"] is None


def test_bootstrap_interval():
    correct = [True] * 30 + [False] * 10
    lo, hi = bootstrap_ci(correct)
    assert lo < 0.75 < hi and (lo, hi) == bootstrap_ci(correct)
    assert 0.55 < lo and hi < 0.9
    assert bootstrap_ci([True] * 5) == (1.0, 1.0)
    assert bootstrap_ci([False] * 5) == (0.0, 0.0)
    narrow = bootstrap_ci(correct, level=0.5)
    assert lo <= narrow[0] <= narrow[1] <= hi
    assert all(math.isnan(bound) for bound in bootstrap_ci([]))
    with pytest.raises(ValueError):
        bootstrap_ci(correct, level=1.0)


def test_markdown_tables():
    text = summary_markdown(summarize(RECORDS, ["dense", "fastav"]), "MUSIC-AVQA test, 4 samples")
    assert text.startswith("# MUSIC-AVQA test, 4 samples\n")
    fastav_row = next(line for line in text.splitlines() if line.startswith("| fastav |"))
    assert "33.3% [" in fastav_row and "| 3 | 1 | 0.600 | 1.00 | 66.7% |" in fastav_row
    assert "## Accuracy by question type" in text
    assert "| Visual/Location | 50.0% (n=2) | 0.0% (n=2) |" in text
    untyped = [{**r, "type": None} for r in RECORDS]
    assert "by question type" not in summary_markdown(summarize(untyped, ["dense"]), "t")
