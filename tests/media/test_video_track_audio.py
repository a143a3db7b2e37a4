"""A video's own audio track, as VideoLLaMA2 samples it (8 clips of 2 s spread over the track), is read
in two streaming passes that keep only those clips: the result equals sampling the whole decoded
track, and memory follows the 16 s kept, not the track's length."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from fastav_export.media.decode import NoAudioTrack, read_audio, read_audio_spans
from fastav_export.media.filterbank import video_audio_clips, video_audio_spans
from fastav_export.testing.media_clips import write_long_quiet_clip, write_test_clip, write_test_wav

from .child_process import measure_in_child

RATE = 16_000


def _clips_streamed(source, rate: int = RATE) -> np.ndarray:
    return read_audio_spans(source, partial(video_audio_spans, sample_rate=rate), rate)


@pytest.fixture(scope="module")
def tracks(tmp_path_factory):
    """Tracks of whole and fractional seconds, one shorter than a clip, and one resampled from 22.05 kHz."""
    folder = tmp_path_factory.mktemp("tracks")
    clips = {f"{seconds} s": write_test_clip(folder / f"{seconds}.mp4", seconds=seconds, fps=2, size=(32, 24))
             for seconds in (1.3, 3.0, 7.3, 40.0)}
    clips["7.3 s at 22.05 kHz"] = write_test_wav(folder / "tone.wav", seconds=7.3, sample_rate=22_050)
    return clips


def test_the_streamed_clips_equal_sampling_the_whole_track(tracks):
    for name, source in tracks.items():
        whole = read_audio(source, RATE)
        expected = video_audio_clips(whole, RATE)
        streamed = _clips_streamed(source)
        assert streamed.dtype == expected.dtype == np.float32, name
        assert np.array_equal(streamed, expected), name
        assert np.array_equal(_clips_streamed(source.read_bytes()), expected), name  # a request's bytes


def test_the_spans_are_the_clips_of_video_audio_clips():
    for samples in (0, 1, 20_000, 32_000, 48_000, 116_800, 640_000, 640_001):
        track = np.arange(samples, dtype=np.float32)
        spans = video_audio_spans(samples, RATE)
        assert len(spans) == 8 and all(0 <= start <= end for start, end in spans)
        joined = np.concatenate([track[start:end] for start, end in spans])
        assert np.array_equal(joined, video_audio_clips(track, RATE)), samples


def test_a_track_without_sound_is_still_no_audio_track(tmp_path):
    silent = write_test_clip(tmp_path / "silent.mp4", seconds=1.0, audio=False)
    with pytest.raises(NoAudioTrack, match="no audio stream"):
        _clips_streamed(silent)


def test_media_tensors_sample_the_track_as_before(tracks):
    from fastav_export.media.filterbank import audio_features
    from fastav_export.media.settings import AudioSettings
    from fastav_export.models import get_model_spec
    from fastav_export.runtime.media_inputs import media_tensors

    audio = AudioSettings(seconds=30.0)  # the full model's window: every clip of the track reaches the filterbank
    source = tracks["7.3 s"]
    expected = audio_features(video_audio_clips(read_audio(source, RATE), RATE), audio)
    tensors = media_tensors(source, get_model_spec("videollama2-tiny").video, audio)
    assert np.array_equal(tensors.fbank.numpy(), expected.numpy())


MEDIA_TENSORS = """
import sys
from fastav_export.models import get_model_spec
from fastav_export.runtime.media_inputs import media_tensors
spec = get_model_spec("videollama2-tiny")
tensors = media_tensors(sys.argv[1], spec.video, spec.audio)
result = {"fbank": list(tensors.fbank.shape), "frames": list(tensors.pixel_values.shape)}
"""


@pytest.mark.slow
def test_an_hours_long_video_is_read_in_bounded_memory(tmp_path):
    """An hour: the whole track would be 115 MB as int16 plus 230 MB as float32 (a peak about 0.5 GB above
    a short clip's when it is decoded whole), and all its 3,600 frames 0.2 GB as RGB; what is used is 16 s
    and 8 frames."""
    short = measure_in_child(MEDIA_TENSORS, write_long_quiet_clip(tmp_path / "short.mkv", 20))
    long = measure_in_child(MEDIA_TENSORS, write_long_quiet_clip(tmp_path / "long.mkv", 3600))
    assert long["fbank"] == short["fbank"] and long["frames"] == short["frames"]
    assert long["peak_mb"] < min(short["peak_mb"] + 150, 1024), (short, long)
