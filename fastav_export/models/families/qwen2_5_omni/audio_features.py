"""A 16 kHz mono waveform -> the log-mel features Qwen2.5-Omni's audio tower reads, as its processor computes them.

Qwen2.5-Omni's processor runs transformers' `WhisperFeatureExtractor` with the checkpoint's
preprocessor settings (128 mel bins, 400-sample FFT, 160-sample hop, a 300 s window) and always
pads to that window (`padding="max_length"`; longer audio is truncated to it). Its attention mask
marks the valid frames: one per started hop, ceil(S / 160) for S samples. The thinker then passes
only those frames, [128, feature_length], to its audio tower, and that is what is computed here.

Padding a short clip to 300 s would cost 30,000 frames of STFT for nothing, so the waveform is
padded with n_fft zeros instead. The valid frames come out the same: a frame's window reaches at
most n_fft / 2 samples past the last valid frame's hop, so it sees zeros either way, and the
extractor's dynamic-range floor (the spectrogram's maximum minus 8) is unchanged, because the
frames the long padding adds hold nothing but zeros, whose log-mel value is the lowest there is.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from ....errors import FastAVError
from .video_sampling import (
    AUDIO_SAMPLE_RATE,
    MAX_MEL_FRAMES,
    MEL_HOP_SAMPLES,
    audio_feature_length,
)

MEL_BINS = 128
FFT_SAMPLES = 400
WINDOW_SECONDS = MAX_MEL_FRAMES * MEL_HOP_SAMPLES // AUDIO_SAMPLE_RATE  # 300: the extractor's chunk_length


@lru_cache(maxsize=1)
def omni_feature_extractor():
    """transformers' WhisperFeatureExtractor with Qwen2.5-Omni's preprocessor_config.json values (built here:
    no download)."""
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=MEL_BINS, sampling_rate=AUDIO_SAMPLE_RATE, hop_length=MEL_HOP_SAMPLES,
                                   chunk_length=WINDOW_SECONDS, n_fft=FFT_SAMPLES, padding_value=0.0, dither=0.0,
                                   padding_side="right", return_attention_mask=True)


def omni_audio_features(waveform) -> tuple[torch.Tensor, int]:
    """waveform [S] float (16 kHz mono, in [-1, 1]) -> (input_features [128, L] float32, L), L = feature_length:
    the valid log-mel frames of the first 300 s, as the Omni processor computes them and the thinker keeps them."""
    wave = np.asarray(waveform, dtype=np.float32)
    if wave.ndim != 1 or not wave.size:
        raise FastAVError(f"audio waveform has shape {wave.shape}: pass one mono channel as [samples] at 16 kHz")
    wave = wave[:MAX_MEL_FRAMES * MEL_HOP_SAMPLES]
    length = audio_feature_length(wave.size / AUDIO_SAMPLE_RATE)
    padded = np.pad(wave, (0, FFT_SAMPLES))
    features = omni_feature_extractor()(padded, sampling_rate=AUDIO_SAMPLE_RATE, padding="do_not_pad",
                                        return_attention_mask=False, return_tensors="pt")["input_features"][0]
    return features[:, :length].float().contiguous(), length
