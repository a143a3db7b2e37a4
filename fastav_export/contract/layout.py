"""Token layout: which positions of the decoder input are text, video or audio.

A layout is an ordered list of segments. It is shared by every row of a batch: the
multimodal placeholders of VideoLLaMA2 and video-SALMONN 2 expand to the same number
of tokens for the same frame count and audio length, so the counts are static and
only the contents differ between rows.

JSON form (``--layout FILE``)::

    [{"kind": "text", "length": 14},
     {"kind": "video", "length": 169, "frame": 0}, ...,
     {"kind": "audio", "length": 1496},
     {"kind": "text", "length": 30}]

Candidates for pruning (set C of the semantics page) are the video and audio tokens,
except the last position, which is never pruned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FastAVError
from ..user_io.json_input import read_json_file

TEXT, VIDEO, AUDIO = "text", "video", "audio"
KINDS = (TEXT, VIDEO, AUDIO)
KIND_CODES = {TEXT: 0, VIDEO: 1, AUDIO: 2}
NO_FRAME = -1
BLOCKS, INTERLEAVED = "blocks", "interleaved"
ARRANGEMENTS = (BLOCKS, INTERLEAVED)
# Sanity bounds, far above any real prompt (Qwen2 has 32,768 positions): positions and
# frame indices become int64 arrays, and a length of 10**12 would ask for a terabyte
# before any model could refuse it. Each command checks the model's own limit too.
MAX_TOKENS = 2**31 - 1
MAX_FRAME = 2**31 - 1


@dataclass(frozen=True)
class Segment:
    kind: str
    length: int
    frame: int | None = None

    def to_json(self) -> dict:
        out = {"kind": self.kind, "length": self.length}
        if self.frame is not None:
            out["frame"] = self.frame
        return out


@dataclass(frozen=True)
class TokenLayout:
    """An ordered, validated tuple of segments."""

    segments: tuple[Segment, ...]

    def __post_init__(self):
        segments = tuple(self.segments)
        object.__setattr__(self, "segments", segments)
        if not segments:
            raise FastAVError("the layout is empty: give at least one segment (e.g. one text segment)")
        for i, seg in enumerate(segments):
            if seg.kind not in KINDS:
                raise FastAVError(
                    f"layout segment {i} has unknown kind {seg.kind!r}: use one of {', '.join(KINDS)}"
                )
            if not isinstance(seg.length, int) or isinstance(seg.length, bool) or seg.length <= 0:
                raise FastAVError(f"layout segment {i} has length {seg.length!r}: lengths are positive integers")
            if seg.frame is not None and (
                not isinstance(seg.frame, int) or isinstance(seg.frame, bool) or not 0 <= seg.frame <= MAX_FRAME
            ):
                raise FastAVError(f"layout segment {i} has frame {seg.frame!r}: frames are integers in "
                                  f"0..{MAX_FRAME}")
        if self.n_tokens > MAX_TOKENS:
            raise FastAVError(f"the layout has {self.n_tokens} tokens, more than the {MAX_TOKENS} any model can "
                              "take: check the segment lengths")

    # ---- construction -------------------------------------------------------------
    @classmethod
    def from_json(cls, data) -> "TokenLayout":
        if not isinstance(data, list):
            raise FastAVError("a layout is a JSON list of segments like {\"kind\": \"video\", \"length\": 169}")
        segments = []
        for i, item in enumerate(data):
            if not isinstance(item, dict) or "kind" not in item or "length" not in item:
                raise FastAVError(f"layout segment {i} needs the keys \"kind\" and \"length\"")
            unknown = set(item) - {"kind", "length", "frame"}
            if unknown:
                raise FastAVError(f"layout segment {i} has unknown keys {sorted(unknown)}: allowed are kind, length, frame")
            segments.append(Segment(item["kind"], item["length"], item.get("frame")))
        return cls(tuple(segments))

    @classmethod
    def load(cls, path: str | Path) -> "TokenLayout":
        return cls.from_json(read_json_file(path, "layout file"))

    def to_json(self) -> list[dict]:
        return [seg.to_json() for seg in self.segments]

    # ---- per-position views ---------------------------------------------------------
    @property
    def n_tokens(self) -> int:
        return sum(seg.length for seg in self.segments)

    def kind_codes(self) -> np.ndarray:
        """[N] int8: 0 text, 1 video, 2 audio."""
        return np.concatenate([np.full(s.length, KIND_CODES[s.kind], np.int8) for s in self.segments])

    def frames(self) -> np.ndarray:
        """[N] int64: frame/chunk index of each position, -1 where the segment has none."""
        return np.concatenate(
            [np.full(s.length, NO_FRAME if s.frame is None else s.frame, np.int64) for s in self.segments]
        )

    def candidate_mask(self) -> np.ndarray:
        """[N] bool: video and audio tokens, except the last position (never pruned)."""
        mask = self.kind_codes() != KIND_CODES[TEXT]
        mask[-1] = False
        return mask

    @property
    def arrangement(self) -> str:
        """"interleaved" when audio belongs to frames (video-SALMONN 2's [video][audio] per frame),
        else "blocks" (VideoLLaMA2's [video...][audio]). Positional rules are in frames for the one,
        in positions for the other."""
        return INTERLEAVED if any(seg.kind == AUDIO and seg.frame is not None for seg in self.segments) else BLOCKS

    def count(self, kind: str) -> int:
        return sum(s.length for s in self.segments if s.kind == kind)

    def check_matches(self, n_tokens: int, what: str = "the input embeddings", plural: bool = True) -> None:
        """One line unless `what` (plural: a plural noun, e.g. "the input embeddings") has `n_tokens` tokens."""
        if self.n_tokens != n_tokens:
            raise FastAVError(
                f"the layout covers {self.n_tokens} tokens but {what} {'have' if plural else 'has'} {n_tokens}: "
                f"fix the segment lengths or pass the matching --layout"
            )

    def with_prompt_text(self, prefix_tokens: int, suffix_tokens: int) -> "TokenLayout":
        """This layout with its first and last text segments resized to a real prompt's lengths.

        A model's layout is [text before the placeholder][media rows][text after it]; the media
        rows are fixed by the encoders, the text around them by the question and the chat
        template. So the layout of one prompt is the built one with new text ends.
        """
        first, last = self.segments[0], self.segments[-1]
        if len(self.segments) < 3 or first.kind != TEXT or last.kind != TEXT or any(
                seg.kind == TEXT for seg in self.segments[1:-1]):
            raise FastAVError(f"the layout {self.describe()} is not [text][video/audio...][text], so a prompt cannot "
                              "be placed on it: use the model's own layout")
        return TokenLayout((Segment(TEXT, prefix_tokens), *self.segments[1:-1], Segment(TEXT, suffix_tokens)))

    def describe(self) -> str:
        parts = [f"{self.count(k)} {k}" for k in KINDS if self.count(k)]
        return f"{self.n_tokens} tokens ({', '.join(parts)})"
