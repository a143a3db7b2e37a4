"""Qwen2.5-Omni's thinker (text out; the talker's speech output is out of scope).

    spec.py            the registered models (7B, 3B, tiny): dims with mrope_section, preset, media settings
    family.py          the `Family` object: decoder and towers from one thinker load, media parts, rules
    snapshot.py        the thinker from a released snapshot (`thinker.*`; talker/token2wav skipped)
    thinker.py         the thinker's decoder shaped as Qwen2ForCausalLM; the tiny seeded thinker
    tiny_config.py     transformers' config classes at tiny sizes; the tiny media token ids
    chat.py            Qwen's prompt: default system prompt, the video then the question
    video_sampling.py, resize_rule.py, video_frames.py, frame_resize.py, video_patches.py
                       qwen-omni-utils' frame count and size (2 fps, smart_resize), resize, patches
    audio_features.py  the track's Whisper features (128 mel bins) and their length
    media.py           a clip -> patches + grid, features + length
    vision_tables.py, audio_tables.py, packed_attention.py, encoders.py
                       transformers' towers exported, with the tables of the grid / length as graph inputs
    chunk_layout.py    per 2 s chunk [video][audio] layout and TMRoPE positions (get_rope_index's)
    rules.py           the media rules a run follows (prompt, encoder inputs, layout, positions)
    tiny_snapshot.py   a tiny snapshot on disk in the released format (tests)
"""

from ..base import register_family
from ..media_rules import register_audio_features
from . import spec  # noqa: F401  (registers the specs)
from .family import Qwen25OmniFamily
from .rules import OmniAudioFeatures

FAMILY = register_family(Qwen25OmniFamily())
register_audio_features(OmniAudioFeatures())
