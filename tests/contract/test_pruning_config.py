"""Pruning config validation, budgets and the schedule of token counts."""

from dataclasses import replace

import pytest

from fastav_export.contract.layout import Segment, TokenLayout
from fastav_export.contract.budget import parse_budget
from fastav_export.contract.pruning_config import PruningConfig
from fastav_export.contract.schedule import make_schedule
from fastav_export.contract.selection import (
    fine_drop_count,
    global_keep_count,
    positional_keep_mask,
)
from fastav_export.errors import FastAVError
from fastav_export.models import get_model_spec


@pytest.mark.parametrize("config,message", [
    (PruningConfig(global_layer=0), "outside 1..5"),
    (PruningConfig(global_layer=6), "outside 1..5"),
    (PruningConfig(fine_ratio=1.0), r"outside \[0, 1\)"),
    (PruningConfig(fine_ratio=-0.1), r"outside \[0, 1\)"),
    (PruningConfig(alpha=1.5), r"outside \[0, 1\]"),
    (PruningConfig(global_budget=-3), "negative"),
    (PruningConfig(global_budget=1.5), "fraction above 1"),
    (PruningConfig(global_policy="random"), "unknown --global-policy"),
    (PruningConfig(cutoff=-1), "integer >= 0"),
])
def test_invalid_values_give_one_line_errors(config, message):
    with pytest.raises(FastAVError, match=message) as err:
        config.validate(6)
    assert "\n" not in str(err.value)


def test_resolve_fills_k_and_round_trips():
    config = PruningConfig().resolve(28)
    assert config.global_layer == 14
    assert PruningConfig.from_dict(config.to_dict()) == config
    with pytest.raises(FastAVError, match="unknown pruning settings"):
        PruningConfig.from_dict({"bogus": 1})


def test_budget_parsing():
    assert parse_budget("300") == 300 and parse_budget("0.25") == 0.25 and parse_budget("1e-1") == 0.1
    with pytest.raises(FastAVError, match="not a number"):
        parse_budget("many")


LAYOUT = TokenLayout((Segment("text", 4), Segment("video", 6, frame=0), Segment("audio", 2, frame=0),
                      Segment("video", 6, frame=1), Segment("audio", 2, frame=1), Segment("text", 3)))


def test_positional_rules_are_a_union():
    mask = positional_keep_mask(LAYOUT, PruningConfig(cutoff=6, keep_audio=3)).nonzero()[0].tolist()
    assert mask == [4, 5, 10, 11, 18]  # positions 4..5, then the first three audio tokens
    assert positional_keep_mask(LAYOUT, PruningConfig(keep_frames=1)).nonzero()[0].tolist() == list(range(4, 12))


def test_global_budgets():
    assert global_keep_count(LAYOUT, PruningConfig(global_policy="rollout", global_budget=5)) == 5
    assert global_keep_count(LAYOUT, PruningConfig(global_policy="rollout", global_budget=0.3)) == 5  # ceil(0.3*16)
    assert global_keep_count(LAYOUT, PruningConfig(global_policy="rollout", global_budget=99)) == 16
    assert global_keep_count(LAYOUT, PruningConfig(global_policy="rollout", keep_frames=1)) == 8  # positional-equivalent
    assert global_keep_count(LAYOUT, PruningConfig(global_policy="none")) == 16


def test_fine_drop_count_is_an_exact_floor():
    assert [fine_drop_count(c, 0.2) for c in (0, 4, 5, 10, 14)] == [0, 0, 1, 2, 2]
    assert fine_drop_count(100, 0.29) == 29  # 0.29 * 100 is 28.999... in floating point


def test_schedule_counts():
    schedule = make_schedule(LAYOUT, PruningConfig(global_policy="rollout", global_budget=10, fine_ratio=0.2), 6)
    assert schedule.global_layer == 3
    assert schedule.tokens == (23, 23, 23, 17, 15, 14)
    assert schedule.candidates == (16, 16, 16, 10, 8, 7)
    assert schedule.drops == (0, 0, 6, 2, 1, 0)  # floor(0.2 * 10), floor(0.2 * 8)
    dense = make_schedule(LAYOUT, PruningConfig.dense(), 6)
    assert dense.tokens == (23,) * 6 and dense.drops == (0,) * 6


def test_paper_preset_schedule_of_videollama2():
    spec = get_model_spec("videollama2")
    schedule = make_schedule(spec.default_layout(), spec.preset, 28)
    assert schedule.tokens[:14] == (2892,) * 14
    assert schedule.candidates[14] == 736 + 10  # video before position 750, first 10 audio
    assert schedule.tokens[14] == 44 + 746


def test_k_equals_l_minus_1_has_no_fine_pruning():
    schedule = make_schedule(LAYOUT, replace(PruningConfig(keep_frames=1), global_layer=5), 6)
    assert schedule.tokens == (23,) * 5 + (15,)
