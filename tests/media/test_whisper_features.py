"""video-SALMONN 2's Whisper features: 1 s minimum, consecutive 30 s chunks, each padded to 30 s."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastav_export.errors import FastAVError
from fastav_export.media.whisper_features import chunk_count, whisper_chunks, whisper_feature_extractor

SR = 16_000


def tone(seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.fixture(scope="module")
def extractor():
    return whisper_feature_extractor()


def test_extractor_has_whisper_large_v3_settings(extractor):
    assert (extractor.feature_size, extractor.sampling_rate, extractor.hop_length, extractor.n_fft) == (128, SR, 160, 400)
    assert (extractor.n_samples, extractor.nb_max_frames, extractor.padding_value) == (30 * SR, 3000, 0.0)


@pytest.mark.parametrize("samples, chunks", [
    (0, 1), (1, 1), (SR, 1), (10 * SR, 1), (30 * SR, 1), (30 * SR + 1, 2), (45 * SR, 2), (60 * SR, 2), (61 * SR, 3),
])
def test_chunk_count(samples, chunks):
    assert chunk_count(samples) == chunks


def test_chunk_count_at_another_rate():
    assert chunk_count(100, sample_rate=8_000) == 1
    assert chunk_count(30 * 8_000 + 1, sample_rate=8_000) == 2


@pytest.mark.parametrize("seconds, chunks", [(30, 1), (10, 1), (45, 2), (0.2, 1)])
def test_shapes(extractor, seconds, chunks):
    features = whisper_chunks(tone(seconds), extractor)
    assert features.dtype == torch.float32
    assert tuple(features.shape) == (chunks, 128, 3000) and chunks == chunk_count(int(seconds * SR))


def test_chunks_are_consecutive_30s_pieces_each_padded(extractor):
    # 30 s of silence then 15 s of tone: chunk 0 is all silence, chunk 1 the tone padded like a 15 s clip
    wave = np.concatenate([np.zeros(30 * SR, np.float32), tone(15, 660)])
    features = whisper_chunks(wave, extractor)
    torch.testing.assert_close(features[0], whisper_chunks(np.zeros(30 * SR, np.float32), extractor)[0])
    torch.testing.assert_close(features[1], whisper_chunks(tone(15, 660), extractor)[0])
    assert features[1, :, :1400].std() > 0.05  # the tone is there, not in chunk 0
    # padded frames (after 15 s = 1500 frames) sit at one floor value
    assert torch.unique(features[1, :, 1510:]).numel() == 1


def test_short_waveform_is_padded_to_one_second(extractor):
    short = tone(0.3)
    padded = np.concatenate([short, np.zeros(SR - short.shape[0], np.float32)])
    torch.testing.assert_close(whisper_chunks(short, extractor), whisper_chunks(padded, extractor))
    assert tuple(whisper_chunks(np.zeros(0, np.float32), extractor).shape) == (1, 128, 3000)


def test_stereo_is_a_user_error():
    with pytest.raises(FastAVError, match="mono"):
        whisper_chunks(np.zeros((2, SR), np.float32))
