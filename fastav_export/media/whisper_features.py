"""video-SALMONN 2's audio preprocessing: Whisper log-mel features of consecutive 30 s chunks.

Upstream (bytedance video-SALMONN 2, the dataset/inference code that feeds
video_salmonn_2.py): the 16 kHz mono waveform is zero-padded to 1 s if shorter, cut into
consecutive 30 s pieces (the last one may be shorter), and each piece goes through
whisper-large-v3's `WhisperFeatureExtractor` with its default padding (zeros to 30 s), giving
[128, 3000] per piece; the pieces are stacked as chunks [C, 128, 3000].

The extractor is built from whisper-large-v3's preprocessor settings, never `from_pretrained`
(no network).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import FastAVError

SAMPLE_RATE = 16_000
CHUNK_SECONDS = 30
MIN_SECONDS = 1  # shorter waveforms are zero-padded to this
MEL_BINS = 128  # whisper-large-v3


def whisper_feature_extractor():
    """transformers' WhisperFeatureExtractor with whisper-large-v3's preprocessor_config.json values."""
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=MEL_BINS, sampling_rate=SAMPLE_RATE, hop_length=160,
                                   chunk_length=CHUNK_SECONDS, n_fft=400, padding_value=0.0)


def chunk_count(samples: int, sample_rate: int = SAMPLE_RATE) -> int:
    """How many 30 s chunks a waveform of `samples` samples gives (after padding to 1 s)."""
    samples = max(int(samples), MIN_SECONDS * sample_rate)
    return max(1, math.ceil(samples / (CHUNK_SECONDS * sample_rate)))


def whisper_chunks(waveform, extractor=None) -> torch.Tensor:
    """Waveform [S] (float, 16 kHz, mono) -> Whisper log-mel features [C, 128, 3000] fp32, C = chunk_count(S).

    `extractor`: a WhisperFeatureExtractor to reuse (default: `whisper_feature_extractor()`).
    """
    wave = np.asarray(waveform, dtype=np.float32)
    if wave.ndim != 1:
        raise FastAVError(f"audio waveform has shape {wave.shape}: pass one mono channel as [samples] at 16 kHz")
    minimum = MIN_SECONDS * SAMPLE_RATE
    if wave.shape[0] < minimum:
        wave = np.pad(wave, (0, minimum - wave.shape[0]))
    extractor = extractor if extractor is not None else whisper_feature_extractor()
    step = CHUNK_SECONDS * SAMPLE_RATE
    pieces = [wave[start:start + step] for start in range(0, wave.shape[0], step)]
    features = [extractor(piece, sampling_rate=SAMPLE_RATE, return_tensors="pt")["input_features"][0]
                for piece in pieces]
    return torch.stack(features).float()
