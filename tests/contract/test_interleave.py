"""video-SALMONN 2's per-frame layout: frames, audio tokens per frame and their order, from a clip's length."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fastav_export.contract.interleave import FrameInterleave, upsample_index
from fastav_export.contract.layout import AUDIO, VIDEO
from fastav_export.errors import FastAVError
from fastav_export.models.families.video_salmonn2.spec import REAL_INTERLEAVE

# (seconds, frames at 1 fps, 30 s chunks, audio tokens per frame) with the public scripts' 0.5 s window.
CLIPS = [(30.0, 30, 1, 2), (10.0, 10, 1, 6), (45.0, 45, 2, 3), (110.0, 110, 4, 3), (300.0, 110, 10, 6)]


@pytest.mark.parametrize("seconds, frames, chunks, k", CLIPS)
def test_audio_tokens_per_frame_follow_the_duration(seconds, frames, chunks, k):
    rule = REAL_INTERLEAVE
    assert (rule.frames(seconds), rule.chunks(seconds)) == (frames, chunks)
    assert rule.audio_per_frame(frames, chunks, seconds) == k
    layout = rule.layout_for_duration(seconds, 14, 30)
    assert layout.count(VIDEO) == 182 * frames and layout.count(AUDIO) == k * frames
    # per frame: [182 video][k audio], frame indices in order
    media = layout.segments[1:-1]
    assert [(s.kind, s.length, s.frame) for s in media[:4]] == [
        (VIDEO, 182, 0), (AUDIO, k, 0), (VIDEO, 182, 1), (AUDIO, k, 1)]


def test_windows_per_chunk_follow_the_window_length():
    assert REAL_INTERLEAVE.windows_per_chunk == 60  # 0.5 s: kernel 25 of 1500 positions
    assert FrameInterleave(182, window_seconds=1 / 3).windows_per_chunk == 88  # the code's default: kernel 17
    assert FrameInterleave(182, window_seconds=1.0).windows_per_chunk == 30


def test_a_clip_under_the_audio_cap_puts_the_rest_after_the_last_frame():
    # 1.1 s: 2 frames, 60 audio tokens but upstream spreads only round(1.1 * 50) = 55 over the frames
    layout = REAL_INTERLEAVE.layout_for_duration(1.1, 14, 30)
    audio = [s for s in layout.segments if s.kind == AUDIO]
    assert [(s.length, s.frame) for s in audio] == [(28, 0), (28, 1), (5, 1)]
    rows = np.arange(60)[:, None]
    arranged = REAL_INTERLEAVE.arrange_audio(rows, 2, 1.1)
    assert arranged.shape == (61, 1) and list(arranged[56:, 0]) == [55, 56, 57, 58, 59]


def test_a_one_frame_clip_is_refused_in_one_line():
    with pytest.raises(FastAVError, match="at least 2"):
        REAL_INTERLEAVE.layout_for_duration(0.9, 14, 30)


def test_arranged_audio_rows_are_upsampled_only_when_they_do_not_divide():
    rows = np.arange(60)[:, None]
    np.testing.assert_array_equal(REAL_INTERLEAVE.arrange_audio(rows, 30, 30.0), rows)  # 60 = 2 x 30
    arranged = REAL_INTERLEAVE.arrange_audio(np.arange(120)[:, None], 45, 45.0)  # 120 -> 135 = 3 x 45
    assert arranged.shape == (135, 1)
    assert np.all(np.diff(arranged[:, 0]) >= 0) and set(arranged[:, 0]) == set(range(120))


@settings(max_examples=200, deadline=None)
@given(count=st.integers(1, 2000), extra=st.integers(0, 200))
def test_upsampling_picks_the_rows_torch_nearest_interpolation_picks(count, extra):
    size = count + extra
    expected = torch.nn.functional.interpolate(torch.arange(count, dtype=torch.float32)[None, None], size=size,
                                               mode="nearest")[0, 0].long().numpy()
    np.testing.assert_array_equal(upsample_index(count, size), expected)


def test_the_rule_round_trips_through_json():
    rule = FrameInterleave(12, window_seconds=1 / 3, max_frames=8)
    assert FrameInterleave.from_json(rule.to_json()) == rule


def test_a_window_longer_than_a_chunk_is_refused():
    with pytest.raises(FastAVError, match="window"):
        FrameInterleave(182, window_seconds=31.0)
