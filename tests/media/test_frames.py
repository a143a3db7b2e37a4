"""Frame sampling, padding and SigLIP preprocessing, against hand-computed upstream values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastav_export.errors import FastAVError
from fastav_export.media.frames import (
    pad_to_square,
    padding_colour,
    preprocess_frames,
    sample_at_fps,
    sample_frame_indices,
)
from fastav_export.media.settings import VideoSettings

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # distinct per channel, so a channel mix-up shows
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def test_uniform_sampling_of_80_frames_matches_upstream_by_hand():
    # upstream frame_sample: segment = (80 - 1) / 16 = 4.9375; index i = round((i + 0.5) * 4.9375)
    # = round(2.47, 7.41, 12.34, 17.28, 22.22, 27.16, 32.09, 37.03, 41.97, 46.91, ...)
    assert sample_frame_indices(80, 16) == [2, 7, 12, 17, 22, 27, 32, 37, 42, 47, 52, 57, 62, 67, 72, 77]


def test_short_clip_repeats_indices_like_upstream():
    # segment = 4 / 16 = 0.25: middles 0.125, 0.375, ..., 3.875
    assert sample_frame_indices(5, 16) == [0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4]
    assert sample_frame_indices(1, 4) == [0, 0, 0, 0]


def test_ties_round_up_as_upstreams_epsilon_makes_them():
    # middles 0.5 and 1.5: numpy alone rounds half to even (0, 2); upstream's +1e-6 gives 1, 2
    assert sample_frame_indices(3, 2) == [1, 2]


def test_no_frames_is_a_user_error():
    with pytest.raises(FastAVError, match="no frames"):
        sample_frame_indices(0, 16)


@given(total=st.integers(1, 100_000), num=st.integers(1, 64))
def test_indices_are_num_sorted_and_in_range(total, num):
    indices = sample_frame_indices(total, num)
    assert len(indices) == num
    assert indices == sorted(indices)
    assert all(0 <= i < total for i in indices)


def test_padding_colour_truncates_the_mean_like_upstream():
    assert padding_colour((0.5, 0.5, 0.5)) == (127, 127, 127)
    assert padding_colour(CLIP_MEAN) == (122, 116, 104)


def test_wide_frame_is_centred_vertically_on_the_fill():
    frame = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3)
    square = pad_to_square(frame, (1, 2, 3))
    assert square.shape == (4, 4, 3) and square.dtype == np.uint8
    np.testing.assert_array_equal(square[1:3], frame)  # offset (4 - 2) // 2 = 1
    assert (square[[0, 3]] == (1, 2, 3)).all()


def test_tall_frame_is_centred_horizontally_and_odd_margins_put_the_extra_right():
    frame = np.full((5, 2, 3), 9, np.uint8)
    square = pad_to_square(frame, (7, 7, 7))
    assert square.shape == (5, 5, 3)
    np.testing.assert_array_equal(square[:, 1:3], frame)  # offset (5 - 2) // 2 = 1
    assert (square[:, [0, 3, 4]] == 7).all()


def test_square_frame_is_unchanged():
    frame = np.zeros((3, 3, 3), np.uint8)
    assert pad_to_square(frame, (1, 1, 1)) is frame


@pytest.mark.parametrize("pad", [False, True])
def test_preprocess_constant_frames_gives_normalised_value(pad):
    settings = VideoSettings(num_frames=2, image_size=12, image_mean=CLIP_MEAN, image_std=CLIP_STD)
    frames = np.full((2, 12, 24, 3), 200, np.uint8)
    pixels = preprocess_frames(frames, settings, pad=pad)
    assert tuple(pixels.shape) == (2, 3, 12, 12) and str(pixels.dtype) == "torch.float32"
    expected = (200 / 255 - np.array(CLIP_MEAN)) / np.array(CLIP_STD)  # channel-first, RGB order
    # the centre is frame content either way (a constant area stays exact through bicubic)
    np.testing.assert_allclose(pixels[1, :, 6, 6].numpy(), expected, atol=1e-5)
    corner = pixels[0, :, 0, 0].numpy()
    if pad:  # the top rows are the mean-coloured padding: int(mean * 255) / 255, normalised
        np.testing.assert_allclose(corner, (np.array(padding_colour(CLIP_MEAN)) / 255 - CLIP_MEAN) / CLIP_STD,
                                   atol=1e-5)
    else:
        np.testing.assert_allclose(corner, expected, atol=1e-5)


def test_preprocess_keeps_channel_order():
    settings = VideoSettings(num_frames=1, image_size=8)
    frames = np.zeros((1, 8, 8, 3), np.uint8)
    frames[..., 0] = 255  # pure red
    pixels = preprocess_frames(frames, settings)
    np.testing.assert_allclose(pixels[0, :, 4, 4].numpy(), [1.0, -1.0, -1.0], atol=1e-6)


def test_preprocess_rejects_float_frames():
    with pytest.raises(ValueError, match="uint8"):
        preprocess_frames(np.zeros((1, 4, 4, 3), np.float32), VideoSettings(1, 8))


@pytest.mark.parametrize("total, native, expected", [
    (90, 30.0, [0, 30, 60]),  # 3 s at 30 fps: one frame a second
    (24, 8.0, [0, 8, 16]),
    (25, 8.0, [0, 8, 16, 24]),  # a partial last second still gives a frame
    (5, 0.5, [0, 1, 2, 3, 4]),  # slower than 1 fps: every frame
])
def test_frames_at_one_per_second(total, native, expected):
    assert sample_at_fps(total, native, 1.0, 110) == expected


def test_frames_beyond_the_most_are_spread_from_first_to_last():
    indices = sample_at_fps(30 * 200, 30.0, 1.0, 110)  # 200 s
    assert len(indices) == 110 and indices[0] == 0 and indices[-1] == 30 * 200 - 1
    assert indices == [int(i) for i in np.linspace(0, 30 * 200 - 1, 110).astype(int)]


def test_a_clip_is_read_at_one_frame_a_second(tmp_path):
    from fastav_export.media.decode import read_frames_at_fps
    from fastav_export.testing.media_clips import clip_frame, write_test_clip

    clip = write_test_clip(tmp_path / "clip.mp4", seconds=3.0, fps=8)
    frames, seconds = read_frames_at_fps(clip, 1.0, 110)
    assert frames.shape[0] == 3 and seconds == pytest.approx(3.0)
    for got, index in zip(frames, (0, 8, 16)):  # the background colour tells the frame apart
        assert np.abs(got[2, 2].astype(int) - clip_frame(index, 64, 48)[2, 2]).max() < 40
