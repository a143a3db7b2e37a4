"""The rollout budget: a count or a fraction, never a value that could be read as both."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastav_export.contract.budget import check_budget, describe_budget, parse_budget
from fastav_export.contract.layout import Segment, TokenLayout
from fastav_export.contract.pruning_config import PruningConfig
from fastav_export.contract.selection import global_keep_count
from fastav_export.errors import FastAVError

from ..fuzz.contract import FUZZ, accepts_or_refuses

LAYOUT = TokenLayout((Segment("text", 2), Segment("video", 10, frame=0), Segment("text", 1)))  # 10 candidates


@pytest.mark.parametrize("text,value", [
    ("300", 300), ("0", 0), ("1", 1), ("007", 7), (" 12 ", 12),
    ("0.3", 0.3), (".25", 0.25), ("0.999", 0.999), ("1e-1", 0.1),
    ("30%", 0.3), ("0.5%", 0.005), ("99.9%", 0.999),
])
def test_counts_are_integers_and_fractions_are_below_one_or_percent(text, value):
    parsed = parse_budget(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("text,words", [
    ("1.0", "could mean"), ("1.", "could mean"), ("2.0", "could mean"), ("0.0", "could mean"),
    ("1e2", "could mean"), ("100%", "keeps every candidate"), ("0%", "keeps none"), ("1.5", "above 1"),
    ("150%", "above 100%"), ("-3", "negative"), ("-0.5", "negative"), ("nan", "not a number"),
    ("inf", "not a number"), ("lots", "not a number"), ("", "not a number"), ("1_000", "not a number"),
    ("١٢", "not a number"), ("1e-400", "could mean"), ("30 %", "not a number"),
])
def test_ambiguous_or_meaningless_budgets_are_one_line(text, words):
    with pytest.raises(FastAVError, match=words) as err:
        parse_budget(text)
    message = str(err.value)
    assert "\n" not in message and "--global-budget" in message and "30%" in message


def test_the_fraction_and_the_count_keep_what_they_say():
    one = PruningConfig(global_policy="rollout", global_budget=parse_budget("1"))
    assert global_keep_count(LAYOUT, one) == 1
    third = PruningConfig(global_policy="rollout", global_budget=parse_budget("30%"))
    assert global_keep_count(LAYOUT, third) == 3


@pytest.mark.parametrize("value,words", [
    (1.0, "could mean"), (0.0, "could mean"), (3.0, "could mean"), (True, "not a number"),
    (False, "not a number"), (1.5, "above 1"), (-1, "negative"), (float("nan"), "not a number"),
    ("30%", "not a number"), (None, "not a number"),
])
def test_stored_budgets_are_checked_strictly(value, words):
    with pytest.raises(FastAVError, match=words):
        check_budget(value, "global_budget")


def test_a_count_round_trips_through_json_as_a_count():
    for budget in (1, 300, 0.3, 0.001):
        config = PruningConfig(global_policy="rollout", global_budget=budget).resolve(6)
        back = PruningConfig.from_dict(json.loads(json.dumps(config.to_dict()))).validate(6)
        assert back == config and type(back.global_budget) is type(budget)


def test_describe_names_the_reading():
    assert describe_budget(300) == "300 candidates" and describe_budget(0.3) == "30% of the candidates"


@FUZZ
@given(st.one_of(st.text(max_size=10), st.integers(-5, 10**6).map(str), st.floats().map(repr),
                 st.floats(0, 200).map(lambda x: f"{x}%"),
                 st.sampled_from(["1.0", "1", "0", "0.", ".0", "1e0", "100%", "0%", "1e-1"])))
def test_any_string_is_one_reading_or_one_line(text):
    value = accepts_or_refuses(lambda: parse_budget(text))
    if value is None:
        return
    assert check_budget(value, "global_budget") == value
    if isinstance(value, int):  # a count: written with digits only
        assert text.strip().isdigit() and value == int(text)
    else:  # a fraction, strictly between 0 and 1: never a whole number
        assert isinstance(value, float) and 0 < value < 1 and not value.is_integer() and math.isfinite(value)
