"""video-SALMONN 2: Qwen2-7B decoder (LLaVA-OneVision base), interleaved per frame.

Frames are sampled at 1 fps (up to 110); each frame contributes its visual tokens
(13 x 13 pooled SigLIP patches plus 13 row newlines = 182) followed by the audio
tokens of the same second (a window-level Q-Former over Whisper features gives about
3 per second): [182 video][k audio] per frame, after the prompt prefix and before
the question.
"""

from ..contract.dims import DecoderDims
from ..contract.layout import Segment, TokenLayout
from ..contract.pruning_config import PruningConfig
from .qwen2 import QWEN2_7B
from .registry import ModelSpec, register, register_checkpoint_type

FAMILY = "video-salmonn2"


def video_salmonn2_layout(
    frames: int = 30,
    video_per_frame: int = 182,
    audio_per_frame: int = 3,
    prefix_tokens: int = 14,
    suffix_tokens: int = 30,
) -> TokenLayout:
    """[prefix][frame 0: video, audio][frame 1: video, audio]...[question + header]."""
    segments = [Segment("text", prefix_tokens)]
    for f in range(frames):
        segments.append(Segment("video", video_per_frame, frame=f))
        if audio_per_frame:
            segments.append(Segment("audio", audio_per_frame, frame=f))
    segments.append(Segment("text", suffix_tokens))
    return TokenLayout(tuple(segments))


register(ModelSpec(
    name="video-salmonn2",
    family=FAMILY,
    dims=QWEN2_7B,
    default_layout=video_salmonn2_layout,
    # Paper-like preset: keep the first 4 frames (their video and audio tokens).
    preset=PruningConfig(global_policy="positional", keep_frames=4),
    hf_id="tsinghua-ee/video-SALMONN-2",
    description="video-SALMONN 2 (Qwen2-7B decoder; per-frame [182 video][k audio] tokens)",
))

TINY_LAYOUT = dict(frames=6, video_per_frame=6, audio_per_frame=3, prefix_tokens=6, suffix_tokens=6)


def video_salmonn2_tiny_layout() -> TokenLayout:
    return video_salmonn2_layout(**TINY_LAYOUT)


register(ModelSpec(
    name="video-salmonn2-tiny",
    family=FAMILY,
    dims=DecoderDims(hidden_size=64, intermediate_size=128, num_layers=6, num_heads=4, num_kv_heads=2,
                     vocab_size=256, rope_theta=1_000_000.0, rms_norm_eps=1e-6),
    default_layout=video_salmonn2_tiny_layout,
    preset=PruningConfig(global_policy="positional", keep_frames=2),
    description="tiny random-weight video-SALMONN 2 decoder for tests",
    random_init_std=0.1,
))

# video-SALMONN 2's own config class, and its LLaVA-OneVision base.
register_checkpoint_type("video_salmonn_2", FAMILY)
register_checkpoint_type("llava_qwen", FAMILY)
