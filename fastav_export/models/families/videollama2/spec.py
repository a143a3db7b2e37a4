"""VideoLLaMA2.1-7B-AV's specs: Qwen2-7B decoder, contiguous [video][audio] layout.

The `<video>` placeholder (id -201) after `<|im_start|>user\\n` is replaced by the
video tokens then the audio tokens:
* video: 16 frames -> SigLIP -> STC connector (2x temporal, to 13 x 13 spatial):
  8 groups of 169 tokens = 1352; each group is one "frame" of the layout. A checkpoint's
  config.json sets the frame count (`num_frames`; upstream's model_init falls back to 8), and
  F frames give F // 2 groups (the connector's kernel = stride = 2 convolution, no padding).
* audio: BEATs on 30 s (padded) -> 187 steps x 8 = 1496 tokens, time-major.
Prefix (system prompt + user header) about 14 tokens; question + assistant header
about 30.
"""

from dataclasses import replace
from functools import partial

from ....contract.dims import DecoderDims
from ....contract.layout import Segment, TokenLayout
from ....contract.pruning_config import PruningConfig
from ....errors import FastAVError
from ....media.settings import AudioSettings, VideoSettings
from ...qwen2 import QWEN2_7B
from ...registry import ModelSpec, register

FAMILY = "videollama2"
VIDEO_PLACEHOLDER_ID = -201  # `<video>` in the prompt

NUM_FRAMES_KEY = "num_frames"  # config.json: frames sampled per clip
# Upstream's videollama2/constants.py: NUM_FRAMES, model_init's count when the config sets none, and
# MAX_FRAMES, the most frames process_video keeps (it drops the rest: more would cut the clip's end off).
UPSTREAM_NUM_FRAMES = 8
UPSTREAM_MAX_FRAMES = 32
MIN_FRAMES = 2  # the STC connector pools pairs of frames: one frame gives it nothing to pool


def videollama2_layout(
    frames: int = 16,
    tokens_per_group: int = 169,
    audio_tokens: int = 1496,
    prefix_tokens: int = 14,
    suffix_tokens: int = 30,
) -> TokenLayout:
    """[prefix text][video group 0..frames/2-1][audio][question + assistant header]."""
    groups = max(1, frames // 2)  # the STC connector pools pairs of frames
    segments = [Segment("text", prefix_tokens)]
    segments += [Segment("video", tokens_per_group, frame=g) for g in range(groups)]
    segments += [Segment("audio", audio_tokens), Segment("text", suffix_tokens)]
    return TokenLayout(tuple(segments))


def config_frames(config: dict, where: str) -> int:
    """The frames per clip a checkpoint's config.json (`config`, read from `where`) sets: its num_frames,
    else upstream's 8. A value upstream would not sample as a clip of that many frames is one line."""
    value = config.get(NUM_FRAMES_KEY, UPSTREAM_NUM_FRAMES)
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_FRAMES <= value <= UPSTREAM_MAX_FRAMES:
        raise FastAVError(f"{where} sets num_frames {value!r}: VideoLLaMA2 samples {MIN_FRAMES} to "
                          f"{UPSTREAM_MAX_FRAMES} frames per clip (its connector pools pairs of frames, its video "
                          f"processing keeps at most {UPSTREAM_MAX_FRAMES}): set an integer in that range")
    return value


def describe_frames(config: dict, where: str) -> str:
    """The loading report's line on the frame count: "16 (num_frames in config.json)", or upstream's default."""
    frames = config_frames(config, where)
    if NUM_FRAMES_KEY in config:
        return f"{frames} (num_frames in config.json)"
    return f"{frames} (config.json sets no num_frames: upstream's default)"


def with_config_frames(spec: ModelSpec, config: dict, where: str) -> ModelSpec:
    """`spec` sampling the checkpoint's frame count, its layout with one video group per pair of frames."""
    frames = config_frames(config, where)
    if frames == spec.video.num_frames:
        return spec
    return replace(spec, video=replace(spec.video, num_frames=frames),
                   default_layout=partial(spec.default_layout, frames=frames))


register(ModelSpec(
    name="videollama2",
    family=FAMILY,
    placeholder_id=VIDEO_PLACEHOLDER_ID,
    dims=QWEN2_7B,
    default_layout=videollama2_layout,
    # Paper-like preset: video tokens before position 750 and the first 10 audio
    # tokens survive the global cut (audio goes from 1,496 to 10 tokens).
    preset=PruningConfig(global_policy="positional", cutoff=750, keep_audio=10),
    hf_id="DAMO-NLP-SG/VideoLLaMA2.1-7B-AV",
    # 16 frames at SigLIP's 384 x 384; 30 s of 16 kHz audio as a 128-bin filterbank (2,998 frames).
    video=VideoSettings(num_frames=16, image_size=384),
    audio=AudioSettings(sample_rate=16_000, seconds=30.0, mel_bins=128),
    description="VideoLLaMA2.1-7B-AV (Qwen2-7B decoder; 1352 video + 1496 audio tokens)",
))

TINY_LAYOUT = dict(frames=8, tokens_per_group=9, audio_tokens=24, prefix_tokens=6, suffix_tokens=6)


def videollama2_tiny_layout(**sizes) -> TokenLayout:
    """The tiny layout; `sizes` override videollama2_layout's arguments (a checkpoint's `frames`)."""
    return videollama2_layout(**{**TINY_LAYOUT, **sizes})


register(ModelSpec(
    name="videollama2-tiny",
    family=FAMILY,
    placeholder_id=VIDEO_PLACEHOLDER_ID,
    dims=DecoderDims(hidden_size=64, intermediate_size=128, num_layers=6, num_heads=4, num_kv_heads=2,
                     vocab_size=256, rope_theta=1_000_000.0, rms_norm_eps=1e-6),
    default_layout=videollama2_tiny_layout,
    # Same rules scaled down: half of the video, the first 3 audio tokens.
    preset=PruningConfig(global_policy="positional", cutoff=6 + 18, keep_audio=3),
    description="tiny random-weight VideoLLaMA2-AV (decoder, encoders, tokenizer) for tests and the quickstart",
    random_init_std=0.1,
    # The tiny encoders keep the real structure at small sizes: 8 frames of 48 x 48 (6 x 6 patches of 8,
    # pooled to 3 x 3 per pair of frames: 4 x 9 rows) and 2 s of audio (198 filterbank frames in 32 x 32
    # patches: 6 x 4 = 24 rows), so a clip fills exactly the tiny layout's media segments.
    video=VideoSettings(num_frames=8, image_size=48),
    audio=AudioSettings(sample_rate=16_000, seconds=2.0, mel_bins=128),
))
