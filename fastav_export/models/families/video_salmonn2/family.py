"""video-SALMONN 2 behind the `Family` interface: its options, encoders + tokenizer, media rules."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ....contract.dims import DecoderDims
from ....contract.layout import TokenLayout
from ...media_parts import MediaParts, tiny_tokenizer
from ...registry import ModelSpec
from ..base import ClipLayout, Family
from ..media_rules import MediaRecord, MediaRules
from .spec import DEFAULT_OPTIONS, FAMILY, SalmonnOptions, interleave

IMAGE_TOKEN = "<image>"  # LLaVA's placeholder text, which video-SALMONN 2's prompts carry for the whole clip
CHUNK_SECONDS = 30.0  # one Whisper chunk: the longest Q-Former window


def window_seconds(text: str) -> float:
    """argparse type of `--audio-window`: a number of seconds in (0, 30] (one 30 s chunk), refused by
    the parser itself as one line."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or not 0 < value <= CHUNK_SECONDS:
        raise argparse.ArgumentTypeError(f"{text} must be a number of seconds in (0, {CHUNK_SECONDS:g}]")
    return value


class VideoSalmonn2Family(Family):
    name = FAMILY
    # video-SALMONN 2's own config class. LLaVA-NeXT's `llava_qwen` (LLaVA-OneVision) is not claimed:
    # those checkpoints have no audio, and this family's layout would give them audio rows.
    model_types = ("video_salmonn_2",)

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """The settings its checkpoint's config does not hold (defaults: the public scripts')."""
        group = parser.add_argument_group("video-salmonn2 (settings the checkpoint does not hold)")
        group.add_argument("--audio-window", metavar="SECONDS", type=window_seconds,
                           help="Q-Former window: one audio token per window of each 30 s chunk (default 0.5: 60 "
                                "a chunk, as the public scripts; the code's default 1/3 gives 88)")
        group.add_argument("--pool", choices=("max", "average"), help="2 x 2 pooling of the vision grid (default max)")
        group.add_argument("--no-final-linear", action="store_true",
                           help="leave out final_linear after speech_llama_proj (for checkpoints trained without it)")

    def given_flags(self, args: argparse.Namespace) -> list[str]:
        return [flag for flag, value in (("--audio-window", getattr(args, "audio_window", None)),
                                         ("--pool", getattr(args, "pool", None)),
                                         ("--no-final-linear", getattr(args, "no_final_linear", False))) if value]

    def options_from_args(self, args: argparse.Namespace) -> SalmonnOptions | None:
        if not self.given_flags(args):
            return None
        return SalmonnOptions(args.audio_window or DEFAULT_OPTIONS.window_seconds, not args.no_final_linear,
                              args.pool or DEFAULT_OPTIONS.pool_mode)

    def layout_for_duration(self, spec: ModelSpec, seconds: float, prefix_tokens: int,
                            suffix_tokens: int) -> ClipLayout:
        """Frames at the rule's rate, audio tokens per frame from the clip's 30 s chunks (default options)."""
        rule = spec.interleave
        frames, chunks = rule.frames(seconds), rule.chunks(seconds)
        description = (f"{seconds:g} s -> {frames} frames at {rule.fps:g} fps x [{rule.video_per_frame} video]"
                       f"[{rule.audio_per_frame(frames, chunks, seconds)} audio] ({chunks} audio "
                       f"chunk{'s' * (chunks != 1)} of {rule.chunk_seconds:g} s, {rule.windows_per_chunk} tokens each)")
        return ClipLayout(rule.layout_for_duration(seconds, prefix_tokens, suffix_tokens), description)

    def load_media_parts(self, spec: ModelSpec, dims: DecoderDims, checkpoint: Path | None,
                         vision_tower: Path | None, seed: int, options: SalmonnOptions | None) -> MediaParts:
        from . import encoders

        options = options or DEFAULT_OPTIONS
        rule = interleave(spec.interleave.video_per_frame, options, spec.interleave.max_frames)
        if checkpoint is None:
            vision, audio = encoders.random_encoders(encoders.tiny_shapes(dims.hidden_size, options), seed)
            return MediaParts(vision, audio, tiny_tokenizer(dims.vocab_size), IMAGE_TOKEN,
                              {"encoders": f"seeded random weights (seed {seed})",
                               "tokenizer": "the tiny byte-level tokenizer"}, rule, options.to_json())
        from ....text.tokenizer import load_tokenizer

        tokenizer = load_tokenizer(checkpoint)
        loaded = encoders.load_encoders(checkpoint, dims.hidden_size, options, vision_tower)
        if loaded.vision.rows_per_frame != rule.video_per_frame:
            rule = interleave(loaded.vision.rows_per_frame, options, rule.max_frames)
        return MediaParts(loaded.vision, loaded.audio, tokenizer, IMAGE_TOKEN,
                          {**loaded.sources, "tokenizer": f"{checkpoint} (chat template included)"}, rule,
                          options.to_json())

    def longest_prompt(self, spec: ModelSpec, layout: TokenLayout, options: SalmonnOptions | None) -> int:
        """The media rows follow the clip: those of a clip as long as its most frames (110 s at 1 fps)."""
        rule = interleave(spec.interleave.video_per_frame, options or DEFAULT_OPTIONS, spec.interleave.max_frames)
        longest = rule.layout_for_duration(rule.max_frames / rule.fps, layout.segments[0].length,
                                           layout.segments[-1].length)
        return max(layout.n_tokens, longest.n_tokens)

    def media_rules(self, media: MediaRecord) -> MediaRules:
        from .media import InterleavedMediaRules

        return InterleavedMediaRules(media)

    def wrote_media_section(self, media: dict) -> bool:
        return bool(media.get("interleave"))

    def write_tiny_snapshot(self, directory: Path, seed: int = 0, **variants) -> Path:
        from .tiny_snapshot import write_tiny_snapshot

        return write_tiny_snapshot(directory, seed, **variants)
