"""Decoding clips the tests write themselves: which frames come back, the audio's tone, and the
one-line errors for every bad input."""

from __future__ import annotations

import numpy as np
import pytest

from fastav_export.errors import FastAVError
from fastav_export.media.decode import (
    MediaBytes,
    NoAudioTrack,
    has_audio,
    media_duration_seconds,
    read_audio,
    read_video_frames,
)
from fastav_export.media.frames import sample_frame_indices
from fastav_export.testing.media_clips import (
    TONE_AMPLITUDE,
    clip_frame,
    write_frameless_clip,
    write_test_clip,
    write_test_wav,
)

WIDTH, HEIGHT = 64, 48


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    return {
        "long": write_test_clip(folder / "long.mp4", seconds=10.0, fps=8, size=(WIDTH, HEIGHT)),  # 80 frames
        "short": write_test_clip(folder / "short.mp4", seconds=0.5, fps=8, size=(WIDTH, HEIGHT)),  # 4 frames
        "silent": write_test_clip(folder / "silent.mp4", seconds=1.0, audio=False),
        "wav": write_test_wav(folder / "tone.wav", seconds=2.0, tone_hz=1000.0, sample_rate=22_050),
    }


def nearest_source_frame(frame: np.ndarray, count: int) -> int:
    """Which of the clip's `count` written frames a decoded frame is closest to."""
    errors = [np.abs(frame.astype(int) - clip_frame(i, WIDTH, HEIGHT)).mean() for i in range(count)]
    return int(np.argmin(errors))


def dominant_hz(samples: np.ndarray, sample_rate: int) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(samples))) * sample_rate / len(samples))


def test_frames_are_the_uniformly_sampled_ones(clips):
    frames = read_video_frames(clips["long"], 16)
    assert frames.shape == (16, HEIGHT, WIDTH, 3) and frames.dtype == np.uint8
    assert [nearest_source_frame(f, 80) for f in frames] == sample_frame_indices(80, 16)
    assert all(np.abs(a.astype(int) - b).mean() > 5 for a, b in zip(frames, frames[1:]))  # content moves


def test_frames_from_bytes_equal_frames_from_path(clips):
    from_path = read_video_frames(clips["long"], 8)
    from_bytes = read_video_frames(clips["long"].read_bytes(), 8)
    np.testing.assert_array_equal(from_bytes, from_path)


def test_short_clip_repeats_frames_at_repeated_indices(clips):
    frames = read_video_frames(clips["short"], 16)
    indices = sample_frame_indices(4, 16)
    assert frames.shape[0] == 16
    assert [nearest_source_frame(f, 4) for f in frames] == indices
    for a, b, i, j in zip(frames, frames[1:], indices, indices[1:]):
        assert (i == j) == np.array_equal(a, b)


def test_audio_track_is_the_tone_at_16k(clips):
    samples = read_audio(clips["long"])
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) - 10 * 16_000) < 2048  # AAC codes whole 1024-sample frames
    assert abs(dominant_hz(samples, 16_000) - 440.0) < 3
    assert np.abs(samples).max() <= 1.0


def test_wav_is_resampled_to_the_requested_rate(clips):
    samples = read_audio(clips["wav"], sample_rate=16_000)
    assert len(samples) == 32_000
    assert abs(dominant_hz(samples, 16_000) - 1000.0) < 3
    assert abs(np.abs(samples).max() - TONE_AMPLITUDE) < 0.02


def test_has_audio_and_duration(clips):
    assert has_audio(clips["long"]) and has_audio(clips["wav"].read_bytes())
    assert not has_audio(clips["silent"])
    assert media_duration_seconds(clips["long"]) == pytest.approx(10.0, abs=0.2)
    assert media_duration_seconds(clips["wav"]) == pytest.approx(2.0, abs=0.05)


def test_clip_without_audio_is_a_no_audio_track_error_without_any_surfaces_advice(clips):
    """Each surface (CLI flags, a Triton request's fields, calibrate's samples) adds its own advice."""
    with pytest.raises(NoAudioTrack, match="no audio stream") as caught:
        read_audio(clips["silent"])
    assert "--" not in str(caught.value) and isinstance(caught.value, FastAVError)


def test_named_bytes_are_called_by_their_name(clips):
    with pytest.raises(FastAVError, match="^the `audio` input is not a media file"):
        read_audio(MediaBytes(b"this is not a video" * 20, "the `audio` input"))
    with pytest.raises(NoAudioTrack, match="^the `media` input has no audio stream"):
        read_audio(MediaBytes(clips["silent"].read_bytes(), "the `media` input"))
    named = MediaBytes(clips["short"].read_bytes(), "the `media` input")
    np.testing.assert_array_equal(read_video_frames(named, 4), read_video_frames(clips["short"], 4))


def test_audio_file_has_no_video_stream(clips):
    with pytest.raises(FastAVError, match="has no video stream"):
        read_video_frames(clips["wav"], 16)


def test_video_stream_without_frames(tmp_path):
    with pytest.raises(FastAVError, match="no frames"):
        read_video_frames(write_frameless_clip(tmp_path / "empty.mkv"), 16)


@pytest.mark.parametrize("source", [b"this is not a video" * 20, b"\x00" * 4096])
def test_bytes_that_are_not_media(source):
    with pytest.raises(FastAVError, match="not a media file"):
        read_video_frames(source, 16)


def test_file_that_is_not_media(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("just some text, named like a video\n" * 10)
    with pytest.raises(FastAVError, match="not a media file") as caught:
        read_audio(path)
    assert "\n" not in str(caught.value)


def test_truncated_clip_is_a_user_error(clips):
    with pytest.raises(FastAVError):
        read_video_frames(clips["long"].read_bytes()[:4000], 16)


@pytest.mark.parametrize("make", [lambda p: p / "missing.mp4", lambda p: p])
def test_missing_path_or_directory(tmp_path, make):
    with pytest.raises(FastAVError, match="does not exist|is a directory"):
        read_video_frames(make(tmp_path), 16)


def test_empty_bytes():
    with pytest.raises(FastAVError, match="empty"):
        read_audio(b"")


def test_unreadable_file(clips, tmp_path, deny_reading):
    path = tmp_path / "private.mp4"
    path.write_bytes(clips["short"].read_bytes())
    deny_reading(path)
    with pytest.raises(FastAVError, match="cannot read"):
        read_video_frames(path, 4)
