"""Accuracy against cost per pruning policy, from prediction records, as JSON and as markdown tables.

A prediction record is a dict for one (sample, policy) run with at least:
    id, policy          the sample's id and the policy's name ("dense" is the unpruned baseline)
    prediction          the model's text, or None when the sample failed
    choice, correct     what answers.score read, and True/False; correct is None when the sample failed
    error               None, or a one-line message saying why the sample failed
    prompt_tokens, kept_tokens
    flops_ratio         decoder FLOPs pruned / dense for this input, the paper's formula (None on error)
    seconds             wall time of the sample
    type                the question type, or None

`summarize` gives, per policy in the order asked for:
    {"policies": {NAME: {"accuracy", "n", "errors", "ci95": [lo, hi], "flops_ratio",
                         "seconds_per_sample", "agreement_with_dense",
                         "by_type": {TYPE: {"accuracy", "n"}}}}}
Samples that ran are those with `correct` not None: n counts them and accuracy, the 95 %
interval, flops_ratio (mean) and seconds_per_sample (mean) are over them; errors counts records
with an error. agreement_with_dense is the share of samples that ran under both the policy and
"dense" whose prediction text is identical to dense's (None when no record is dense's, or no
sample ran under both; 1.0 for dense itself). Without samples that ran, accuracy, ci95 and the
means are None. Floats are rounded to 6 digits and never NaN, so the dict is plain JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

DENSE = "dense"


def bootstrap_ci(correct: Sequence[bool], resamples: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap interval (lo, hi) of the accuracy of `correct`, deterministic in `seed`.

    Each resample draws len(correct) samples with replacement; the interval holds the middle
    `level` of the resampled accuracies. The count of correct samples in such a resample is
    Binomial(n, k / n) for k correct out of n, so it is drawn directly, which is the same
    distribution without an n-by-resamples index array. n == 0 gives (nan, nan): there is no
    accuracy to bound. All correct gives (1.0, 1.0), none (0.0, 0.0).
    """
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, not {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie between 0 and 1, not {level}")
    n = len(correct)
    if n == 0:
        return math.nan, math.nan
    hits = sum(bool(value) for value in correct)
    accuracies = np.random.default_rng(seed).binomial(n, hits / n, size=resamples) / n
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(accuracies, [tail, 1.0 - tail])
    return float(lo), float(hi)


def _rounded(value: float | None) -> float | None:
    """`value` rounded to 6 digits; None for None and for NaN/inf, which JSON cannot hold."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 6)


def _mean(values: list[float]) -> float | None:
    values = [float(value) for value in values if value is not None]
    return _rounded(sum(values) / len(values)) if values else None


def _agreement(ran: list[dict], dense: dict[str, object]) -> float | None:
    """Share of `ran` records whose prediction equals dense's for the same id (ids that ran under both)."""
    shared = [record for record in ran if record["id"] in dense]
    if not shared:
        return None
    return _rounded(sum(record["prediction"] == dense[record["id"]] for record in shared) / len(shared))


def _by_type(ran: list[dict]) -> dict[str, dict]:
    groups: dict[str, list[bool]] = {}
    for record in ran:
        if record.get("type") is not None:
            groups.setdefault(str(record["type"]), []).append(bool(record["correct"]))
    return {name: {"accuracy": _rounded(sum(hits) / len(hits)), "n": len(hits)}
            for name, hits in sorted(groups.items())}


def _policy_summary(records: list[dict], dense: dict[str, object] | None) -> dict:
    ran = [record for record in records if record["correct"] is not None]
    hits = [bool(record["correct"]) for record in ran]
    interval = bootstrap_ci(hits) if hits else None
    return {
        "accuracy": _rounded(sum(hits) / len(hits)) if hits else None,
        "n": len(ran),
        "errors": sum(record.get("error") is not None for record in records),
        "ci95": [_rounded(interval[0]), _rounded(interval[1])] if interval else None,
        "flops_ratio": _mean([record.get("flops_ratio") for record in ran]),
        "seconds_per_sample": _mean([record.get("seconds") for record in ran]),
        "agreement_with_dense": None if dense is None else _agreement(ran, dense),
        "by_type": _by_type(ran),
    }


def summarize(records: list[dict], policies: Sequence[str]) -> dict:
    """Per-policy accuracy, interval, errors, cost and agreement with dense (shape in the module docstring)."""
    by_policy: dict[str, list[dict]] = {}
    for record in records:
        by_policy.setdefault(record["policy"], []).append(record)
    dense = None
    if DENSE in by_policy:
        dense = {record["id"]: record["prediction"] for record in by_policy[DENSE] if record["correct"] is not None}
    return {"policies": {name: _policy_summary(by_policy.get(name, []), dense) for name in policies}}


def _cell(text: object) -> str:
    # A "|" inside a policy or type name would split the markdown cell.
    return str(text).replace("|", "\\|")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary_markdown(summary: dict, title: str) -> str:
    """`summarize`'s dict as markdown: a table of the policies, then accuracy per question type if any."""
    lines = [f"# {title}", "",
             "| policy | accuracy [95% interval] | n | errors | FLOPs ratio | s/sample | agreement with dense |",
             "|---|---|---:|---:|---:|---:|---:|"]
    policies = summary["policies"]
    for name, row in policies.items():
        accuracy = _percent(row["accuracy"])
        if row["ci95"] is not None:
            accuracy += f" [{_percent(row['ci95'][0])}, {_percent(row['ci95'][1])}]"
        lines.append(f"| {_cell(name)} | {accuracy} | {row['n']} | {row['errors']} | "
                     f"{_number(row['flops_ratio'], 3)} | {_number(row['seconds_per_sample'], 2)} | "
                     f"{_percent(row['agreement_with_dense'])} |")
    types = sorted({name for row in policies.values() for name in row["by_type"]})
    if types:
        lines += ["", "## Accuracy by question type", "",
                  "| type | " + " | ".join(_cell(name) for name in policies) + " |",
                  "|---|" + "---:|" * len(policies)]
        for kind in types:
            cells = []
            for row in policies.values():
                group = row["by_type"].get(kind)
                cells.append("-" if group is None else f"{_percent(group['accuracy'])} (n={group['n']})")
            lines.append(f"| {_cell(kind)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
