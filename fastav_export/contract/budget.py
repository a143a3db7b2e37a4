"""The rollout budget: how many candidates the global cut keeps, as a count or a fraction.

One rule for every place a budget is written (the command line, Triton's JSON overrides, preset
and engine files), so that no value can be read two ways:

* a count is a whole number: `300` (a JSON integer, or the string of ASCII digits);
* a fraction is strictly between 0 and 1: `0.3`, or a percentage `30%` (in text only).

A decimal that is a whole number (`1.0`, `2.0`, `0.0`, `1e2`) is refused: `1.0` was once
"all of them" and reads as "one" to anyone else. `100%` and `0%` are refused too: keeping
every candidate is `--global-policy none`, keeping none is the count `0`.

Stored form (PruningConfig.global_budget): an int is a count, a float a fraction in (0, 1).
JSON writes and reads both unchanged; a reader that turns a count into `300.0` is refused,
never misread.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from ..errors import FastAVError

HOW = "write a count of candidates as a whole number (300) or a fraction as 0.3 or 30%"
_COUNT = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def parse_budget(text: str, name: str = "--global-budget") -> int | float:
    """A budget from text: "300" -> 300 (count), "0.3" or "30%" -> 0.3 (fraction); else one FastAVError line."""
    stripped = text.strip()
    if _COUNT.fullmatch(stripped):
        return int(stripped)
    percent = stripped.endswith("%")
    number = stripped[:-1] if percent else stripped
    sign = number.startswith("-")
    digits = number[1:] if sign else number
    if not _DECIMAL.fullmatch(digits):
        raise FastAVError(f"{name} {text!r} is not a number: {HOW}")
    if sign and float(digits) != 0:
        raise FastAVError(f"{name} {text!r} is negative: {HOW}")
    if percent:
        value = Decimal(digits)  # exact: 99.9% is 0.999, not 0.9990000000000001
        if value == 100:
            raise FastAVError(f"{name} {text!r} keeps every candidate: use --global-policy none for that, or {HOW}")
        if value > 100:
            raise FastAVError(f"{name} {text!r} is above 100%: {HOW}")
        if value == 0:
            raise FastAVError(f"{name} {text!r} keeps none: write the count 0 for that, or {HOW}")
        value = float(value / 100)
        if not 0 < value < 1:  # 99.999999999999999% rounds to 1.0, 1e-400% to 0.0
            raise FastAVError(f"{name} {text!r} is too close to 0% or 100% to be a fraction: {HOW}")
        return value
    return check_budget(float(digits), name)


def check_budget(value, name: str = "global_budget") -> int | float:
    """A stored or JSON budget: an int count >= 0 or a float fraction in (0, 1); else one FastAVError line."""
    # bool is an int in Python: `{"global_budget": true}` must not mean one candidate.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float)
                                                                          and not math.isfinite(value)):
        raise FastAVError(f"{name} {value!r} is not a number: {HOW}")
    if value < 0:
        raise FastAVError(f"{name} {value!r} is negative: {HOW}")
    if isinstance(value, float):
        if value.is_integer():
            whole = int(value)
            raise FastAVError(f"{name} {value!r} could mean {whole} candidate{'s' if whole != 1 else ''} or a "
                              f"fraction: write {whole} for the count; a fraction is below 1 (0.3 or 30%)")
        if value > 1:
            raise FastAVError(f"{name} {value!r} is a fraction above 1: {HOW}")
    return value


def is_fraction(budget: int | float) -> bool:
    """A checked budget is a fraction exactly when it is a float."""
    return isinstance(budget, float)


def keep_count(budget: int | float, n_candidates: int) -> int:
    """Candidates a checked budget keeps out of n_candidates: a fraction is rounded up."""
    if is_fraction(budget):
        return min(n_candidates, math.ceil(budget * n_candidates))
    return min(n_candidates, budget)


def describe_budget(budget: int | float) -> str:
    if is_fraction(budget):
        return f"{budget * 100:g}% of the candidates"
    return f"{budget} candidate{'s' if budget != 1 else ''}"
