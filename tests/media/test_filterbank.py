"""The Kaldi filterbank against an independent numpy reference, and VideoLLaMA2's audio window."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fastav_export.errors import FastAVError
from fastav_export.media.filterbank import (
    FBANK_MEAN,
    audio_features,
    frame_count,
    kaldi_fbank,
    mel_centre_frequencies,
    normalize_fbank,
    video_audio_clips,
)
from fastav_export.media.settings import AudioSettings

RATE = 16_000
SETTINGS = AudioSettings()  # 16 kHz, 30 s, 128 mels
SHORT = AudioSettings(seconds=1.0)
FLOOR = math.log(np.finfo(np.float32).eps)


def reference_fbank(wave: np.ndarray, rate: int = RATE, mel_bins: int = 128) -> np.ndarray:
    """Kaldi's fbank (povey window, DC removal, preemphasis 0.97, 512-point power spectrum,
    mel triangles 20 Hz..Nyquist, log floored at float32 eps), spelt out in float64."""
    window, shift, n_fft = 400, 160, 512
    count = 1 + (len(wave) - window) // shift
    n = np.arange(window)
    povey = (0.5 - 0.5 * np.cos(2 * np.pi * n / (window - 1))) ** 0.85

    def mel(f):
        return 1127.0 * np.log(1.0 + f / 700.0)

    low, high = mel(20.0), mel(rate / 2)
    step = (high - low) / (mel_bins + 1)
    bin_mels = mel(np.arange(n_fft // 2 + 1) * rate / n_fft)
    weights = np.zeros((mel_bins, n_fft // 2 + 1))
    for m in range(mel_bins):
        left, centre, right = low + m * step, low + (m + 1) * step, low + (m + 2) * step
        for k in range(n_fft // 2):  # Kaldi gives the Nyquist bin no weight
            x = bin_mels[k]
            if left < x <= centre:
                weights[m, k] = (x - left) / (centre - left)
            elif centre < x < right:
                weights[m, k] = (right - x) / (right - centre)
    out = np.empty((count, mel_bins))
    for t in range(count):
        frame = wave[t * shift:t * shift + window].astype(np.float64)
        frame = frame - frame.mean()
        shifted = np.concatenate([frame[:1], frame[:-1]])
        frame = (frame - 0.97 * shifted) * povey
        power = np.abs(np.fft.rfft(frame, n_fft)) ** 2
        out[t] = np.log(np.maximum(weights @ power, np.finfo(np.float32).eps))
    return out


def _test_signal(seconds: float, seed: int = 0) -> np.ndarray:
    """Tones, a chirp and white noise (so every mel band has energy), int16-like amplitude."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(RATE * seconds)) / RATE
    chirp = np.sin(2 * np.pi * (100 * t + 3900 * t**2 / seconds))
    wave = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 3000 * t) + 0.05 * chirp
    return (wave + 0.01 * rng.standard_normal(t.shape)) * 2**15


def test_matches_the_numpy_reference_in_float64() -> None:
    wave = _test_signal(0.3)
    ours = kaldi_fbank(torch.from_numpy(wave), SHORT)
    assert ours.dtype == torch.float64 and ours.shape == (1 + (len(wave) - 400) // 160, 128)
    np.testing.assert_allclose(ours.numpy(), reference_fbank(wave), rtol=0, atol=1e-4)


def test_matches_the_numpy_reference_in_float32() -> None:
    wave = _test_signal(0.25, seed=1)
    ours = kaldi_fbank(torch.from_numpy(wave.astype(np.float32)), SHORT)
    assert ours.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), reference_fbank(wave.astype(np.float32)), rtol=0, atol=2e-3)


@pytest.mark.parametrize("freq", [800.0, 1234.5, 2000.0, 3333.0, 5000.0, 7600.0])
def test_a_tone_peaks_in_the_mel_band_centred_nearest_it(freq: float) -> None:
    # Above ~700 Hz the triangles are wider than an FFT bin (31.25 Hz), so the peak is unambiguous.
    t = np.arange(RATE // 2) / RATE
    fbank = kaldi_fbank(torch.from_numpy(0.5 * np.sin(2 * np.pi * freq * t) * 2**15), SHORT)
    centres = mel_centre_frequencies(SHORT)
    assert int(fbank.mean(0).argmax()) == int(np.argmin(np.abs(centres - freq)))


def test_mel_centres_follow_the_kaldi_mel_scale() -> None:
    centres = mel_centre_frequencies(SETTINGS)
    mels = 1127.0 * np.log(1.0 + centres / 700.0)
    np.testing.assert_allclose(np.diff(mels), np.diff(mels)[0], rtol=1e-9)
    assert 20.0 < centres[0] < centres[-1] < RATE / 2


def test_thirty_seconds_give_2998_frames() -> None:
    features = audio_features(np.zeros(30 * RATE, dtype=np.float32), SETTINGS)
    assert features.shape == (1, 2998, 128) == (1, SETTINGS.fbank_frames, SETTINGS.mel_bins)
    assert features.dtype == torch.float32


def _loud_tone_over_faint_noise(seconds: float) -> np.ndarray:
    """[-1, 1] float64: a loud 300 Hz tone over noise 140 dB below it, so the high mel bins are
    quiet and float32 rounding of the loud bins' spectrum swamps them."""
    t = np.arange(round(RATE * seconds)) / RATE
    return 0.9 * np.sin(2 * np.pi * 300 * t) + 1e-7 * np.random.default_rng(4).standard_normal(t.shape)


def test_float64_audio_is_filtered_in_float64() -> None:
    # Upstream's process_audio_file reads an audio file with soundfile (float64) and fbank keeps that dtype.
    wave, window = _loud_tone_over_faint_noise(0.5), AudioSettings(seconds=0.5)
    features = audio_features(wave, window)
    assert features.dtype == torch.float32  # what the audio encoder graph takes
    np.testing.assert_allclose(features[0].double().numpy(), reference_fbank(wave * 2**15), rtol=0, atol=1e-3)


def test_float32_audio_is_filtered_in_float32() -> None:
    # Upstream's load_audio_from_video hands a video's track on as float32 (ffmpeg's int16 / 32768).
    wave, window = _loud_tone_over_faint_noise(0.5).astype(np.float32), AudioSettings(seconds=0.5)
    assert torch.equal(audio_features(wave, window)[0], kaldi_fbank(torch.from_numpy(wave) * 2**15, window))


def test_silence_sits_on_the_log_floor() -> None:
    silent = kaldi_fbank(torch.zeros(RATE // 10), SHORT)
    assert torch.equal(silent, torch.full_like(silent, FLOOR))


def test_short_audio_is_zero_padded_and_long_audio_cut_to_the_window() -> None:
    wave = (_test_signal(1.5, seed=2) / 2**15).astype(np.float32)
    window = AudioSettings(seconds=1.0)
    assert torch.equal(audio_features(wave, window), audio_features(wave[:RATE], window))
    short = wave[:RATE // 2]
    padded = np.concatenate([short, np.zeros(RATE - len(short), dtype=np.float32)])
    features = audio_features(short, window)
    assert features.shape == (1, window.fbank_frames, 128)
    assert torch.equal(features, audio_features(padded, window))
    # The tail frames hold only padding: silence.
    assert torch.all(features[0, -10:] == FLOOR)


def test_audio_is_scaled_to_int16_range() -> None:
    wave = (_test_signal(0.2, seed=3) / 2**15).astype(np.float32)
    window = AudioSettings(seconds=0.2)
    expected = kaldi_fbank(torch.from_numpy(wave) * 2**15, window).unsqueeze(0)
    assert torch.equal(audio_features(wave, window), expected)


def test_normalisation_is_beats_statistics() -> None:
    assert float(normalize_fbank(torch.tensor(FBANK_MEAN))) == 0.0
    assert float(normalize_fbank(torch.tensor(FBANK_MEAN + 2 * 6.55582))) == pytest.approx(1.0)


def test_rejects_multichannel_audio() -> None:
    with pytest.raises(FastAVError, match="mono"):
        audio_features(np.zeros((2, RATE), dtype=np.float32), SETTINGS)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=4000))
def test_frame_count_is_kaldis_snip_edges_formula(samples: int) -> None:
    frames = kaldi_fbank(torch.ones(samples), SHORT).shape
    expected = 0 if samples < 400 else 1 + (samples - 400) // 160
    assert frames == (expected, 128)
    assert frame_count(samples, SHORT) == expected


def test_video_audio_is_eight_evenly_spread_two_second_clips() -> None:
    track = np.arange(60 * RATE, dtype=np.float64)  # sample i holds i
    clips = video_audio_clips(track, RATE)
    # Duration 60 s: clip i starts at i * (60 - 2) / 8 s = i * 7.25 s.
    starts = [round(i * 7.25 * RATE) for i in range(8)]
    expected = np.concatenate([np.arange(s, s + 2 * RATE) for s in starts])
    np.testing.assert_array_equal(clips, expected)


def test_video_audio_clip_starts_round_down_like_upstream() -> None:
    track = np.arange(10 * RATE + 7, dtype=np.float64)
    clips = video_audio_clips(track, RATE).reshape(8, 2 * RATE)
    latest = (len(track) / RATE - 2) / 8
    assert [int(c[0]) for c in clips] == [math.floor(i * latest * RATE) for i in range(8)]


def test_a_track_shorter_than_a_clip_is_repeated_whole() -> None:
    track = np.arange(RATE, dtype=np.float32)
    np.testing.assert_array_equal(video_audio_clips(track, RATE), np.tile(track, 8))
