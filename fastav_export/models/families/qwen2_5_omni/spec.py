"""Qwen2.5-Omni's registered models: the thinker (text out) at 7B, 3B and tiny sizes.

Decoder: Qwen2 layers with M-RoPE (three position rows, `mrope_section` [16, 24, 24] of the 64
rotary frequencies). The layout follows the clip: [prefix text][per 2 s chunk: video rows, audio
rows][suffix text] (`chunk_layout.py`), so the default layout is a clip's of `DEFAULT_SECONDS`.
The positional preset keeps the first chunks' video and audio (`keep_frames` counts chunks here),
as video-SALMONN 2's keeps its first frames, until `calibrate` gives a model-specific one.
"""

from __future__ import annotations

from ....contract.dims import DecoderDims
from ....contract.layout import TokenLayout
from ....contract.pruning_config import PruningConfig
from ....media.settings import AudioSettings, VideoSettings
from ...registry import ModelSpec, register
from .tiny_config import TINY_HIDDEN, TINY_MROPE_SECTION, TINY_TOKEN_IDS, TINY_VOCAB_SIZE

FAMILY = "qwen2.5-omni"
# config.json model_type of a released snapshot (thinker, talker, token2wav) and of a thinker-only one.
OMNI_MODEL_TYPE = "qwen2_5_omni"
THINKER_MODEL_TYPE = "qwen2_5_omni_thinker"
MROPE_SECTION = (16, 24, 24)
# The released placeholders: `<|VIDEO|>` (151656). A prompt's media rows carry it; the runtime
# splices encoder rows there and never embeds it.
VIDEO_TOKEN_ID = 151656
# A default clip for the layout-shaped defaults (synthetic runs, the engine's longest prompt): 30 s of
# 640 x 360 video with sound; `flops --duration S` and real clips give their own.
DEFAULT_SECONDS = 30.0
# Text around the media in Qwen's prompt (its default system prompt, the user header and bos tokens;
# the eos tokens, a short question and the assistant header), for the default layout only.
PREFIX_TOKENS, SUFFIX_TOKENS = 44, 20
TINY_PREFIX_TOKENS, TINY_SUFFIX_TOKENS = 8, 8
TINY_SECONDS = 3.0
# The frame size `flops --duration` and the default layout assume (a clip's own size sets its grid).
DEFAULT_HEIGHT, DEFAULT_WIDTH = 360, 640
TINY_HEIGHT, TINY_WIDTH = 56, 84

QWEN25_OMNI_7B = DecoderDims(
    hidden_size=3584, intermediate_size=18944, num_layers=28, num_heads=28, num_kv_heads=4, vocab_size=152064,
    head_dim=128, rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=False,
    max_position_embeddings=32768, mrope_section=MROPE_SECTION,
)
# The 3B thinker's decoder: Qwen2.5-3B's dimensions.
QWEN25_OMNI_3B = DecoderDims(
    hidden_size=2048, intermediate_size=11008, num_layers=36, num_heads=16, num_kv_heads=2, vocab_size=151936,
    head_dim=128, rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
    max_position_embeddings=32768, mrope_section=MROPE_SECTION,
)
TINY_DIMS = DecoderDims(
    hidden_size=TINY_HIDDEN, intermediate_size=128, num_layers=6, num_heads=4, num_kv_heads=2,
    vocab_size=TINY_VOCAB_SIZE, rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=False,
    max_position_embeddings=32768, mrope_section=tuple(TINY_MROPE_SECTION),
)

# qwen-omni-utils' sampling (2 fps, at most 768 frames) and the processor's CLIP normalisation; the
# frame size comes from each clip (`video_frames.frame_size`), so image_size is not used.
VIDEO = VideoSettings(num_frames=768, image_size=28, image_mean=(0.48145466, 0.4578275, 0.40821073),
                      image_std=(0.26862954, 0.26130258, 0.27577711), fps=2.0)
# 16 kHz mono through WhisperFeatureExtractor (128 mel bins), the clip's whole track (up to 300 s).
AUDIO = AudioSettings(sample_rate=16_000, seconds=300.0, mel_bins=128, features="qwen2.5-omni")
PRESET = PruningConfig(global_policy="positional", keep_frames=2)  # the first two chunks: 4 s


def omni_layout(seconds: float = DEFAULT_SECONDS, height: int = DEFAULT_HEIGHT, width: int = DEFAULT_WIDTH,
                prefix_tokens: int = PREFIX_TOKENS, suffix_tokens: int = SUFFIX_TOKENS) -> TokenLayout:
    """The layout of a `seconds` long `height` x `width` clip with sound."""
    from .chunk_layout import layout_for_duration

    return layout_for_duration(seconds, prefix_tokens, suffix_tokens, height=height, width=width)[0]


def tiny_layout() -> TokenLayout:
    return omni_layout(TINY_SECONDS, TINY_HEIGHT, TINY_WIDTH, TINY_PREFIX_TOKENS, TINY_SUFFIX_TOKENS)


register(ModelSpec(
    name="qwen2.5-omni", family=FAMILY, dims=QWEN25_OMNI_7B, default_layout=omni_layout, preset=PRESET,
    hf_id="Qwen/Qwen2.5-Omni-7B", placeholder_id=VIDEO_TOKEN_ID, video=VIDEO, audio=AUDIO,
    description="Qwen2.5-Omni-7B thinker (Qwen2-7B-sized M-RoPE decoder; per 2 s chunk [video][audio])",
))
register(ModelSpec(
    name="qwen2.5-omni-3b", family=FAMILY, dims=QWEN25_OMNI_3B, default_layout=omni_layout, preset=PRESET,
    hf_id="Qwen/Qwen2.5-Omni-3B", placeholder_id=VIDEO_TOKEN_ID, video=VIDEO, audio=AUDIO,
    description="Qwen2.5-Omni-3B thinker (M-RoPE decoder; per 2 s chunk [video][audio])",
))
register(ModelSpec(
    name="qwen2.5-omni-tiny", family=FAMILY, dims=TINY_DIMS, default_layout=tiny_layout,
    preset=PruningConfig(global_policy="positional", keep_frames=1), placeholder_id=TINY_TOKEN_IDS["<|VIDEO|>"],
    video=VIDEO, audio=AUDIO, random_init_std=0.1,
    description="tiny random-weight Qwen2.5-Omni thinker (transformers' own classes at tiny sizes) for tests",
))
