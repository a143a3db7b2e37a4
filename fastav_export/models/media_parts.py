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
from ..contract.interleave import FrameInterleave
from ..errors import FastAVError
from .registry import ModelSpec

MODAL_TOKEN = "<video>"  # VideoLLaMA2's placeholder text; audio-visual input uses it too
IMAGE_TOKEN = "<image>"  # LLaVA's, which video-SALMONN 2's prompts carry for the whole clip
FRAMES_PER_CLIP = "frames per clip"  # the loading report's entry for VideoLLaMA2's num_frames


@dataclass
class MediaParts:
    """vision, audio: the encoder modules (videollama2_av or video_salmonn2_av); interleave: the per-frame
    layout rule of a model whose media rows follow the clip (None: the model's layout is fixed);
    options: settings not in the checkpoint's config, for the manifest."""

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


def load_media_parts(spec: ModelSpec, dims: DecoderDims, checkpoint: Path | None = None,
                     vision_tower: Path | None = None, seed: int = 0, options=None) -> MediaParts:
    """The encoders and tokenizer of `spec` (seeded random for tiny models) or of `checkpoint`.

    options: video-SALMONN 2's SalmonnOptions (default: the public scripts' settings)."""
    if spec.family not in ("videollama2", "video-salmonn2"):
        raise FastAVError(f"{spec.name} has no media path in fastav-export: pass --embeds")
    if checkpoint is None:
        if not spec.is_tiny:
            raise FastAVError(f"{spec.name}'s encoders need real weights: pass --checkpoint DIR")
        if vision_tower is not None:
            raise FastAVError("--vision-tower applies to --checkpoint: drop it for a tiny model")
    if spec.family == "video-salmonn2":
        return _salmonn_parts(spec, dims, checkpoint, vision_tower, seed, options)
    from . import videollama2_av

    if checkpoint is None:
        vision, audio = videollama2_av.random_encoders(videollama2_av.tiny_shapes(dims.hidden_size), seed)
        return MediaParts(vision, audio, tiny_tokenizer(dims.vocab_size),
                          sources={"encoders": f"seeded random weights (seed {seed})",
                                   "tokenizer": "the tiny byte-level tokenizer"})
    from ..text.tokenizer import load_tokenizer
    from .checkpoint import read_config
    from .videollama2 import describe_frames

    tokenizer = load_tokenizer(checkpoint)
    loaded = videollama2_av.load_encoders(checkpoint, dims.hidden_size, vision_tower)
    # The spec samples this count already (models.registry.ModelSpec.for_checkpoint); the report says why.
    frames = describe_frames(read_config(Path(checkpoint)), f"{checkpoint}/config.json")
    return MediaParts(loaded.vision, loaded.audio, tokenizer,
                      sources={**loaded.sources, FRAMES_PER_CLIP: frames,
                               "tokenizer": f"{checkpoint} (chat template included)"})


def _salmonn_parts(spec, dims, checkpoint, vision_tower, seed, options) -> MediaParts:
    from . import video_salmonn2, video_salmonn2_av

    options = options or video_salmonn2.DEFAULT_OPTIONS
    rule = video_salmonn2.interleave(spec.interleave.video_per_frame, options, spec.interleave.max_frames)
    if checkpoint is None:
        vision, audio = video_salmonn2_av.random_encoders(video_salmonn2_av.tiny_shapes(dims.hidden_size, options),
                                                          seed)
        return MediaParts(vision, audio, tiny_tokenizer(dims.vocab_size), IMAGE_TOKEN,
                          {"encoders": f"seeded random weights (seed {seed})",
                           "tokenizer": "the tiny byte-level tokenizer"}, rule, options.to_json())
    from ..text.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(checkpoint)
    loaded = video_salmonn2_av.load_encoders(checkpoint, dims.hidden_size, options, vision_tower)
    if loaded.vision.rows_per_frame != rule.video_per_frame:
        rule = video_salmonn2.interleave(loaded.vision.rows_per_frame, options, rule.max_frames)
    return MediaParts(loaded.vision, loaded.audio, tokenizer, IMAGE_TOKEN,
                      {**loaded.sources, "tokenizer": f"{checkpoint} (chat template included)"}, rule,
                      options.to_json())
