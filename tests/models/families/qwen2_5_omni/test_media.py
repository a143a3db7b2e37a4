"""Qwen2.5-Omni's media preprocessing against transformers' own processors and qwen-omni-utils' rules.

transformers' Qwen2-VL video processor needs torchvision, which does not import here; its PIL image
processor is the oracle instead (processor_inputs.py).
"""

import numpy as np
import pytest
import torch

from fastav_export.errors import FastAVError
from fastav_export.media.decode import MediaBytes, read_audio, read_frames_at
from fastav_export.models.families.qwen2_5_omni.audio_features import (
    omni_audio_features,
)
from fastav_export.models.families.qwen2_5_omni.frame_resize import (
    resize_frame,
    resize_frames,
)
from fastav_export.models.families.qwen2_5_omni.media import (
    OmniMediaSettings,
    omni_media_tensors,
)
from fastav_export.models.families.qwen2_5_omni.video_frames import (
    frame_count,
    frame_indices,
    frame_pixel_limit,
    frame_size,
)
from fastav_export.models.families.qwen2_5_omni.video_patches import video_patches
from fastav_export.models.families.qwen2_5_omni.video_sampling import VIDEO_MIN_PIXELS
from fastav_export.testing.media_clips import write_test_clip, write_test_wav

from .processor_inputs import omni_processor_audio, transformers_video_patches

CLIP_SIZE = (84, 56)  # (width, height): tiny frames, upscaled to 392 x 280 by the pixel minimum


# -- which frames, what size (qwen-omni-utils' smart_nframes / fetch_video, values worked out by hand) --

@pytest.mark.parametrize("total, fps, limit, expected", [
    (8, 8.0, 768, 4),      # 1 s: 2 frames at 2 fps, raised to the minimum of 4
    (24, 8.0, 768, 6),     # 3 s
    (32, 8.0, 768, 8),     # 4 s
    (3, 30.0, 768, 2),     # fewer frames than the minimum: the even part of the clip
    (27, 8.0, 768, 6),     # 3.375 s -> 6.75 -> 6
    (600, 30.0, 9, 8),     # 20 s -> 40, an engine's limit of 9 -> 8
    (100000, 25.0, 768, 768),
])
def test_frame_count_follows_qwen_omni_utils(total, fps, limit, expected):
    assert frame_count(total, fps, limit) == expected


def test_a_one_frame_video_is_refused_in_one_line():
    with pytest.raises(FastAVError, match="at least 2 frames"):
        frame_count(1, 8.0)


@pytest.mark.parametrize("total, count, expected", [
    (24, 6, [0, 5, 9, 14, 18, 23]),
    (8, 4, [0, 2, 5, 7]),
    (6, 3, [0, 2, 5]),  # 2.5 rounds half to even, as torch.round does
])
def test_frame_indices_are_rounded_linspace(total, count, expected):
    assert frame_indices(total, count) == expected


@pytest.mark.parametrize("height, width, count", [
    (56, 84, 4), (1080, 1920, 768), (1080, 1920, 16), (720, 1280, 200), (480, 640, 2), (30, 4000, 8), (333, 517, 100),
])
def test_frame_size_is_transformers_smart_resize_within_the_video_limits(height, width, count):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    limit = max(min(768 * 28 * 28, int(128000 * 28 * 28 * 0.9) / count * 2), int(128 * 28 * 28 * 1.05))
    assert frame_pixel_limit(count) == limit
    assert frame_size(height, width, count) == smart_resize(height, width, 28, VIDEO_MIN_PIXELS, limit)


def test_frame_size_of_1080p_frames_shrinks_with_the_frame_count():
    assert frame_size(1080, 1920, 16) == (560, 1008)  # within 768 x 28 x 28 pixels
    assert frame_size(1080, 1920, 768) == (336, 644)  # within 2 / 768 of the total budget


# -- resize: torchvision's antialiased bicubic on uint8 frames --

def _cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1, near, np.where(x < 2, far, 0.0))


def _antialiased_bicubic_matrix(size_in: int, size_out: int) -> np.ndarray:
    """[out, in] float64 weights of the antialiased bicubic resize (PIL's and torch's definition: the
    kernel stretched by the downscale factor, taps clipped to the image and renormalised)."""
    scale = size_in / size_out
    stretch = max(scale, 1.0)
    matrix = np.zeros((size_out, size_in))
    for i in range(size_out):
        centre = (i + 0.5) * scale
        low = max(int(centre - 2 * stretch + 0.5), 0)
        high = min(int(centre + 2 * stretch + 0.5), size_in)
        weights = _cubic((np.arange(low, high) - centre + 0.5) / stretch)
        matrix[i, low:high] = weights / weights.sum()
    return matrix


@pytest.mark.parametrize("shape, size", [((2, 56, 84), (280, 392)), ((2, 300, 500), (112, 196)),
                                         ((1, 97, 131), (56, 84)), ((1, 120, 90), (84, 56))])
def test_resize_matches_an_exact_antialiased_bicubic(shape, size):
    frames = np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)
    rows, columns = _antialiased_bicubic_matrix(shape[1], size[0]), _antialiased_bicubic_matrix(shape[2], size[1])
    exact = rows @ frames.transpose(0, 3, 1, 2).astype(np.float64) @ columns.T
    interpolated = torch.nn.functional.interpolate(torch.from_numpy(frames).permute(0, 3, 1, 2).float(), size=size,
                                                   mode="bicubic", align_corners=False, antialias=True)
    # torch's float32 tap positions and sums: measured up to 1.6e-3 of a level at these sizes (8.6e-3 at 1080p)
    assert np.abs(interpolated.numpy() - exact).max() < 4e-3
    resized = resize_frames(frames, size)
    assert resized.dtype == np.uint8 and resized.shape == (shape[0], 3, *size)
    # torchvision's uint8 result: clamped, rounded half to even; a float32 sum that lands across a .5 boundary
    # from the exact one moves a pixel by one level (measured: 0.01 % of pixels here, 0.06 % at 1080p)
    levels = np.abs(resized.astype(np.int64) - np.round(np.clip(exact, 0, 255)))
    assert levels.max() <= 1 and levels.mean() < 1e-3
    np.testing.assert_array_equal(resized, np.round(np.clip(interpolated.numpy(), 0, 255)))


def test_resize_of_one_frame_equals_the_batch_and_same_size_is_untouched():
    frames = np.random.default_rng(2).integers(0, 256, (3, 50, 70, 3), dtype=np.uint8)
    batch = resize_frames(frames, (56, 84))
    for index, frame in enumerate(frames):
        np.testing.assert_array_equal(resize_frame(frame, (56, 84)), batch[index])
    np.testing.assert_array_equal(resize_frames(frames, (50, 70)), frames.transpose(0, 3, 1, 2))


# -- patches: transformers' Qwen2-VL image processor on each frame --

@pytest.mark.parametrize("count", [2, 4, 6])
@pytest.mark.parametrize("height, width", [(56, 84), (84, 56), (112, 112), (56, 168)])
def test_video_patches_equal_transformers_processor(count, height, width):
    frames = np.random.default_rng(count).integers(0, 256, (count, 3, height, width), dtype=np.uint8)
    patches, grid = video_patches(frames)
    expected, expected_grid = transformers_video_patches(frames)
    assert grid == expected_grid == (count // 2, height // 14, width // 14)
    assert patches.dtype == torch.float32 and patches.shape == (grid[0] * grid[1] * grid[2], 3 * 2 * 14 * 14)
    torch.testing.assert_close(patches, expected, rtol=0, atol=1e-5)


def test_video_patches_refuse_an_odd_frame_count():
    with pytest.raises(FastAVError, match="multiple of 2"):
        video_patches(np.zeros((3, 3, 56, 56), np.uint8))


# -- audio: the Omni processor's Whisper features --

@pytest.mark.parametrize("seconds", [1.3, 2.0, 7.0])
def test_audio_features_equal_the_omni_processor(seconds):
    samples = round(seconds * 16000)
    rng = np.random.default_rng(3)
    waveform = (0.3 * np.sin(np.arange(samples) * 0.05) + 0.05 * rng.standard_normal(samples)).astype(np.float32)
    features, length = omni_audio_features(waveform)
    expected, expected_length = omni_processor_audio(waveform)
    assert length == expected_length == -(-samples // 160)
    assert features.dtype == torch.float32 and features.shape == (128, length)
    torch.testing.assert_close(features, expected, rtol=0, atol=1e-5)


def test_audio_features_refuse_a_stereo_waveform():
    with pytest.raises(FastAVError, match="mono"):
        omni_audio_features(np.zeros((2, 1600), np.float32))


# -- a whole clip --

@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("omni_clips")
    return {
        "1s": write_test_clip(folder / "one.mp4", seconds=1.0, size=CLIP_SIZE),
        "3s": write_test_clip(folder / "three.mp4", seconds=3.0, size=CLIP_SIZE),
        "4s": write_test_clip(folder / "four.mp4", seconds=4.0, size=CLIP_SIZE),
        "3s_mute": write_test_clip(folder / "mute.mp4", seconds=3.0, size=CLIP_SIZE, audio=False),
        "one_frame": write_test_clip(folder / "frame.mp4", seconds=0.125, size=CLIP_SIZE, audio=False),
        "wav": write_test_wav(folder / "tone.wav", seconds=2.0),
    }


@pytest.mark.parametrize("name, indices, second_per_grid", [
    # 8 frames at 8 fps: the minimum of 4 frames, sampled at 4 fps; the processor, called without fps as
    # Qwen's examples call it, still counts 1 s per temporal grid.
    ("1s", [0, 2, 5, 7], 1.0),
    ("3s", [0, 5, 9, 14, 18, 23], 1.0),         # 24 frames: 6 at 2 fps
    ("4s", [0, 4, 9, 13, 18, 22, 27, 31], 1.0),  # 32 frames: 8, 31 / 7 apart
])
def test_a_clip_gives_what_transformers_processors_give_its_frames_and_track(clips, name, indices, second_per_grid):
    tensors = omni_media_tensors(clips[name])
    # the frames upstream samples, decoded and resized as a batch, through transformers' image processor
    frames = resize_frames(read_frames_at(clips[name], indices), (280, 392))
    expected, grid = transformers_video_patches(frames)
    assert tensors.video_grid_thw == grid == (len(indices) // 2, 20, 28)
    torch.testing.assert_close(tensors.pixel_values_videos, expected, rtol=0, atol=1e-5)
    assert tensors.second_per_grid == pytest.approx(second_per_grid)
    assert tensors.sampled.frames == len(indices) and (tensors.sampled.height, tensors.sampled.width) == (280, 392)
    assert tensors.clip_seconds == pytest.approx(float(name[0]))
    features, length = omni_processor_audio(read_audio(clips[name]))
    assert tensors.feature_length == length
    torch.testing.assert_close(tensors.input_features, features, rtol=0, atol=1e-5)
    assert {"video_decode", "video_patches", "audio_decode", "audio_features"} <= tensors.seconds.keys()


def test_a_clip_without_audio_runs_without_audio_or_with_silence(clips):
    without = omni_media_tensors(clips["3s_mute"])
    assert without.input_features is None and without.feature_length is None
    assert without.video_grid_thw == (3, 20, 28)
    silent = omni_media_tensors(clips["3s_mute"], silent_audio=True)
    assert silent.feature_length == 300  # 3 s of 10 ms frames
    torch.testing.assert_close(silent.input_features, omni_processor_audio(np.zeros(48000, np.float32))[0],
                               rtol=0, atol=1e-5)
    torch.testing.assert_close(silent.pixel_values_videos, without.pixel_values_videos, rtol=0, atol=0)


def test_an_audio_file_replaces_the_track_and_bytes_read_as_files(clips):
    from_file = omni_media_tensors(clips["3s"], audio=clips["wav"])
    assert from_file.feature_length == 200  # the 2 s tone, not the 3 s track
    from_bytes = omni_media_tensors(MediaBytes(clips["3s"].read_bytes(), "the `video` input"),
                                    audio=clips["wav"].read_bytes())
    torch.testing.assert_close(from_bytes.pixel_values_videos, from_file.pixel_values_videos, rtol=0, atol=0)
    torch.testing.assert_close(from_bytes.input_features, from_file.input_features, rtol=0, atol=0)


def test_an_engine_frame_limit_bounds_the_frames(clips):
    tensors = omni_media_tensors(clips["4s"], settings=OmniMediaSettings(max_frames=3))
    assert tensors.sampled.frames == 2 and tensors.video_grid_thw == (1, 20, 28)
    assert tensors.pixel_values_videos.shape == (20 * 28, 1176)


def test_bad_clips_are_refused_in_one_line(clips):
    with pytest.raises(FastAVError, match="at least 2 frames"):
        omni_media_tensors(clips["one_frame"])
    with pytest.raises(FastAVError, match="not a media file"):
        omni_media_tensors(b"not a video")
