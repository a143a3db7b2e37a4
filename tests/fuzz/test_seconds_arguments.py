"""`--duration` and `--audio-window` parse any text into a valid number of seconds or refuse it in the
parser (one `argparse` error), never a NaN, an infinity or a value the layout cannot use."""

from __future__ import annotations

import argparse
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastav_export.cli.arg_types import MAX_CLIP_SECONDS, clip_seconds
from fastav_export.models.families.video_salmonn2.family import window_seconds
from fastav_export.models.families.video_salmonn2.spec import REAL_INTERLEAVE

TEXTS = st.one_of(st.text(max_size=20), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                  st.integers(-10**6, 10**6).map(str))


@given(TEXTS)
def test_clip_seconds_accept_only_finite_positive_lengths(text):
    try:
        value = clip_seconds(text)
    except argparse.ArgumentTypeError as exc:
        assert "\n" not in str(exc)
        return
    assert math.isfinite(value) and 0 < value <= MAX_CLIP_SECONDS
    if value > 1.0:  # every accepted length over a second has a layout (the model needs 2 frames)
        frames = REAL_INTERLEAVE.frames(value)
        assert 2 <= frames <= 110 and REAL_INTERLEAVE.audio_per_frame(frames, REAL_INTERLEAVE.chunks(value)) >= 1


@given(TEXTS)
def test_window_seconds_fit_a_chunk(text):
    try:
        value = window_seconds(text)
    except argparse.ArgumentTypeError:
        return
    assert 0 < value <= 30


@pytest.mark.parametrize("text", ["nan", "inf", "-1", "0", "86401", "ten"])
def test_bad_lengths_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        clip_seconds(text)
