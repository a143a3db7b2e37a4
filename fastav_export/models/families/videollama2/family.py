"""VideoLLaMA2-AV behind the `Family` interface: checkpoint frames, encoders + tokenizer, media rules."""

from __future__ import annotations

from pathlib import Path

from ....contract.dims import DecoderDims
from ...media_parts import MediaParts, tiny_tokenizer
from ...registry import ModelSpec
from ..base import Family
from ..media_rules import MediaRecord, MediaRules
from .spec import FAMILY, describe_frames, with_config_frames

FRAMES_PER_CLIP = "frames per clip"  # the loading report's entry for the checkpoint's num_frames


class VideoLLaMA2Family(Family):
    name = FAMILY
    model_types = ("videollama2_qwen2",)  # config.json `model_type` of VideoLLaMA2's Qwen2 models

    def for_checkpoint(self, spec: ModelSpec, config: dict, where: str) -> ModelSpec:
        """The checkpoint's frames per clip (`num_frames`), and so its layout."""
        return with_config_frames(spec, config, where)

    def load_media_parts(self, spec: ModelSpec, dims: DecoderDims, checkpoint: Path | None,
                         vision_tower: Path | None, seed: int, options) -> MediaParts:
        from . import encoders

        if checkpoint is None:
            vision, audio = encoders.random_encoders(encoders.tiny_shapes(dims.hidden_size), seed)
            return MediaParts(vision, audio, tiny_tokenizer(dims.vocab_size),
                              sources={"encoders": f"seeded random weights (seed {seed})",
                                       "tokenizer": "the tiny byte-level tokenizer"})
        from ....text.tokenizer import load_tokenizer
        from ...checkpoint import read_config

        tokenizer = load_tokenizer(checkpoint)
        loaded = encoders.load_encoders(checkpoint, dims.hidden_size, vision_tower)
        # The spec samples this count already (`for_checkpoint`); the report says why.
        frames = describe_frames(read_config(Path(checkpoint)), f"{checkpoint}/config.json")
        return MediaParts(loaded.vision, loaded.audio, tokenizer,
                          sources={**loaded.sources, FRAMES_PER_CLIP: frames,
                                   "tokenizer": f"{checkpoint} (chat template included)"})

    def media_rules(self, media: MediaRecord) -> MediaRules:
        return MediaRules(media)  # every clip fills the built layout's [video][audio] rows

    def wrote_media_section(self, media: dict) -> bool:
        return not media.get("interleave") and media.get("audio", {}).get("features", "fbank") == "fbank"

    def write_tiny_snapshot(self, directory: Path, seed: int = 0, **variants) -> Path:
        from .tiny_snapshot import write_tiny_snapshot

        return write_tiny_snapshot(directory, seed, **variants)
