"""Frame sampling and audio length of a clip of T seconds (qwen-omni-utils' rules, restated: that
package imports torchvision, which does not import here; the mel frame count is checked against
transformers' Whisper feature extractor)."""

from __future__ import annotations

import numpy as np
import pytest

from fastav_export.errors import FastAVError
from fastav_export.models.families.qwen2_5_omni.video_sampling import (
    MAX_MEL_FRAMES,
    audio_feature_length,
    sample_video,
    sampled_frame_count,
)


@pytest.mark.parametrize("total_frames,fps,expected", [
    (30, 30.0, 4),     # 1 s: 2 frames wanted, raised to the minimum of 4
    (90, 30.0, 6),     # 3 s
    (75, 30.0, 4),     # 2.5 s: 5 frames, rounded down to a multiple of 2
    (210, 30.0, 14),   # 7 s
    (15000, 30.0, 768),  # 500 s: capped at 768 frames
    (3, 30.0, 2),      # fewer frames than the minimum: all of them, rounded down to 2
])
def test_sampled_frame_count(total_frames, fps, expected):
    assert sampled_frame_count(total_frames, fps) == expected


def test_too_short_video_is_one_line():
    with pytest.raises(FastAVError, match="too short"):
        sampled_frame_count(1, 30.0)
    with pytest.raises(FastAVError, match="positive"):
        sample_video(0.0, 360, 640)


def test_sample_video_640x360():
    one = sample_video(1.0, 360, 640)
    # 4 frames over 1 s are sampled at 4 fps, but the processor, called without fps as Qwen's examples
    # call it, counts 2 / 2.0 = 1 s per temporal grid (2 frames) whatever the sampled rate.
    assert (one.frames, one.sample_fps, one.grid_t, one.second_per_grid) == (4, 4.0, 2, 1.0)
    seven = sample_video(7.0, 360, 640)
    assert (seven.frames, seven.grid_t, seven.second_per_grid, seven.grid_h, seven.grid_w) == (14, 7, 1.0, 26, 46)


def test_long_video_frames_shrink_to_the_total_pixel_budget():
    # 768 frames x 1280 x 720: the per-frame limit drops from 768 to 300 28 x 28 blocks.
    frame = sample_video(600.0, 720, 1280)
    assert frame.frames == 768 and frame.height * frame.width <= int(128000 * 28 * 28 * 0.9) / 768 * 2


@pytest.mark.parametrize("seconds", [1.0, 2.5, 7.0, 0.0123, 29.99])
def test_audio_feature_length_matches_whisper_feature_extractor(seconds):
    from transformers import WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor(feature_size=128, chunk_length=30)
    features = extractor(np.zeros(round(seconds * 16000), np.float32), sampling_rate=16000, padding="max_length",
                         return_attention_mask=True, return_tensors="np")
    assert audio_feature_length(seconds) == int(features["attention_mask"].sum())


def test_audio_feature_length_cap_is_the_released_window():
    from transformers import WhisperFeatureExtractor

    # Qwen2.5-Omni's feature extractor: chunk_length 300 s.
    assert MAX_MEL_FRAMES == WhisperFeatureExtractor(feature_size=128, chunk_length=300).nb_max_frames
    assert audio_feature_length(1000.0) == MAX_MEL_FRAMES
