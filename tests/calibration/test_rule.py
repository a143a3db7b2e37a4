"""The keep-mass rule on hand-made importance vectors: exact choices, ties, all-equal, one dominant token."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastav_export.calibration.rule import choose_rule, choose_rule_over_clips, retained_mass
from fastav_export.contract.layout import Segment, TokenLayout
from fastav_export.contract.pruning_config import PruningConfig
from fastav_export.contract.selection import positional_keep_mask
from fastav_export.errors import FastAVError

# [text 2][video 4 (frame 0)][video 4 (frame 1)][audio 4][text 2]: candidates at 2..13
CONTIGUOUS = TokenLayout((Segment("text", 2), Segment("video", 4, frame=0), Segment("video", 4, frame=1),
                          Segment("audio", 4), Segment("text", 2)))
# [text 1]([video 2][audio 1]) x 3 frames [text 2]
INTERLEAVED = TokenLayout((Segment("text", 1), *[seg for f in range(3) for seg in (
    Segment("video", 2, frame=f), Segment("audio", 1, frame=f))], Segment("text", 2)))


def importance(layout, values: dict[int, float], default: float = 0.0) -> np.ndarray:
    out = np.full(layout.n_tokens, default)
    for position, value in values.items():
        out[position] = value
    return out


def test_all_equal_keeps_the_share_asked_for_with_the_smallest_cutoff():
    rule = choose_rule(np.ones(CONTIGUOUS.n_tokens), CONTIGUOUS, 0.5)  # 12 candidates, half of them
    assert rule.kept == 6 and rule.mass == pytest.approx(0.5)
    # every 6-candidate rule holds 0.5 here; the smallest cutoff wins the tie: audio 0..3 + 2 more
    assert (rule.cutoff, rule.keep_audio) == (4, 4)


def test_one_dominant_video_token_is_kept_with_everything_before_it():
    rule = choose_rule(importance(CONTIGUOUS, {5: 1.0}), CONTIGUOUS, 0.9)
    assert (rule.cutoff, rule.keep_audio, rule.kept) == (6, 0, 4) and rule.mass == pytest.approx(1.0)


def test_one_dominant_audio_token_is_kept_alone():
    rule = choose_rule(importance(CONTIGUOUS, {10: 1.0}, default=1e-9), CONTIGUOUS, 0.9)
    assert (rule.cutoff, rule.keep_audio, rule.kept) == (0, 1, 1)


def test_ties_between_rules_go_to_more_mass_then_the_smaller_cutoff():
    # first video token and first audio token hold the mass equally: each alone holds 0.5
    values = importance(CONTIGUOUS, {2: 1.0, 10: 1.0})
    assert (choose_rule(values, CONTIGUOUS, 0.5).cutoff, choose_rule(values, CONTIGUOUS, 0.5).kept) == (0, 1)
    both = choose_rule(values, CONTIGUOUS, 1.0)
    assert (both.cutoff, both.keep_audio, both.kept) == (3, 1, 2)


def test_the_last_position_and_text_are_never_counted():
    # text holds almost everything: the candidates' mass is what counts
    values = importance(CONTIGUOUS, {0: 100.0, 15: 100.0, 13: 1.0})
    rule = choose_rule(values, CONTIGUOUS, 0.9)
    assert rule.keep_audio == 4 and rule.kept == 4


def test_interleaved_layouts_choose_first_frames():
    values = importance(INTERLEAVED, {1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0})  # frame 0 (1..3) and one token of frame 1
    rule = choose_rule(values, INTERLEAVED, 0.9)
    assert (rule.cutoff, rule.keep_frames, rule.kept) == (None, 2, 6)
    assert choose_rule(values, INTERLEAVED, 0.8).keep_frames == 2
    assert choose_rule(values, INTERLEAVED, 0.75).keep_frames == 1


def test_no_importance_on_candidates_counts_them_equally():
    rule = choose_rule(importance(CONTIGUOUS, {0: 1.0}), CONTIGUOUS, 0.25)
    assert rule.kept == 3


@pytest.mark.parametrize("keep_mass", [0.0, -0.1, 1.5, float("nan"), True])
def test_keep_mass_outside_the_unit_interval_is_refused(keep_mass):
    with pytest.raises(FastAVError, match="keep-mass"):
        choose_rule(np.ones(CONTIGUOUS.n_tokens), CONTIGUOUS, keep_mass)


def test_negative_or_misshaped_importance_is_refused():
    with pytest.raises(FastAVError, match="negative"):
        choose_rule(-np.ones(CONTIGUOUS.n_tokens), CONTIGUOUS, 0.5)
    with pytest.raises(FastAVError, match="shape"):
        choose_rule(np.ones(3), CONTIGUOUS, 0.5)


def _brute_force(values, layout, keep_mass):
    """Every (cutoff, keep_audio) pair: the fewest kept with enough mass."""
    best = None
    for cutoff in range(layout.n_tokens + 1):
        for audio in range(layout.count("audio") + 1):
            config = PruningConfig(global_layer=1, cutoff=cutoff, keep_audio=audio)
            kept = int(positional_keep_mask(layout, config).sum())
            mass = retained_mass(values, layout, config)
            if mass >= keep_mass - 1e-9 and (best is None or kept < best):
                best = kept
    return best


@settings(max_examples=80, deadline=None, database=None)
@given(values=st.lists(st.floats(0, 10), min_size=CONTIGUOUS.n_tokens, max_size=CONTIGUOUS.n_tokens),
       keep_mass=st.floats(0.01, 1.0))
def test_the_search_keeps_as_few_as_brute_force(values, keep_mass):
    values = np.array(values)
    rule = choose_rule(values, CONTIGUOUS, keep_mass)
    config = rule.config(PruningConfig(global_layer=1))
    assert int(positional_keep_mask(CONTIGUOUS, config).sum()) == rule.kept
    assert retained_mass(values, CONTIGUOUS, config) == pytest.approx(rule.mass)
    assert rule.mass >= keep_mass - 1e-9
    assert rule.kept == _brute_force(values, CONTIGUOUS, keep_mass)


# ---- interleaved clips of different lengths: the rule is in frames -----------------------
def _clip(frames: int, audio_per_frame: int) -> TokenLayout:
    return TokenLayout((Segment("text", 1), *[seg for f in range(frames) for seg in (
        Segment("video", 2, frame=f), Segment("audio", audio_per_frame, frame=f))], Segment("text", 2)))


def _frame_importance(layout: TokenLayout, per_frame: list[float]) -> np.ndarray:
    """Each frame's importance spread evenly over its candidates."""
    frames, candidates = layout.frames(), layout.candidate_mask()
    out = np.zeros(layout.n_tokens)
    for frame, value in enumerate(per_frame):
        mask = candidates & (frames == frame)
        out[mask] = value / mask.sum()
    return out


def test_clips_of_different_lengths_share_one_frame_rule():
    short, long = _clip(3, 4), _clip(5, 2)
    importances = [_frame_importance(short, [0.6, 0.3, 0.1]), _frame_importance(long, [0.5, 0.4, 0.05, 0.03, 0.02])]
    rule = choose_rule_over_clips(importances, [short, long], 0.85)
    # mean per frame: 0.55, 0.35, 0.075, ...: frames 0..1 hold 0.9
    assert rule.keep_frames == 2 and rule.cutoff is None and rule.mass == pytest.approx(0.9)
    assert rule.kept == int(positional_keep_mask(short, PruningConfig(keep_frames=2)).sum())  # on the first clip
    assert choose_rule_over_clips(importances, [short, long], 0.95).keep_frames == 3


@settings(max_examples=50, deadline=None, database=None)
@given(st.lists(st.lists(st.floats(0, 1), min_size=INTERLEAVED.n_tokens, max_size=INTERLEAVED.n_tokens),
                min_size=1, max_size=4), st.floats(0.05, 1.0))
def test_on_one_layout_the_clip_rule_is_the_mean_rule(rows, keep_mass):
    importances = [np.array(row) for row in rows]
    expected = choose_rule(np.mean(importances, axis=0), INTERLEAVED, keep_mass)
    rule = choose_rule_over_clips(importances, [INTERLEAVED] * len(rows), keep_mass)
    assert (rule.keep_frames, rule.kept) == (expected.keep_frames, expected.kept)
    assert rule.mass == pytest.approx(expected.mass)


def test_clips_of_different_lengths_need_a_frame_rule():
    with pytest.raises(FastAVError, match="same length") as err:
        choose_rule_over_clips([np.ones(CONTIGUOUS.n_tokens), np.ones(18)],
                               [CONTIGUOUS, _clip(1, 1).with_prompt_text(1, 16)], 0.9)
    assert "\n" not in str(err.value)
