"""Qwen2.5-Omni's chunked audio-visual prompt: its token layout and its TMRoPE positions.

With the audio track of a video (`use_audio_in_video`), Qwen2.5-Omni's processor replaces the video
placeholder by the two streams cut into chunks of `seconds_per_chunk` (2 s) and interleaved:

    [text ... <|vision_bos|><|audio_bos|>] [chunk 0: video][chunk 0: audio] [chunk 1: video] ...
    [<|audio_eos|><|vision_eos|> ... text]

Every token gets three position rows (temporal, height, width; transformers' `get_rope_index`):
text counts up on all three rows; a video token sits at start + its frame's time in position ids
(`position_id_per_seconds` = 25 a second) on the temporal row and at start + its merged-patch row
and column on the others; an audio token sits at start + its index on all three rows (one token is
40 ms = one position). A chunk holds the tokens whose temporal position lies in its 50-position
range (see `chunk_bounds` for frames more than a chunk apart), so a chunk may end with only
video or only audio rows. A clip without an audio track is
[<|vision_bos|>][video][<|vision_eos|>] with the same video positions and no interleave.

For pruning, a media segment's `frame` is its chunk index: the positional rule "keep the first F
frames" (contract/selection.py) keeps the first F chunks, i.e. the first 2F seconds.

Everything here restates transformers' rules in numpy (no transformers import), so the layout and
positions of a clip are known before any model is loaded; the tests compare them with
transformers' own `get_rope_index` and the processor's placeholder expansion.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ....contract.layout import AUDIO, TEXT, VIDEO, Segment, TokenLayout
from ....errors import FastAVError
from .video_sampling import audio_feature_length, sample_video

# Specials around the media of a clip with audio (<|vision_bos|><|audio_bos|> ... <|audio_eos|><|vision_eos|>)
# and without (<|vision_bos|> ... <|vision_eos|>): they are text (never pruned) at the prompt's ends.
SPECIALS_WITH_AUDIO = 2
SPECIALS_WITHOUT_AUDIO = 1


def audio_tokens_for_feature_length(n_mel_frames: int) -> int:
    """Audio encoder output length for `n_mel_frames` log-mel frames (transformers'
    `_get_feat_extract_output_lengths`: stride-2 convolution, then 2x average pooling)."""
    if not isinstance(n_mel_frames, (int, np.integer)) or isinstance(n_mel_frames, bool) or n_mel_frames < 0:
        raise FastAVError(f"the audio feature length must be a non-negative number of mel frames, got {n_mel_frames!r}")
    after_conv = (int(n_mel_frames) - 1) // 2 + 1
    return (after_conv - 2) // 2 + 1


@dataclass(frozen=True)
class OmniChunkSettings:
    """The thinker config numbers the layout depends on (released defaults).

    spatial_merge_size:     vision patches merged per side into one token (2: 2 x 2 patches).
    position_id_per_seconds: temporal position ids per second of video (25: one per 40 ms).
    seconds_per_chunk:      seconds of video and audio per interleaved chunk (2).
    """

    spatial_merge_size: int = 2
    position_id_per_seconds: float = 25
    seconds_per_chunk: float = 2

    def __post_init__(self):
        if not isinstance(self.spatial_merge_size, int) or self.spatial_merge_size < 1:
            raise FastAVError(f"spatial_merge_size must be a positive integer, got {self.spatial_merge_size!r}")
        if not (self.position_id_per_seconds > 0 and self.seconds_per_chunk > 0) or self.positions_per_chunk < 1:
            raise FastAVError("position_id_per_seconds and seconds_per_chunk must be positive and give at least one "
                              f"position per chunk, got {self.position_id_per_seconds!r} and {self.seconds_per_chunk!r}")

    @property
    def positions_per_chunk(self) -> int:
        """Temporal positions per chunk (50), truncated as transformers' `int(...)` does."""
        return int(self.position_id_per_seconds * self.seconds_per_chunk)


@dataclass(frozen=True)
class OmniClip:
    """One video (and its audio track) as the thinker sees it.

    grid_t, grid_h, grid_w: the vision grid in patches before the 2 x 2 merge (the processor's
        `video_grid_thw`: grid_t = frames / temporal_patch_size, grid_h = height / 14, ...).
    second_per_grid: seconds per temporal grid (the processor's `video_second_per_grid`,
        temporal_patch_size / fps: 1.0 at 2 fps).
    audio_tokens: the audio encoder's output length (`audio_tokens_for_feature_length`); None or 0
        for a clip without an audio track (no interleave, no audio specials). A track shorter than
        three mel frames gives 0 tokens and is treated as no track.
    """

    grid_t: int
    grid_h: int
    grid_w: int
    second_per_grid: float
    audio_tokens: int | None = None
    settings: OmniChunkSettings = field(default_factory=OmniChunkSettings)

    def __post_init__(self):
        merge = self.settings.spatial_merge_size
        for name in ("grid_t", "grid_h", "grid_w"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise FastAVError(f"the clip's {name} must be a positive number of patches, got {value!r}")
        if self.grid_h % merge or self.grid_w % merge:
            raise FastAVError(f"the clip's grid {self.grid_h} x {self.grid_w} patches is not divisible by the "
                              f"{merge} x {merge} patch merge: resize frames to multiples of {14 * merge} pixels")
        if not (isinstance(self.second_per_grid, (int, float)) and math.isfinite(self.second_per_grid)
                and self.second_per_grid > 0):
            raise FastAVError(f"second_per_grid must be a positive number of seconds, got {self.second_per_grid!r}")
        if self.audio_tokens is not None and (
                not isinstance(self.audio_tokens, (int, np.integer)) or isinstance(self.audio_tokens, bool)
                or self.audio_tokens < 0):
            raise FastAVError(f"audio_tokens must be a non-negative count or None, got {self.audio_tokens!r}")

    @property
    def has_audio(self) -> bool:
        return bool(self.audio_tokens)

    @property
    def merged_h(self) -> int:
        return self.grid_h // self.settings.spatial_merge_size

    @property
    def merged_w(self) -> int:
        return self.grid_w // self.settings.spatial_merge_size

    @property
    def video_tokens(self) -> int:
        """grid_t * grid_h * grid_w / merge**2: the vision encoder's output rows."""
        return self.grid_t * self.merged_h * self.merged_w

    @property
    def specials(self) -> int:
        """Special tokens on each side of the media: 2 with audio, 1 without."""
        return SPECIALS_WITH_AUDIO if self.has_audio else SPECIALS_WITHOUT_AUDIO

    def frame_times(self) -> np.ndarray:
        """[grid_t] int64: each temporal grid's time in position ids, relative to the media start.

        float32 product truncated to an integer, as transformers computes it (`second_per_grids`
        is a float32 tensor there), so non-integer products round exactly as in the model."""
        product = np.arange(self.grid_t).astype(np.float32) * np.float32(self.second_per_grid)
        return (product * np.float32(self.settings.position_id_per_seconds)).astype(np.int64)

    def video_positions(self) -> np.ndarray:
        """[3, video_tokens] int64 relative to the media start: (time, merged row, merged column),
        tokens in (grid, row, column) order."""
        spatial = self.merged_h * self.merged_w
        t = np.repeat(self.frame_times(), spatial)
        h = np.tile(np.repeat(np.arange(self.merged_h), self.merged_w), self.grid_t)
        w = np.tile(np.arange(self.merged_w), self.grid_t * self.merged_h)
        return np.stack([t, h, w]).astype(np.int64)

    def chunks(self) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        """Per chunk: ((video start, end), (audio start, end)) into each stream's tokens; one stream's
        range is empty ((n, n)) where the chunk has no rows of it. Without audio the video alone is cut."""
        per_chunk = self.settings.positions_per_chunk
        video = chunk_bounds(np.repeat(self.frame_times(), self.merged_h * self.merged_w), per_chunk)
        audio = chunk_bounds(np.arange(self.audio_tokens), per_chunk) if self.has_audio else []
        n_video, n_audio = self.video_tokens, self.audio_tokens or 0
        return [(video[j] if j < len(video) else (n_video, n_video), audio[j] if j < len(audio) else (n_audio, n_audio))
                for j in range(max(len(video), len(audio)))]


def chunk_bounds(times: np.ndarray, per_chunk: int) -> list[tuple[int, int]]:
    """Cut a non-decreasing [n] array of temporal positions (from 0) into chunks of `per_chunk` positions.

    The rule of transformers' `get_chunked_index`: tokens are visited in order with a chunk counter
    c = 1; a token whose time is >= c * per_chunk starts a new chunk and c grows by one. So a jump over
    several chunk ranges (frames more than 2 s apart) cuts at each of the next tokens in turn, one
    range per token, rather than skipping the empty ranges. Returns (start, end) index pairs.
    """
    n = len(times)
    cuts, next_token, chunk = [], 0, 1
    while True:
        first_late = int(np.searchsorted(times, chunk * per_chunk, side="left"))
        cut = max(next_token, first_late)
        if cut >= n:
            break
        cuts.append(cut)
        next_token, chunk = cut + 1, chunk + 1
    edges = [0, *cuts, n]
    return list(itertools.pairwise(edges))


def _check_prompt_ends(clip: OmniClip, prefix_tokens: int, suffix_tokens: int) -> None:
    for name, value in (("prefix_tokens", prefix_tokens), ("suffix_tokens", suffix_tokens)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < clip.specials:
            raise FastAVError(f"{name} counts the text tokens including the {clip.specials} media special(s) on that "
                              f"side of the clip, so it must be at least {clip.specials}, got {value!r}")


def omni_layout(clip: OmniClip, prefix_tokens: int, suffix_tokens: int) -> TokenLayout:
    """The token layout of one prompt around `clip`.

    prefix_tokens: every token before the first media row, INCLUDING <|vision_bos|> (and <|audio_bos|>
        when the clip has audio); suffix_tokens: every token after the last media row, INCLUDING
        <|audio_eos|> (when it has audio) and <|vision_eos|>. Both are text segments (never pruned).
    Media segments: per chunk j, [video rows of chunk j][audio rows of chunk j], each with frame=j;
    a clip without audio has only the video segments, still cut by chunk.
    """
    _check_prompt_ends(clip, prefix_tokens, suffix_tokens)
    segments = [Segment(TEXT, int(prefix_tokens))]
    for j, ((v0, v1), (a0, a1)) in enumerate(clip.chunks()):
        if v1 > v0:
            segments.append(Segment(VIDEO, v1 - v0, j))
        if a1 > a0:
            segments.append(Segment(AUDIO, a1 - a0, j))
    segments.append(Segment(TEXT, int(suffix_tokens)))
    return TokenLayout(tuple(segments))


class OmniPositions(NamedTuple):
    """position_ids: [3, N] int64 (temporal, height, width) for one prompt;
    rope_delta: max position + 1 - N, where decoding continues (transformers' `rope_deltas`)."""

    position_ids: np.ndarray
    rope_delta: int


class _PositionRun:
    """Position pieces appended in prompt order; a new piece starts one past the LAST piece's largest
    value (any row), as transformers does: after a chunk that ends on audio, the closing specials
    follow that audio even where the chunk's video has a larger position."""

    def __init__(self):
        self.pieces: list[np.ndarray] = []

    def next_start(self) -> int:
        return int(self.pieces[-1].max()) + 1 if self.pieces else 0

    def add(self, piece: np.ndarray) -> None:
        if piece.shape[1]:
            self.pieces.append(piece)

    def add_text(self, n: int, start: int | None = None) -> None:
        start = self.next_start() if start is None else start
        self.add(np.broadcast_to(np.arange(n, dtype=np.int64) + start, (3, n)))


def omni_positions(clip: OmniClip, prefix_tokens: int, suffix_tokens: int) -> OmniPositions:
    """transformers' `get_rope_index` result for the prompt `omni_layout(clip, prefix_tokens, suffix_tokens)`
    describes (one batch row, no padding); prefix/suffix as there, including the media specials."""
    _check_prompt_ends(clip, prefix_tokens, suffix_tokens)
    run = _PositionRun()
    run.add_text(prefix_tokens - clip.specials)
    # The bos specials share one position (with audio, both <|vision_bos|> and <|audio_bos|>).
    bos = run.next_start()
    for _ in range(clip.specials):
        run.add_text(1, bos)
    media_start = run.next_start()
    video = clip.video_positions() + media_start
    if clip.has_audio:
        audio = np.broadcast_to(np.arange(clip.audio_tokens, dtype=np.int64) + media_start, (3, clip.audio_tokens))
        for (v0, v1), (a0, a1) in clip.chunks():
            run.add(video[:, v0:v1])
            run.add(audio[:, a0:a1])
    else:
        run.add(video)
    eos = run.next_start()
    for _ in range(clip.specials):
        run.add_text(1, eos)
    run.add_text(suffix_tokens - clip.specials)
    positions = np.ascontiguousarray(np.concatenate(run.pieces, axis=1), dtype=np.int64)
    return OmniPositions(positions, int(positions.max()) + 1 - positions.shape[1])


def clip_for_duration(seconds: float, height: int = 360, width: int = 640, source_fps: float = 30.0,
                      with_audio: bool = True, settings: OmniChunkSettings | None = None) -> OmniClip:
    """The clip qwen-omni-utils and the processor make of a `seconds` long `height` x `width` video at
    `source_fps` (2 fps sampling, see video_sampling.py), with its audio track when `with_audio`."""
    settings = settings or OmniChunkSettings()
    sampled = sample_video(seconds, height, width, source_fps, factor=14 * settings.spatial_merge_size)
    audio = audio_tokens_for_feature_length(audio_feature_length(seconds)) if with_audio else None
    return OmniClip(grid_t=sampled.grid_t, grid_h=sampled.grid_h, grid_w=sampled.grid_w,
                    second_per_grid=sampled.second_per_grid, audio_tokens=audio, settings=settings)


def layout_for_duration(seconds: float, prefix_tokens: int, suffix_tokens: int, height: int = 360, width: int = 640,
                        source_fps: float = 30.0, with_audio: bool = True,
                        settings: OmniChunkSettings | None = None) -> tuple[TokenLayout, OmniPositions]:
    """Layout and positions of a prompt around a `seconds` long clip (for FLOPs estimates and synthetic
    inputs); prefix/suffix token counts include the media specials (see `omni_layout`)."""
    clip = clip_for_duration(seconds, height, width, source_fps, with_audio, settings)
    return omni_layout(clip, prefix_tokens, suffix_tokens), omni_positions(clip, prefix_tokens, suffix_tokens)
