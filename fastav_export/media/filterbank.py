"""VideoLLaMA2-AV's audio preprocessing: a Kaldi log-mel filterbank of a 30 s window.

Upstream (DAMO-NLP-SG/VideoLLaMA2, branch `audio_visual`, videollama2/mm_utils.py):

* `process_audio_file` (an audio file): first channel; longer than 30 s -> a *random* 30 s
  window; shorter -> zero-padded at the end to 30 s (the waveform is padded, not the frames);
  resampled to 16 kHz; `fbank(waveform * 2**15, num_mel_bins=128, sample_frequency=16000,
  frame_length=25, frame_shift=10)` -> [1, 2998, 128], cast to bfloat16. soundfile reads the
  file as float64, so the filterbank is computed in float64.
* `process_audio_from_video` (the audio track of a video): decoded by ffmpeg as mono 16 kHz
  int16 / 32768 in float32; 8 clips of 2 s spread evenly over the track (pytorchvideo's
  `ConstantClipsPerVideoSampler`) are concatenated (16 s) and zero-padded to 30 s; then the
  same fbank call, computed in float32.

torchaudio's fbank computes in its input's dtype, and the two paths differ by up to ~1 in the
quiet high mel bins of a loud clip (float32 rounding of the loud bins' spectrum), so
`audio_features` keeps the waveform's dtype too: callers pass an audio file's samples as
`AUDIO_FILE_DTYPE` and a video's track as `VIDEO_TRACK_DTYPE`.

The normalisation `(fbank - 15.41663) / (2 * 6.55582)` is *not* part of this preprocessing:
upstream applies it inside the audio tower (`BEATs.preprocess`, called by
`extract_features`), so the VideoLLaMA2 family's `beats.py` does it too and takes the raw filterbank.

`kaldi_fbank` is `torchaudio.compliance.kaldi.fbank` with those options written in plain
torch (torchaudio is not a dependency): povey window, DC offset removed, preemphasis 0.97,
snip_edges framing, power spectrum of a 512-point FFT, 128 triangles on Kaldi's mel scale
from 20 Hz to Nyquist, natural log floored at float32 epsilon, no dither, no energy term.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch

from ..errors import FastAVError
from .settings import AudioSettings

PCM_SCALE = 2.0**15  # upstream feeds Kaldi int16-range samples: waveform in [-1, 1] * 2**15
PREEMPHASIS = 0.97
LOW_FREQ = 20.0  # Hz, Kaldi's default low edge of the first triangle
POVEY_POWER = 0.85  # povey window = (non-periodic Hann) ** 0.85
LOG_FLOOR = torch.finfo(torch.float32).eps  # Kaldi/torchaudio floor the mel energies here before log

# BEATs' filterbank statistics (BEATs.preprocess): fbank -> (fbank - mean) / (2 * std).
FBANK_MEAN = 15.41663
FBANK_STD = 6.55582

# The dtype upstream's readers return, which its filterbank computes in: soundfile's default for
# an audio file (process_audio_file), ffmpeg's int16 / 32768.0 for a video's track (load_audio_from_video).
AUDIO_FILE_DTYPE = np.float64
VIDEO_TRACK_DTYPE = np.float32

# process_audio_from_video: 8 clips of 2 s from the track.
VIDEO_AUDIO_CLIPS = 8
VIDEO_AUDIO_CLIP_SECONDS = 2


def kaldi_mel(freq):
    """Kaldi's mel scale, 1127 ln(1 + f / 700) (a tensor or a float)."""
    if isinstance(freq, torch.Tensor):
        return 1127.0 * torch.log(1.0 + freq / 700.0)
    return 1127.0 * math.log(1.0 + freq / 700.0)


def fft_size(window: int) -> int:
    """Kaldi's round_to_power_of_two: the FFT length for a window of `window` samples (400 -> 512)."""
    return 1 << (window - 1).bit_length()


def mel_banks(settings: AudioSettings) -> torch.Tensor:
    """The triangular filters [mel_bins, fft_size // 2 + 1] (float32, as torchaudio builds them).

    Triangle m rises from mel_low + m * delta to its centre mel_low + (m + 1) * delta and falls to
    mel_low + (m + 2) * delta, delta = (mel(nyquist) - mel(20 Hz)) / (mel_bins + 1). The Nyquist
    bin gets no weight (torchaudio pads the [mel_bins, fft_size // 2] banks with a zero column).
    """
    n_fft = fft_size(settings.window)
    nyquist = 0.5 * settings.sample_rate
    mel_low, mel_high = kaldi_mel(LOW_FREQ), kaldi_mel(nyquist)
    delta = (mel_high - mel_low) / (settings.mel_bins + 1)
    index = torch.arange(settings.mel_bins, dtype=torch.float32).unsqueeze(1)
    left = mel_low + index * delta
    centre = mel_low + (index + 1.0) * delta
    right = mel_low + (index + 2.0) * delta
    bin_width = settings.sample_rate / n_fft
    mel = kaldi_mel(bin_width * torch.arange(n_fft // 2, dtype=torch.float32)).unsqueeze(0)
    up = (mel - left) / (centre - left)
    down = (right - mel) / (right - centre)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return torch.nn.functional.pad(banks, (0, 1))


def mel_centre_frequencies(settings: AudioSettings) -> np.ndarray:
    """The centre frequency in Hz of each mel triangle [mel_bins] (float64)."""
    mel_low, mel_high = kaldi_mel(LOW_FREQ), kaldi_mel(0.5 * settings.sample_rate)
    delta = (mel_high - mel_low) / (settings.mel_bins + 1)
    centres = mel_low + (np.arange(settings.mel_bins) + 1.0) * delta
    return 700.0 * (np.exp(centres / 1127.0) - 1.0)


def povey_window(length: int, dtype=torch.float32) -> torch.Tensor:
    """Kaldi's povey window [length]: a non-periodic Hann window to the power 0.85."""
    return torch.hann_window(length, periodic=False, dtype=dtype).pow(POVEY_POWER)


def frame_count(samples: int, settings: AudioSettings) -> int:
    """Frames of `samples` samples with snip_edges framing: 1 + (samples - window) // shift, 0 if shorter."""
    if samples < settings.window:
        return 0
    return 1 + (samples - settings.window) // settings.shift


def kaldi_fbank(waveform: torch.Tensor, settings: AudioSettings) -> torch.Tensor:
    """Log-mel filterbank of a mono waveform: waveform [S] -> [T, mel_bins], T = frame_count(S).

    Computed in the waveform's floating dtype (upstream passes float64 for an audio file,
    float32 for a video's track); the mel banks are built in float32, as torchaudio does.
    """
    if waveform.dim() != 1:
        raise FastAVError(f"the filterbank takes a mono waveform [samples], got shape {tuple(waveform.shape)}")
    if not waveform.is_floating_point():
        waveform = waveform.float()
    frames_n = frame_count(waveform.shape[0], settings)
    if frames_n == 0:
        return waveform.new_zeros((0, settings.mel_bins))
    # snip_edges: only whole windows, the first starting at sample 0.
    frames = waveform.unfold(0, settings.window, settings.shift)
    frames = frames - frames.mean(dim=1, keepdim=True)
    # Preemphasis within each frame; the sample before the first is the first itself.
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = frames - PREEMPHASIS * previous
    frames = frames * povey_window(settings.window, dtype=frames.dtype)
    n_fft = fft_size(settings.window)
    power = torch.fft.rfft(frames, n=n_fft).abs().pow(2.0)
    energies = power @ mel_banks(settings).to(power.dtype).T
    return torch.clamp(energies, min=LOG_FLOOR).log()


def fit_to_window(waveform: np.ndarray, settings: AudioSettings) -> np.ndarray:
    """Cut or zero-pad (at the end) a waveform [S] to settings.samples.

    Upstream picks a random `seconds`-long window of a longer audio file; a deployment must be
    deterministic, so the first `seconds` are kept. (A video's track never needs the cut:
    `video_audio_clips` yields 16 s.)
    """
    target = settings.samples
    if waveform.shape[0] >= target:
        return waveform[:target]
    return np.pad(waveform, (0, target - waveform.shape[0]))


def video_audio_spans(samples: int, sample_rate: int, clips: int = VIDEO_AUDIO_CLIPS,
                      clip_seconds: int = VIDEO_AUDIO_CLIP_SECONDS) -> list[tuple[int, int]]:
    """The sample ranges [start, end) VideoLLaMA2 takes from a track of `samples` samples: `clips` of them.

    pytorchvideo's ConstantClipsPerVideoSampler over duration D = samples / rate: clip i starts at
    i * max(D - clip_seconds, 0) / clips seconds (exact fractions, as upstream), and covers samples
    [int(start * rate), int((start + clip_seconds) * rate)). `end` may pass the track's end (a track
    shorter than a clip): the clip then stops there, as a slice does. A track shorter than
    `clip_seconds` gives the same range `clips` times.
    """
    duration = samples / sample_rate  # a float, as upstream's; the fractions start from its exact value
    latest_start = Fraction(max(duration - clip_seconds, 0))
    step = latest_start / clips
    starts = [step * i for i in range(clips)]
    return [(int(start * sample_rate), int((start + clip_seconds) * sample_rate)) for start in starts]


def video_audio_clips(waveform: np.ndarray, sample_rate: int, clips: int = VIDEO_AUDIO_CLIPS,
                      clip_seconds: int = VIDEO_AUDIO_CLIP_SECONDS) -> np.ndarray:
    """The audio VideoLLaMA2 takes from a video's track [S]: the `video_audio_spans` of it, concatenated
    ([clips * clip_seconds * rate] samples, fewer for a track shorter than a clip).

    `media.decode.read_audio_spans` reads the same spans from a file without holding the whole track.
    """
    if waveform.ndim != 1:
        raise FastAVError(f"the audio track must be mono [samples], got shape {waveform.shape}")
    spans = video_audio_spans(waveform.shape[0], sample_rate, clips, clip_seconds)
    return np.concatenate([waveform[start:end] for start, end in spans])


def audio_features(waveform: np.ndarray, settings: AudioSettings) -> torch.Tensor:
    """VideoLLaMA2's audio preprocessing: mono waveform [S] in [-1, 1] at settings.sample_rate ->
    the raw log-mel filterbank [1, settings.fbank_frames, mel_bins] (float32) the audio tower takes.

    Cut or zero-padded to `settings.seconds` (`fit_to_window`), scaled to int16 range, Kaldi fbank,
    computed in the waveform's dtype as upstream's is: float64 stays float64 (an audio file,
    `AUDIO_FILE_DTYPE`), anything else is float32 (a video's track, `VIDEO_TRACK_DTYPE`).
    For a video's audio track, pass `video_audio_clips(track, rate)` (what upstream feeds).
    Not normalised: the tower normalises (upstream BEATs.preprocess). Upstream rounds this tensor
    to bfloat16; it is returned in float32 here.
    """
    waveform = np.asarray(waveform)
    dtype = AUDIO_FILE_DTYPE if waveform.dtype == AUDIO_FILE_DTYPE else VIDEO_TRACK_DTYPE
    waveform = waveform.astype(dtype, copy=False)
    if waveform.ndim != 1:
        raise FastAVError(f"audio must be a mono waveform [samples], got shape {waveform.shape}: mix it down first")
    window = fit_to_window(waveform, settings)
    fbank = kaldi_fbank(torch.from_numpy(np.ascontiguousarray(window)) * PCM_SCALE, settings)
    return fbank.float().unsqueeze(0)


def normalize_fbank(fbank: torch.Tensor) -> torch.Tensor:
    """BEATs' input normalisation: (fbank - 15.41663) / (2 * 6.55582)."""
    return (fbank - FBANK_MEAN) / (2.0 * FBANK_STD)
