"""`smart_resize` against transformers' own (Qwen2-VL's image processors; the PIL module's copy,
since the torchvision one does not import here)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastav_export.errors import FastAVError
from fastav_export.models.families.qwen2_5_omni.resize_rule import smart_resize

upstream = pytest.importorskip("transformers.models.qwen2_vl.image_processing_pil_qwen2_vl")

VIDEO_MIN, VIDEO_MAX = 128 * 28 * 28, 768 * 28 * 28


@pytest.mark.parametrize("height,width", [(360, 640), (720, 1280), (1080, 1920), (480, 640), (14, 2000), (50, 60),
                                          (2160, 3840), (42, 42), (70, 98)])
@pytest.mark.parametrize("limits", [(VIDEO_MIN, VIDEO_MAX), (56 * 56, 14 * 14 * 4 * 1280), (VIDEO_MIN, 235200)])
def test_common_sizes_match_transformers(height, width, limits):
    assert smart_resize(height, width, 28, *limits) == upstream.smart_resize(height, width, 28, *limits)


def test_640x360_video_frame():
    # 360 / 28 = 12.9 -> 13 rows of 28 px; 640 / 28 = 22.9 -> 23: 26 x 46 patches of 14 px.
    assert smart_resize(360, 640, 28, VIDEO_MIN, VIDEO_MAX) == (364, 644)


@settings(max_examples=300, deadline=None)
@given(height=st.integers(1, 5000), width=st.integers(1, 5000), factor=st.sampled_from([14, 28, 32]),
       min_pixels=st.integers(1, 200_000), extra=st.integers(0, 2_000_000))
def test_random_sizes_match_transformers(height, width, factor, min_pixels, extra):
    max_pixels = min_pixels + extra
    if max(height, width) / min(height, width) > 200:
        with pytest.raises(FastAVError, match="aspect ratio"):
            smart_resize(height, width, factor, min_pixels, max_pixels)
        return
    assert smart_resize(height, width, factor, min_pixels, max_pixels) == upstream.smart_resize(
        height, width, factor, min_pixels, max_pixels)


def test_bad_sides_are_one_line():
    with pytest.raises(FastAVError, match="positive"):
        smart_resize(0, 640)
