"""video-SALMONN 2's specs and options: Qwen2-7B decoder (LLaVA-OneVision base), interleaved per frame.

Facts from the public code (bytedance video-SALMONN 2: llava/model/language_model/
video_salmonn_2.py, llava/dataset/av_dataset.py, scripts/run.sh, demo.sh, eval.sh):
frames are sampled at 1 fps (at most 110, spread uniformly beyond); each gives 13 x 13
max-pooled SigLIP patches plus one newline per row = 182 rows. The audio (30 s Whisper
chunks, one Q-Former token per 0.5 s window: 60 a chunk) is spread over the frames, k per
frame with k = ceil(60 * chunks / F) (`contract/interleave.py`):

    [prefix][frame 0: 182 video][k audio][frame 1: 182 video][k audio]...[question + header]

The one placeholder (-200) follows `<|im_start|>user\\n`. Settings that the checkpoint's config
does not hold come from the public scripts (`SalmonnOptions`) and go into the engine manifest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ....contract.dims import DecoderDims
from ....contract.interleave import FrameInterleave
from ....contract.layout import TokenLayout
from ....contract.pruning_config import PruningConfig
from ....errors import FastAVError
from ....media.settings import AudioSettings, VideoSettings
from ...qwen2 import QWEN2_7B
from ...registry import ModelSpec, register

FAMILY = "video-salmonn2"
POOL_MODES = ("max", "average")


@dataclass(frozen=True)
class SalmonnOptions:
    """What the public inference scripts pass and the checkpoint's config.json does not hold.

    window_seconds:   the Q-Former window (`--winqf_second 0.5`; the code's default is 1/3 s).
    use_final_linear: the Linear-GELU-Linear after `speech_llama_proj` (run.sh: True).
    pool_mode:        the 2 x 2 pooling after the projector (`mm_spatial_pool_mode max`).
    The scripts' other settings are fixed here: audio-visual input, pooling after the projector
    (`mm_pooling_position after`), stride 2, a newline per row (`mm_newline_position grid`).
    """

    window_seconds: float = 0.5
    use_final_linear: bool = True
    pool_mode: str = "max"

    def __post_init__(self):
        if self.pool_mode not in POOL_MODES:
            raise FastAVError(f"pool mode {self.pool_mode!r} is not one of {', '.join(POOL_MODES)}")
        if not 0 < self.window_seconds <= 30:
            raise FastAVError(f"the audio window of {self.window_seconds} s must be in (0, 30] seconds")

    def to_json(self) -> dict:
        return {**asdict(self), "audio_visual": True, "pooling_position": "after", "pool_stride": 2,
                "newline_position": "grid"}


DEFAULT_OPTIONS = SalmonnOptions()
# 13 x 13 pooled patches and a newline after each row.
VIDEO_PER_FRAME = 13 * (13 + 1)


def interleave(video_per_frame: int, options: SalmonnOptions = DEFAULT_OPTIONS,
               max_frames: int = 110) -> FrameInterleave:
    return FrameInterleave(video_per_frame, window_seconds=options.window_seconds, fps=1.0, max_frames=max_frames)


REAL_INTERLEAVE = interleave(VIDEO_PER_FRAME)
# The system turn and `<|im_start|>user\n`; the `\n` after the placeholder, the question and the
# assistant header (`contract` counts for the default layout; a real prompt sets its own).
PREFIX_TOKENS, SUFFIX_TOKENS = 14, 30


def video_salmonn2_layout(seconds: float = 30.0, rule: FrameInterleave = REAL_INTERLEAVE,
                          prefix_tokens: int = PREFIX_TOKENS, suffix_tokens: int = SUFFIX_TOKENS) -> TokenLayout:
    """The layout of a clip of `seconds` (default 30 s: 30 frames x [182 video][2 audio])."""
    return rule.layout_for_duration(seconds, prefix_tokens, suffix_tokens)


register(ModelSpec(
    name="video-salmonn2",
    family=FAMILY,
    dims=QWEN2_7B,
    default_layout=video_salmonn2_layout,
    # Paper-like preset: keep the first 4 frames (their video and audio tokens).
    preset=PruningConfig(global_policy="positional", keep_frames=4),
    hf_id="tsinghua-ee/video-SALMONN-2",
    description="video-SALMONN 2 (Qwen2-7B decoder; per frame [182 video][k audio], k from the clip's duration)",
    # SigLIP at 384 x 384, one frame a second (at most 110); 16 kHz audio in 30 s Whisper chunks.
    video=VideoSettings(num_frames=110, image_size=384, fps=1.0),
    audio=AudioSettings(sample_rate=16_000, seconds=30.0, mel_bins=128, features="whisper"),
    interleave=REAL_INTERLEAVE,
))

# The tiny encoders keep the structure at small sizes: 28 x 28 frames in 4 px patches (7 x 7, pooled
# to 3 x 3, plus 3 newlines = 12 rows a frame), at most 8 frames; the audio path is the real one
# (30 s Whisper chunks, 60 windows each) with tiny widths.
TINY_INTERLEAVE = interleave(3 * (3 + 1), max_frames=8)
TINY_CLIP_SECONDS = 3.0  # the test clips' length: 3 frames x [12 video][20 audio]


def video_salmonn2_tiny_layout() -> TokenLayout:
    return video_salmonn2_layout(TINY_CLIP_SECONDS, TINY_INTERLEAVE, prefix_tokens=6, suffix_tokens=6)


register(ModelSpec(
    name="video-salmonn2-tiny",
    family=FAMILY,
    dims=DecoderDims(hidden_size=64, intermediate_size=128, num_layers=6, num_heads=4, num_kv_heads=2,
                     vocab_size=256, rope_theta=1_000_000.0, rms_norm_eps=1e-6),
    default_layout=video_salmonn2_tiny_layout,
    preset=PruningConfig(global_policy="positional", keep_frames=2),
    description="tiny random-weight video-SALMONN 2 (decoder, encoders, tokenizer) for tests",
    random_init_std=0.1,
    video=VideoSettings(num_frames=8, image_size=28, fps=1.0),
    audio=AudioSettings(sample_rate=16_000, seconds=30.0, mel_bins=128, features="whisper"),
    interleave=TINY_INTERLEAVE,
))
