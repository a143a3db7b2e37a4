"""How a clip of T seconds becomes Qwen2.5-Omni's inputs: frames sampled, frame size, mel frames.

The released model's usage reads videos with qwen-omni-utils (`fetch_video`): frames at 2 fps,
their count clamped to [4, 768] and rounded down to a multiple of 2 (two frames form one temporal
patch), frames resized by `smart_resize` within 128..768 x 28 x 28 pixels and a total-pixel budget
over all frames; the audio track is read whole at 16 kHz, giving one mel frame per 10 ms (the
feature extractor's hop of 160 samples), at most 30,000 (its 300 s window). Restated here from
qwen-omni-utils (QwenLM/Qwen2.5-Omni, qwen_omni_utils/v2_5/vision_process.py) and transformers'
Whisper feature extractor, without reading any video.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ....errors import FastAVError
from .resize_rule import smart_resize

SAMPLING_FPS = 2.0
FRAME_FACTOR = 2  # frames per temporal patch: frame counts are multiples of it
MIN_FRAMES, MAX_FRAMES = 4, 768
PATCH_SIZE = 14
VIDEO_MIN_PIXELS = 128 * 28 * 28
VIDEO_MAX_PIXELS = 768 * 28 * 28
# qwen-omni-utils' default budget over all frames (90% of 128k tokens of 28 x 28 pixels); a long
# video's frames shrink below VIDEO_MAX_PIXELS to fit it.
VIDEO_TOTAL_PIXELS = int(128000 * 28 * 28 * 0.9)

AUDIO_SAMPLE_RATE = 16000
MEL_HOP_SAMPLES = 160
MAX_MEL_FRAMES = 30000
PROCESSOR_FPS = 2.0  # Qwen2_5OmniProcessor's fps when none is passed


@dataclass(frozen=True)
class SampledVideo:
    """frames: frames sampled; sample_fps: their rate (the processor's `fps`); height, width: pixels
    after resizing; grid_*: the vision grid in patches (the processor's `video_grid_thw`)."""

    frames: int
    sample_fps: float
    height: int
    width: int
    temporal_patch_size: int = FRAME_FACTOR

    @property
    def grid_t(self) -> int:
        return self.frames // self.temporal_patch_size

    @property
    def grid_h(self) -> int:
        return self.height // PATCH_SIZE

    @property
    def grid_w(self) -> int:
        return self.width // PATCH_SIZE

    @property
    def second_per_grid(self) -> float:
        """Seconds per temporal grid as TMRoPE counts them (the processor's `video_second_per_grid`):
        temporal_patch_size / the processor's fps. Qwen's examples call the processor without `fps`
        (qwen-omni-utils' `process_mm_info` returns no video kwargs by default), so it is the
        processor's default 2.0 whatever rate the frames were sampled at (a 1 s clip's 4 frames too)."""
        return self.temporal_patch_size / PROCESSOR_FPS


def sampled_frame_count(total_frames: int, source_fps: float) -> int:
    """Frames qwen-omni-utils samples from `total_frames` at `source_fps` (its `smart_nframes` with the
    default 2 fps): duration x 2, clamped to [4, min(768, total_frames)], rounded down to a multiple of 2."""
    upper = min(MAX_FRAMES, total_frames) // FRAME_FACTOR * FRAME_FACTOR
    wanted = total_frames / source_fps * SAMPLING_FPS
    frames = math.floor(min(max(wanted, MIN_FRAMES), upper, total_frames) / FRAME_FACTOR) * FRAME_FACTOR
    if frames < FRAME_FACTOR:
        raise FastAVError(f"a video of {total_frames} frame(s) is too short: Qwen2.5-Omni needs at least "
                          f"{FRAME_FACTOR} frames")
    return frames


def frame_pixel_limit(count: int) -> float:
    """The most pixels a frame keeps when `count` frames are sampled: VIDEO_MAX_PIXELS, lowered to an even
    share of VIDEO_TOTAL_PIXELS per pair of frames, but never under 1.05 x VIDEO_MIN_PIXELS."""
    return max(min(VIDEO_MAX_PIXELS, VIDEO_TOTAL_PIXELS / count * FRAME_FACTOR), int(VIDEO_MIN_PIXELS * 1.05))


def frame_size(height: int, width: int, count: int, factor: int = 28) -> tuple[int, int]:
    """(height, width) the frames of a clip decoded at `height` x `width` are resized to when `count` are
    sampled: multiples of `factor` (patch size x merge size)."""
    return smart_resize(height, width, factor, VIDEO_MIN_PIXELS, frame_pixel_limit(count))


def sample_video(seconds: float, height: int, width: int, source_fps: float = 30.0, factor: int = 28) -> SampledVideo:
    """The frames and frame size qwen-omni-utils gives a `seconds` long `height` x `width` video
    recorded at `source_fps` (frame count = round(seconds x source_fps))."""
    if not (seconds > 0 and source_fps > 0 and math.isfinite(seconds) and math.isfinite(source_fps)):
        raise FastAVError(f"a clip needs a positive duration and frame rate, got {seconds!r} s at {source_fps!r} fps")
    total_frames = round(seconds * source_fps)
    frames = sampled_frame_count(total_frames, source_fps)
    new_h, new_w = frame_size(height, width, frames, factor)
    return SampledVideo(frames=frames, sample_fps=frames / total_frames * source_fps, height=new_h, width=new_w)


def audio_feature_length(seconds: float) -> int:
    """Mel frames of a `seconds` long 16 kHz track: one per started 160-sample hop, at most 30,000."""
    if not (seconds > 0 and math.isfinite(seconds)):
        raise FastAVError(f"an audio track needs a positive duration, got {seconds!r} s")
    samples = round(seconds * AUDIO_SAMPLE_RATE)
    return min(MAX_MEL_FRAMES, math.ceil(samples / MEL_HOP_SAMPLES))
