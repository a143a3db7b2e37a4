"""What a model's media path holds besides the decoder: encoders, tokenizer, where they came from.

Each family makes its own (`families/<name>/family.py`, `Family.load_media_parts`); `build` and
`run --backend torch` get them through `families.load_media_parts`.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field

from ..contract.interleave import FrameInterleave

MODAL_TOKEN = "<video>"  # VideoLLaMA2's placeholder text; audio-visual input uses it too


@dataclass
class MediaParts:
    """vision, audio: the family's encoder modules; interleave: the per-frame layout rule of a model
    whose media rows follow the clip (None: the model's layout is fixed); options: the family's
    settings not in the checkpoint's config, for the manifest (`media.options`)."""

    vision: object
    audio: object
    tokenizer: object  # transformers tokenizer with the chat template
    modal_token: str = MODAL_TOKEN
    sources: dict[str, str] = field(default_factory=dict)  # part -> where it came from
    interleave: FrameInterleave | None = None
    options: dict = field(default_factory=dict)


def tiny_tokenizer(vocab_size: int):
    """The tiny seed models' tokenizer: byte-level, `vocab_size` ids, Qwen2's chat format without a
    default system turn (so the prompt's text prefix is `<|im_start|>user\\n`, the tiny layout's 6 tokens)."""
    from ..text.tiny_tokenizer import write_tiny_tokenizer
    from ..text.tokenizer import load_tokenizer

    with tempfile.TemporaryDirectory(prefix="fastav-tiny-tokenizer-") as directory:
        return load_tokenizer(write_tiny_tokenizer(directory, vocab_size, default_system=None))
