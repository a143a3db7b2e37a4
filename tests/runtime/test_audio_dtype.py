"""VideoLLaMA2-AV's filterbank is computed in the dtype upstream's reader gives each audio source:
float64 for a separate audio file (soundfile), float32 for a video's own track (ffmpeg's int16 pipe)."""

from __future__ import annotations

import numpy as np
import torch

from fastav_export.media.decode import read_audio
from fastav_export.media.filterbank import audio_features, video_audio_clips
from fastav_export.models import get_model_spec
from fastav_export.runtime.media_inputs import media_tensors
from fastav_export.testing.media_clips import write_test_wav

SPEC = get_model_spec("videollama2-tiny")


def test_a_separate_audio_file_is_filtered_in_float64(media_clip, tmp_path):
    wav = write_test_wav(tmp_path / "tone.wav", seconds=2.0, tone_hz=300.0)
    fbank = media_tensors(media_clip, SPEC.video, SPEC.audio, audio=wav).fbank
    samples = read_audio(wav, SPEC.audio.sample_rate)
    assert torch.equal(fbank, audio_features(samples.astype(np.float64), SPEC.audio))
    assert not torch.equal(fbank, audio_features(samples.astype(np.float32), SPEC.audio))


def test_a_video_track_is_filtered_in_float32(media_clip):
    fbank = media_tensors(media_clip, SPEC.video, SPEC.audio).fbank
    track = video_audio_clips(read_audio(media_clip, SPEC.audio.sample_rate), SPEC.audio.sample_rate)
    assert torch.equal(fbank, audio_features(track.astype(np.float32), SPEC.audio))
