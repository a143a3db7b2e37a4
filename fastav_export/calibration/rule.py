"""The keep-mass rule: the positional rule that keeps the fewest candidates and still holds a
share of the rollout importance.

Given the mean importance per position over the samples (`importance` [N]) and the layout,
a positional rule keeps the candidates it selects (`contract.selection.positional_keep_mask`);
its *mass* is the importance of those candidates over that of all candidates. Rules, in the
model's layout terms:

* contiguous layouts ([text][video...][audio][text], VideoLLaMA2): `cutoff` c (candidates
  before position c) plus `keep_audio` k (the first k audio tokens);
* interleaved layouts (audio segments carry a frame index, video-SALMONN 2): `keep_frames` F
  (every candidate of frames 0..F-1).

`choose_rule` searches all of them exactly: the fewest kept candidates with mass >= keep_mass;
among those, the most mass; then the smallest cutoff. `choose_rule_over_clips` does the same for
interleaved clips of different lengths (each with its own layout), with the importance per frame.
Negative importance is an error; when the candidates hold no importance at all, every candidate
counts the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..contract.layout import AUDIO, INTERLEAVED, KIND_CODES, NO_FRAME, TokenLayout
from ..contract.pruning_config import PruningConfig
from ..contract.selection import positional_keep_mask
from ..errors import FastAVError


@dataclass(frozen=True)
class PositionalRule:
    """cutoff / keep_audio / keep_frames: the rule (PruningConfig's meaning); kept: candidates it
    keeps; mass: the share of the candidates' importance they hold."""

    cutoff: int | None
    keep_audio: int
    keep_frames: int
    kept: int
    mass: float

    def config(self, base: PruningConfig | None = None) -> PruningConfig:
        """`base` (default: the defaults) with this rule as its positional policy."""
        from dataclasses import replace

        return replace(base or PruningConfig(), global_policy="positional", global_budget=None, cutoff=self.cutoff,
                       keep_audio=self.keep_audio, keep_frames=self.keep_frames)

    def describe(self) -> str:
        parts = [f"cutoff {self.cutoff}" if self.cutoff is not None else None,
                 f"first {self.keep_audio} audio" if self.keep_audio else None,
                 f"first {self.keep_frames} frames" if self.keep_frames else None]
        return ", ".join(p for p in parts if p) or "keep no candidates"


def check_keep_mass(keep_mass: float) -> float:
    if isinstance(keep_mass, bool) or not isinstance(keep_mass, (int, float)) or not 0.0 < keep_mass <= 1.0:
        raise FastAVError(f"--keep-mass {keep_mass!r} is outside (0, 1]: the share of the rollout mass to keep")
    return float(keep_mass)


def candidate_weights(importance: np.ndarray, layout: TokenLayout) -> np.ndarray:
    """[N] float64: each candidate's share of the candidates' importance (0 elsewhere)."""
    importance = np.asarray(importance, np.float64)
    if importance.shape != (layout.n_tokens,):
        raise FastAVError(f"the importance has shape {list(importance.shape)}, the layout {layout.n_tokens} tokens")
    if not np.isfinite(importance).all() or (importance < 0).any():
        raise FastAVError("the importance holds negative or non-finite values: rollout importance is a distribution")
    candidates = layout.candidate_mask()
    weights = np.where(candidates, importance, 0.0)
    total = weights.sum()
    if total <= 0:  # no importance on any candidate: each counts the same
        weights = candidates.astype(np.float64)
        total = weights.sum()
    return weights / total if total > 0 else weights


def retained_mass(importance: np.ndarray, layout: TokenLayout, config: PruningConfig) -> float:
    """The share of the candidates' importance the positional rule of `config` keeps."""
    return float(candidate_weights(importance, layout)[positional_keep_mask(layout, config)].sum())


def interleaved(layout: TokenLayout) -> bool:
    """Audio that belongs to frames (video-SALMONN 2's [video][audio] per frame)."""
    return layout.arrangement == INTERLEAVED


def choose_rule(importance: np.ndarray, layout: TokenLayout, keep_mass: float) -> PositionalRule:
    """The fewest-candidates positional rule holding at least `keep_mass` of the importance (see above)."""
    keep_mass = check_keep_mass(keep_mass)
    weights = candidate_weights(importance, layout)
    candidates = layout.candidate_mask()
    if not candidates.any():
        raise FastAVError(f"the layout {layout.describe()} has no video or audio candidates to calibrate")
    # Float sums: a rule that holds keep_mass up to rounding holds it.
    target = keep_mass - 1e-9
    if interleaved(layout):
        return _choose_frames(weights, layout, candidates, target)
    return _choose_cutoff_and_audio(weights, layout, candidates, target)


def choose_rule_over_clips(importances: list[np.ndarray], layouts: list[TokenLayout],
                           keep_mass: float) -> PositionalRule:
    """The fewest-frames rule holding at least `keep_mass` of the importance over clips with their own layouts.

    importances[s]: [N_s] importance of clip s over layouts[s]. A frame rule ("the first F frames")
    means the same on a clip of any length, so each clip's candidate importance is summed per frame
    and those sums are averaged over the clips (a clip without frame f adds 0 there), which on one
    shared layout is exactly `choose_rule` on the mean importance. `kept` counts the first clip's
    candidates. Rules in positions (contiguous layouts) cannot be shared across layouts: refused.
    """
    keep_mass = check_keep_mass(keep_mass)
    if len(set(layouts)) == 1:
        return choose_rule(np.mean(importances, axis=0), layouts[0], keep_mass)
    if not all(interleaved(layout) for layout in layouts):
        raise FastAVError("the samples have different layouts and their rule is in positions, which differ "
                          "between them: pass samples of the same length (and question)")
    per_frame, counts = [], []
    for importance, layout in zip(importances, layouts):
        if np.shape(importance) != (layout.n_tokens,):
            raise FastAVError(f"the importance has shape {list(np.shape(importance))}, the layout "
                              f"{layout.n_tokens} tokens")
        candidate_weights(importance, layout)  # the same checks: finite, not negative
        counted = layout.candidate_mask() & (layout.frames() != NO_FRAME)
        frames = layout.frames()[counted]
        per_frame.append(np.bincount(frames, np.asarray(importance, np.float64)[counted]))
        counts.append(np.bincount(frames).astype(np.float64))
    mass, count = (_mean_padded(rows) for rows in (per_frame, counts))
    if count.sum() == 0:
        raise FastAVError(f"the layout {layouts[0].describe()} has no video or audio candidates to calibrate")
    # no importance on any candidate: each candidate counts the same (as `candidate_weights`)
    weights = mass if mass.sum() > 0 else count
    shares = np.cumsum(np.concatenate([[0.0], weights / weights.sum()]))
    keep_frames = int(np.searchsorted(shares, keep_mass - 1e-9, side="left"))  # the first F reaching it
    keep_frames = min(keep_frames, len(weights))
    kept = int(positional_keep_mask(layouts[0], PruningConfig(keep_frames=keep_frames)).sum())
    return PositionalRule(None, 0, keep_frames, kept, float(shares[keep_frames]))


def _mean_padded(rows: list[np.ndarray]) -> np.ndarray:
    """The mean of 1-D arrays of different lengths, each padded with zeros to the longest."""
    out = np.zeros(max(len(row) for row in rows))
    for row in rows:
        out[:len(row)] += row
    return out / len(rows)


def _choose_frames(weights, layout, candidates, target) -> PositionalRule:
    frames = layout.frames()
    counted = candidates & (frames != NO_FRAME)
    for keep_frames in range(int(frames.max()) + 2):
        mask = counted & (frames < keep_frames)
        if weights[mask].sum() >= target or keep_frames > frames.max():
            # Candidates without a frame are kept by no frame rule: the full search ends here.
            return PositionalRule(None, 0, keep_frames, int(mask.sum()), float(weights[mask].sum()))
    raise AssertionError("unreachable")


def _choose_cutoff_and_audio(weights, layout, candidates, target) -> PositionalRule:
    positions = np.flatnonzero(candidates)
    is_audio = layout.kind_codes()[positions] == KIND_CODES[AUDIO]
    audio_prefix = np.concatenate([[0.0], np.cumsum(weights[positions[is_audio]])])  # mass of the first j audio
    best = None
    other_mass = other_count = audio_before = 0
    # cutoff c = 0, then just past each candidate: every distinct set a cutoff can keep.
    for step, cutoff in enumerate([0, *(positions + 1)]):
        if step:  # the candidate at cutoff - 1 joins the cutoff's set
            if is_audio[step - 1]:
                audio_before += 1
            else:
                other_mass += weights[positions[step - 1]]
                other_count += 1
        # the first j >= audio_before audio tokens complete the mass (searchsorted: the smallest j reaching it)
        needed = target - other_mass
        j = max(audio_before, int(np.searchsorted(audio_prefix, needed, side="left")))
        if j >= len(audio_prefix):
            continue  # even every audio token does not reach the mass with this cutoff
        kept, mass = other_count + j, other_mass + audio_prefix[j]
        key = (kept, -round(mass, 9), cutoff)  # rounded: float noise must not outrank a smaller cutoff
        if best is None or key < best[0]:
            best = (key, PositionalRule(int(cutoff), j if j > audio_before else 0, 0, int(kept), float(mass)))
    return best[1]
