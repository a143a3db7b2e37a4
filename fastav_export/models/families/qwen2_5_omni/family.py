"""Qwen2.5-Omni behind the `Family` interface: the thinker's decoder and towers, from one load."""

from __future__ import annotations

import logging
from pathlib import Path

from ....contract.dims import DecoderDims
from ....contract.layout import TokenLayout
from ...media_parts import MediaParts
from ...registry import ModelSpec
from ..base import ClipLayout, Family
from ..media_rules import MediaRecord, MediaRules
from .chat import VIDEO_TOKEN
from .spec import FAMILY, OMNI_MODEL_TYPE, THINKER_MODEL_TYPE

log = logging.getLogger("fastav_export")
# The longest clip the default engine admits (its --max-tokens); the clip's own layout is checked per request.
LONGEST_CLIP_SECONDS = {True: 8.0, False: 60.0}  # tiny, full size


def _thinker(checkpoint: Path | None, seed: int, dtype=None):
    """(thinker, where its weights came from) of `checkpoint`, or the tiny seeded one. Loaded afresh for each
    caller (the decoder is cast and moved, the towers stay fp32), so no caller sees another's casts."""
    import torch

    if checkpoint is not None:
        from .snapshot import load_thinker

        loaded = load_thinker(Path(checkpoint), dtype or torch.float32)
        return loaded.thinker, loaded.sources
    from .thinker import tiny_thinker

    return tiny_thinker(seed), {"thinker": f"seeded random weights (seed {seed})"}


class Qwen25OmniFamily(Family):
    name = FAMILY
    model_types = (OMNI_MODEL_TYPE, THINKER_MODEL_TYPE)

    def decoder_dims(self, config: dict, where: str) -> DecoderDims:
        from .snapshot import thinker_config

        return DecoderDims.from_qwen2_config(thinker_config(config, where).text_config)

    def load_decoder(self, spec: ModelSpec, checkpoint: Path | None, seed: int, dtype, device,
                     attn_implementation: str):
        from .thinker import ThinkerDecoder, random_decoder

        if checkpoint is None and not spec.is_tiny:  # --random-weights at the real sizes: no towers needed
            from ....user_io.memory import check_fits

            check_fits(spec.dims.parameter_count() * (4 + dtype.itemsize),
                       f"{spec.name}'s random weights ({spec.dims.parameter_count() / 1e9:.2f} B parameters)",
                       "use a machine with more memory, or the model's -tiny variant")
            decoder = random_decoder(spec.dims, seed, attn_implementation=attn_implementation)
            return decoder.to(device=device, dtype=dtype)
        thinker, sources = _thinker(checkpoint, seed, dtype)
        if checkpoint is not None:
            log.info(f"loaded the decoder of {checkpoint}: {sources['thinker']}")
        decoder = ThinkerDecoder(thinker)  # the towers are dropped with the thinker
        decoder.config._attn_implementation = attn_implementation
        return decoder.to(device=device, dtype=dtype).eval()

    def load_media_parts(self, spec: ModelSpec, dims: DecoderDims, checkpoint: Path | None,
                         vision_tower: Path | None, seed: int, options) -> MediaParts:
        from ....errors import FastAVError
        from ....text.tokenizer import load_tokenizer
        from .encoders import OmniAudioGraph, OmniVisionGraph
        from .rules import tower_options

        if vision_tower is not None:
            raise FastAVError("--vision-tower does not apply to Qwen2.5-Omni (its snapshot holds the vision tower): "
                              "drop it")
        thinker, sources = _thinker(checkpoint, seed)
        visual, audio = thinker.model.visual, thinker.model.audio_tower
        if checkpoint is None:
            tokenizer, where = _tiny_tokenizer(), "the tiny byte-level tokenizer with Qwen2.5-Omni's media tokens"
        else:
            tokenizer, where = load_tokenizer(checkpoint), f"{checkpoint} (chat template included)"
        # The towers as their graphs take them: the patches / features and the tables of the clip's size.
        return MediaParts(OmniVisionGraph(visual), OmniAudioGraph(audio), tokenizer, VIDEO_TOKEN,
                          {**sources, "tokenizer": where}, options=tower_options(visual.config, audio.config))

    def layout_for_duration(self, spec: ModelSpec, seconds: float, prefix_tokens: int,
                            suffix_tokens: int) -> ClipLayout:
        """A 30 fps clip at the default frame size (DEFAULT_HEIGHT x DEFAULT_WIDTH) with sound, sampled and
        chunked as qwen-omni-utils and the processor do."""
        from .chunk_layout import clip_for_duration, omni_layout
        from .spec import DEFAULT_HEIGHT, DEFAULT_WIDTH

        clip = clip_for_duration(seconds, DEFAULT_HEIGHT, DEFAULT_WIDTH)
        chunks = len(clip.chunks())
        description = (f"{seconds:g} s of {DEFAULT_WIDTH} x {DEFAULT_HEIGHT} -> grid {clip.grid_t} x {clip.merged_h} x "
                       f"{clip.merged_w} ({clip.video_tokens} video tokens, {clip.second_per_grid:g} s per grid) and "
                       f"{clip.audio_tokens} audio tokens, in {chunks} chunk{'s' * (chunks != 1)} of "
                       f"{clip.settings.seconds_per_chunk:g} s [video][audio]")
        return ClipLayout(omni_layout(clip, prefix_tokens, suffix_tokens), description)

    def longest_prompt(self, spec: ModelSpec, layout: TokenLayout, options) -> int:
        """A clip of LONGEST_CLIP_SECONDS at the default frame size, with Qwen's prompt around it."""
        from .spec import DEFAULT_HEIGHT, DEFAULT_WIDTH, omni_layout

        seconds = LONGEST_CLIP_SECONDS[spec.is_tiny]
        longest = omni_layout(seconds, DEFAULT_HEIGHT, DEFAULT_WIDTH, layout.segments[0].length,
                              layout.segments[-1].length)
        return max(layout.n_tokens, longest.n_tokens)

    def media_rules(self, media: MediaRecord) -> MediaRules:
        from .rules import OmniMediaRules

        return OmniMediaRules(media)

    def wrote_media_section(self, media: dict) -> bool:
        return media.get("audio", {}).get("features") == FAMILY

    def write_tiny_snapshot(self, directory: Path, seed: int = 0, **variants) -> Path:
        from .tiny_snapshot import write_tiny_snapshot

        return write_tiny_snapshot(directory, seed, **variants)


def _tiny_tokenizer():
    import tempfile

    from ....text.tiny_tokenizer import write_tiny_tokenizer
    from ....text.tokenizer import load_tokenizer
    from .chat import MEDIA_TOKENS, TINY_CHAT_TEMPLATE
    from .tiny_config import TINY_VOCAB_SIZE

    with tempfile.TemporaryDirectory(prefix="fastav-tiny-tokenizer-") as directory:
        return load_tokenizer(write_tiny_tokenizer(directory, TINY_VOCAB_SIZE, media_tokens=MEDIA_TOKENS,
                                                   template=TINY_CHAT_TEMPLATE))
