"""Everything a model's media path needs besides the decoder: encoders, tokenizer, where they came from.

`load_media_parts` is what `build` and `run --backend torch` call: the tiny seed model's
parts are made here (seeded random encoders, the tiny byte-level tokenizer), a checkpoint's
are read from its snapshot with a report of what was loaded from where.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..contract.dims import DecoderDims
from ..errors import FastAVError
from .registry import ModelSpec

MODAL_TOKEN = "<video>"  # VideoLLaMA2's placeholder text; audio-visual input uses it too


@dataclass
class MediaParts:
    vision: object  # videollama2_av.VisionEncoder
    audio: object  # videollama2_av.AudioEncoder
    tokenizer: object  # transformers tokenizer with the chat template
    modal_token: str = MODAL_TOKEN
    sources: dict[str, str] = field(default_factory=dict)  # part -> where it came from


def tiny_tokenizer(vocab_size: int):
    """The tiny seed models' tokenizer: byte-level, `vocab_size` ids, Qwen2's chat format without a
    default system turn (so the prompt's text prefix is `<|im_start|>user\\n`, the tiny layout's 6 tokens)."""
    from ..text.tiny_tokenizer import write_tiny_tokenizer
    from ..text.tokenizer import load_tokenizer

    with tempfile.TemporaryDirectory(prefix="fastav-tiny-tokenizer-") as directory:
        return load_tokenizer(write_tiny_tokenizer(directory, vocab_size, default_system=None))


def load_media_parts(spec: ModelSpec, dims: DecoderDims, checkpoint: Path | None = None,
                     vision_tower: Path | None = None, seed: int = 0) -> MediaParts:
    """The encoders and tokenizer of `spec` (seeded random for tiny models) or of `checkpoint`."""
    from . import videollama2_av

    if spec.family != "videollama2":
        raise FastAVError(f"{spec.name} has no media path in fastav-export yet: pass --embeds")
    if checkpoint is None:
        if not spec.is_tiny:
            raise FastAVError(f"{spec.name}'s encoders need real weights: pass --checkpoint DIR")
        if vision_tower is not None:
            raise FastAVError("--vision-tower applies to --checkpoint: drop it for a tiny model")
        vision, audio = videollama2_av.random_encoders(videollama2_av.tiny_shapes(dims.hidden_size), seed)
        return MediaParts(vision, audio, tiny_tokenizer(dims.vocab_size),
                          sources={"encoders": f"seeded random weights (seed {seed})",
                                   "tokenizer": "the tiny byte-level tokenizer"})
    from ..text.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(checkpoint)
    loaded = videollama2_av.load_encoders(checkpoint, dims.hidden_size, vision_tower)
    return MediaParts(loaded.vision, loaded.audio, tokenizer,
                      sources={**loaded.sources, "tokenizer": f"{checkpoint} (chat template included)"})
