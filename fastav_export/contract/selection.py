"""Which tokens survive: the keep/drop decisions of the FastAV contract.

Pure functions of scores, the layout and the config, shared by every backend that
runs in PyTorch and used as the reference for the exported TopKGather op. Tie rules
are part of the contract, so they are made explicit with stable sorts:

* global (rollout): keep the `budget` candidates with the largest importance; on a
  tie the lower position wins.
* fine (after layer l): drop the d_l candidates with the lowest score; on a tie the
  higher position is dropped first.

Counts never depend on data: every row of a batch keeps the same number of tokens.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .budget import keep_count
from .layout import KIND_CODES, NO_FRAME, TokenLayout
from .pruning_config import PruningConfig


def positional_keep_mask(layout: TokenLayout, config: PruningConfig) -> np.ndarray:
    """[N] bool: the candidates the static positional rule keeps (union of its rules)."""
    candidates = layout.candidate_mask()
    positions = np.arange(layout.n_tokens)
    keep = np.zeros(layout.n_tokens, bool)
    if config.cutoff is not None:
        keep |= positions < config.cutoff
    if config.keep_audio:
        audio_positions = np.flatnonzero((layout.kind_codes() == KIND_CODES["audio"]) & candidates)
        keep[audio_positions[: config.keep_audio]] = True
    if config.keep_frames:
        frames = layout.frames()
        keep |= (frames != NO_FRAME) & (frames < config.keep_frames)
    return keep & candidates


def rollout_query_weights(layout: TokenLayout, rows: str) -> np.ndarray:
    """u: [N] fp32 weights of the query rows averaged into the rollout importance.

    rows: "all", "text" or "last"; a layout without text rows falls back to the last row.
    """
    n = layout.n_tokens
    if rows == "all":
        mask = np.ones(n, bool)
    elif rows == "text":
        mask = layout.kind_codes() == KIND_CODES["text"]
    else:  # "last"
        mask = np.zeros(n, bool)
        mask[-1] = True
    if not mask.any():
        mask[-1] = True
    return (mask / mask.sum()).astype(np.float32)


def global_keep_count(layout: TokenLayout, config: PruningConfig) -> int:
    """How many candidates the global policy keeps (a function of the layout only)."""
    n_candidates = int(layout.candidate_mask().sum())
    if config.global_policy == "none":
        return n_candidates
    if config.global_policy == "positional" or config.global_budget is None:
        # Rollout without a budget keeps as many tokens as the positional rule, so the
        # two policies can be compared at equal cost.
        return int(positional_keep_mask(layout, config).sum())
    return keep_count(config.global_budget, n_candidates)


def fine_drop_count(n_candidates: int, fine_ratio: float) -> int:
    """d_l = floor(P * |C ∩ T_l|)."""
    # The small epsilon keeps e.g. 0.2 * 10 == 2 when floating point gives 1.9999999.
    return int(math.floor(fine_ratio * n_candidates + 1e-9))


def mask_to_indices(mask: torch.Tensor) -> torch.Tensor:
    """[B, N] bool with the same count per row -> [B, n] ascending column indices."""
    batch = mask.shape[0]
    return torch.nonzero(mask, as_tuple=False)[:, 1].reshape(batch, -1)


def select_global_topk(importance: torch.Tensor, candidate_mask: torch.Tensor, budget: int) -> torch.Tensor:
    """Global rollout selection.

    importance: [B, N] float; candidate_mask: [N] bool; budget: candidates to keep.
    Returns [B, n_K] int64, the ascending original indices of T_K (non-candidates + kept).
    """
    batch, n = importance.shape
    cand = torch.nonzero(candidate_mask, as_tuple=False)[:, 0]
    budget = min(budget, cand.numel())
    # Stable descending sort over ascending positions: ties keep the lower position first.
    order = torch.sort(importance[:, cand], dim=1, descending=True, stable=True).indices[:, :budget]
    keep = (~candidate_mask).unsqueeze(0).expand(batch, n).clone()
    keep.scatter_(1, cand[order], True)
    return mask_to_indices(keep)


def select_positional(keep_mask: np.ndarray, layout: TokenLayout, batch: int, device) -> torch.Tensor:
    """Static positional selection: [B, n_K] ascending original indices of T_K."""
    keep = torch.from_numpy(~layout.candidate_mask() | keep_mask).to(device)
    return mask_to_indices(keep.unsqueeze(0).expand(batch, -1))


def select_fine(scores: torch.Tensor, is_candidate: torch.Tensor, n_drop: int) -> torch.Tensor:
    """Fine selection after one layer.

    scores: [B, n] last-query scores over the layer's tokens; is_candidate: [B, n] bool
    (the same count per row); n_drop: d_l. Returns [B, n - d_l] int64 ascending local
    indices (into the layer's token axis) of the tokens that go on to the next layer.
    """
    batch, n = scores.shape
    if n_drop == 0:
        return torch.arange(n, device=scores.device).unsqueeze(0).expand(batch, n)
    n_cand = int(is_candidate[0].sum())
    # Candidate columns in descending position order, so that the stable ascending
    # sort below puts the higher position first among equal scores.
    cand_desc = torch.argsort((~is_candidate).to(torch.int8), dim=1, stable=True)[:, :n_cand].flip(1)
    order = torch.sort(scores.gather(1, cand_desc), dim=1, stable=True).indices[:, :n_drop]
    keep = torch.ones(batch, n, dtype=torch.bool, device=scores.device)
    keep.scatter_(1, cand_desc.gather(1, order), False)
    return mask_to_indices(keep)
