"""The TopKGather CUDA kernel's algorithm, step by step in numpy.

`plugins/topk_gather/topk_gather_kernels.cu` does not sort. Per row it
1. maps each candidate's score to an order-preserving uint32 key (`ordered_keys`),
2. builds the 64-bit composite u = (~key << token_bits) | token, so that "smaller u"
   means "larger score, then lower token index" (the contract's tie rule),
3. finds the k smallest u with an MSD radix select over 8-bit digits (`radix_select`),
4. counts every protected and every selected token in a per-token counter,
5. compacts the counters with an exclusive prefix sum, which writes the kept tokens in
   ascending order (a token counted twice is written twice), and
6. gathers hidden-state rows and position ids at the kept indices.

This module mirrors those steps one for one, so that tests can check the *algorithm*
on CPU against the ONNX function and `topk_gather_reference` on adversarial inputs
(ties, -0.0/+0.0, NaN, k = 0, k = C, N = 32768), and the GPU tests can check the kernel
against this twin. Keep it in sync with the .cu file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DIGIT_BITS = 8
BINS = 1 << DIGIT_BITS


def ordered_keys(scores: np.ndarray) -> np.ndarray:
    """uint32 keys with key(a) > key(b) iff a > b; -0.0 == +0.0; NaN below -inf.

    fp16 and bf16 scores widen to fp32 exactly, which is what the kernel does first.
    """
    values = np.asarray(scores).astype(np.float32)
    bits = values.view(np.uint32).copy()
    bits[values == 0.0] = 0  # -0.0 and +0.0 are one score: the token index decides
    negative = (bits & np.uint32(0x80000000)) != 0
    keys = np.where(negative, ~bits, bits | np.uint32(0x80000000)).astype(np.uint32)
    keys[np.isnan(values)] = 0  # the numpy reference's sort puts NaN after every number
    return keys


def token_bits(tokens: int) -> int:
    """Bits that hold any token index in [0, tokens) (at least 1, at most 31)."""
    bits = 1
    while bits < 31 and (1 << bits) < tokens:
        bits += 1
    return bits


def composite_keys(keys: np.ndarray, tokens: np.ndarray, bits: int) -> np.ndarray:
    """u = (~key << bits) | token as uint64: ascending u = descending score, then ascending token."""
    descending = (~keys.astype(np.uint32)).astype(np.uint64)
    return (descending << np.uint64(bits)) | tokens.astype(np.uint64)


def _high(values, shift: int):
    """values >> shift, defined for shift == 64 (the kernel's highBits)."""
    if shift >= 64:
        return np.zeros_like(values) if isinstance(values, np.ndarray) else np.uint64(0)
    return values >> np.uint64(shift)


@dataclass
class Selection:
    """Outcome of the radix select over one row's composite keys.

    Selected: every u with u >> shift < prefix >> shift, plus the bucket
    u >> shift == prefix >> shift entirely when `whole_bucket`, otherwise (shift == 0)
    `remaining` copies of the single composite `prefix`. `select_all`: k >= valid count.
    """

    shift: int = 0
    prefix: int = 0
    remaining: int = 0
    whole_bucket: bool = False
    select_all: bool = False


def radix_select(u: np.ndarray, k: int, total_bits: int) -> Selection:
    """MSD radix select of the k smallest values of `u` (uint64), 8 bits per pass."""
    shift = -(-total_bits // DIGIT_BITS) * DIGIT_BITS
    prefix = np.uint64(0)
    remaining = k
    while shift > 0:
        upper = shift
        shift -= DIGIT_BITS
        in_bucket = u[_high(u, upper) == _high(prefix, upper)]
        digits = ((in_bucket >> np.uint64(shift)) & np.uint64(BINS - 1)).astype(np.int64)
        histogram = np.bincount(digits, minlength=BINS)
        if len(in_bucket) <= remaining:  # only on the first pass: keep every valid candidate
            return Selection(shift=shift, select_all=True)
        inclusive = np.cumsum(histogram)
        digit = int(np.searchsorted(inclusive, remaining))  # first bin where the count reaches `remaining`
        below = int(inclusive[digit] - histogram[digit])
        remaining -= below
        prefix = prefix | (np.uint64(digit) << np.uint64(shift))
        if remaining == histogram[digit]:
            return Selection(shift=shift, prefix=int(prefix), remaining=remaining, whole_bucket=True)
    return Selection(shift=0, prefix=int(prefix), remaining=remaining)


def select_counts(scores_row, candidates_row, protected_row, k: int, tokens: int) -> np.ndarray:
    """Per-token counters of one row after marking protected and selected candidates."""
    counters = np.zeros(tokens, np.uint32)
    protected_row = np.asarray(protected_row, np.int64)
    valid = protected_row[(protected_row >= 0) & (protected_row < tokens)]
    np.add.at(counters, valid, 1)
    if k == 0:
        return counters
    candidates_row = np.asarray(candidates_row, np.int64)
    candidates_row = candidates_row[(candidates_row >= 0) & (candidates_row < tokens)]
    bits = token_bits(tokens)
    u = composite_keys(ordered_keys(np.asarray(scores_row)[candidates_row]), candidates_row, bits)
    chosen = radix_select(u, k, 32 + bits)
    if chosen.select_all:
        np.add.at(counters, candidates_row, 1)
        return counters
    mine, bound = _high(u, chosen.shift), _high(np.uint64(chosen.prefix), chosen.shift)
    picked = (mine < bound) | ((mine == bound) if chosen.whole_bucket else False)
    np.add.at(counters, candidates_row[picked], 1)
    if not chosen.whole_bucket:
        # One composite key left: one token listed several times among the candidates.
        np.add.at(counters, [chosen.prefix & ((1 << bits) - 1)], chosen.remaining)
    return counters


def compact(counters: np.ndarray, kept: int) -> np.ndarray:
    """Ascending kept indices: token i written counters[i] times; a short row ends in -1."""
    index = np.repeat(np.arange(len(counters), dtype=np.int64), counters.astype(np.int64))[:kept]
    return np.concatenate([index, np.full(kept - len(index), -1, np.int64)])


def topk_gather_algorithm(scores, hidden, positions, candidates, protected, k: int):
    """The kernel's outputs (kept_index, kept_hidden_states, kept_position_ids), step by step."""
    batch, tokens = np.asarray(scores).shape[:2]
    kept = np.asarray(protected).shape[1] + k
    index = np.stack([compact(select_counts(scores[b], candidates[b], protected[b], k, tokens), kept)
                      for b in range(batch)]) if batch else np.zeros((0, kept), np.int64)
    valid = index >= 0
    safe = np.where(valid, index, 0)
    rows = np.arange(batch)[:, None]
    kept_hidden = np.where(valid[..., None], hidden[rows, safe], 0).astype(hidden.dtype)
    kept_positions = np.where(valid, positions[rows, safe], -1).astype(np.int64)
    return index, kept_hidden, kept_positions
