"""The TopKGather kernel's algorithm (numpy twin of the .cu) equals the contract on adversarial inputs.

Compared against the ONNX function run by ONNX Runtime and against `topk_gather_reference`.
"""

from __future__ import annotations

import zlib

import numpy as np
import onnxruntime as ort
import pytest

from fastav_export.export.topk_gather import topk_gather_model, topk_gather_reference
from fastav_export.export.topk_gather_algorithm import (
    composite_keys,
    ordered_keys,
    radix_select,
    token_bits,
    topk_gather_algorithm,
)

WIDTH = 3
NAMES = ("scores", "hidden_states", "position_ids", "candidates", "protected")


@pytest.fixture(scope="module")
def session():
    return ort.InferenceSession(topk_gather_model(WIDTH).SerializeToString(), providers=["CPUExecutionProvider"])


def _bf16(values):
    """Round fp32 to the nearest bf16 (ties to even), kept as fp32."""
    bits = values.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32)


SCORES = {
    "distinct": lambda rng, shape: rng.standard_normal(shape).astype(np.float32),
    "ties": lambda rng, shape: rng.integers(0, 3, shape).astype(np.float32),
    "all-equal": lambda rng, shape: np.full(shape, 0.25, np.float32),
    "signed-zeros": lambda rng, shape: rng.choice(np.array([0.0, -0.0, 1.0, -1.0], np.float32), shape),
    "infinities": lambda rng, shape: rng.choice(np.array([-np.inf, np.inf, 0.0, 3.0], np.float32), shape),
    "fp16-rounded": lambda rng, shape: (rng.standard_normal(shape) * 1e-3).astype(np.float16).astype(np.float32),
    "bf16-rounded": lambda rng, shape: _bf16(rng.standard_normal(shape).astype(np.float32) * 1e-2),
}

# (batch, N, candidates, protected, k)
SIZES = {
    "random": (2, 40, 30, 10, 12),  # candidates shuffled
    "sorted": (2, 40, 30, 10, 12),
    "k=0": (2, 20, 12, 8, 0),
    "k=candidates": (2, 20, 12, 8, 12),
    "N=1 protected": (1, 1, 0, 1, 0),
    "N=1 candidate": (1, 1, 1, 0, 1),
    "protected-only": (2, 16, 0, 16, 0),
    "no-protected": (2, 16, 16, 0, 5),
    "dropped-by-rule": (2, 30, 10, 5, 4),
    "N=32768": (1, 32768, 30000, 2000, 9000),
}


def _feeds(rng, batch, n, n_candidates, n_protected, k, scores, shuffle_candidates=False):
    perm = np.stack([rng.permutation(n) for _ in range(batch)])
    candidates = perm[:, :n_candidates]
    if not shuffle_candidates:
        candidates = np.sort(candidates, axis=1)
    return {
        "scores": scores,
        "hidden_states": rng.standard_normal((batch, n, WIDTH)).astype(np.float32),
        "position_ids": np.tile(np.arange(n, dtype=np.int64) * 2 + 5, (batch, 1)),
        "candidates": candidates.astype(np.int64),
        "protected": np.sort(perm[:, n_candidates:n_candidates + n_protected], axis=1).astype(np.int64),
        "keep": np.zeros(k, np.int64),
    }


@pytest.mark.parametrize("scores", SCORES)
@pytest.mark.parametrize("size", SIZES)
def test_algorithm_equals_onnx_function_and_reference(session, size, scores):
    batch, n, n_candidates, n_protected, k = SIZES[size]
    rng = np.random.default_rng(zlib.crc32(f"{size}/{scores}".encode()))
    feeds = _feeds(rng, batch, n, n_candidates, n_protected, k, SCORES[scores](rng, (batch, n)),
                   shuffle_candidates=size == "random")
    args = [feeds[name] for name in NAMES]
    got = topk_gather_algorithm(*args, k)
    # The ONNX function sorts the candidates before its TopK, so ties go to the lower
    # token index even when the candidates come shuffled ("random").
    expectations = [topk_gather_reference(*args, k), session.run(None, feeds)]
    for expected in expectations:
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)
    assert got[0].shape == (batch, n_protected + k)


def test_nan_ranks_below_every_number_like_the_numpy_reference():
    # The contract's numpy reference sorts NaN after -inf; the kernel does the same.
    # (ONNX Runtime's TopK ranks NaN above +inf, so NaN is the one input where the ONNX
    # function and the reference disagree: scores must not contain NaN.)
    scores = np.array([[np.nan, 1.0, -np.inf, 0.0, -0.0, np.nan, 2.0, -0.0]], np.float32)
    n = scores.shape[1]
    hidden = np.zeros((1, n, WIDTH), np.float32)
    positions = np.arange(n)[None]
    candidates = np.arange(n)[None]
    protected = np.zeros((1, 0), np.int64)
    for k in range(n + 1):
        got = topk_gather_algorithm(scores, hidden, positions, candidates, protected, k)[0]
        expected = topk_gather_reference(scores, hidden, positions, candidates, protected, k)[0]
        np.testing.assert_array_equal(got, expected)
    kept = topk_gather_algorithm(scores, hidden, positions, candidates, protected, 7)[0]
    assert kept.tolist() == [[0, 1, 2, 3, 4, 6, 7]]  # of the two NaNs, the lower index survives


def test_duplicate_tokens_come_out_twice_like_concatenate_then_sort():
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((1, 6)).astype(np.float32)
    hidden = rng.standard_normal((1, 6, WIDTH)).astype(np.float32)
    positions = np.arange(6)[None]
    candidates = np.array([[4, 1, 4, 2, 2, 2]])
    protected = np.array([[1, 5]])
    for k in range(7):
        got = topk_gather_algorithm(scores, hidden, positions, candidates, protected, k)
        expected = topk_gather_reference(scores, hidden, positions, candidates, protected, k)
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)


def test_out_of_range_indices_are_skipped_and_padded():
    scores = np.arange(4, dtype=np.float32)[None]
    hidden = np.ones((1, 4, WIDTH), np.float32)
    kept, kept_hidden, kept_positions = topk_gather_algorithm(
        scores, hidden, np.arange(4)[None], np.array([[0, 9]]), np.array([[-1, 2]]), 2)
    assert kept.tolist() == [[0, 2, -1, -1]]
    assert kept_positions.tolist() == [[0, 2, -1, -1]]
    assert (kept_hidden[0, 2:] == 0).all() and (kept_hidden[0, :2] == 1).all()


def test_ordered_keys_preserve_order_and_merge_signed_zeros():
    values = np.array([-np.inf, -3.5, -1e-30, -0.0, 0.0, 1e-30, 2.0, np.inf], np.float32)
    keys = ordered_keys(values)
    assert (np.diff(keys.astype(np.int64))[[0, 1, 2, 4, 5, 6]] > 0).all()
    assert keys[3] == keys[4]
    assert ordered_keys(np.array([np.nan], np.float32))[0] < keys[0]


def test_radix_select_finds_the_k_smallest_composites():
    rng = np.random.default_rng(7)
    tokens = np.arange(300)
    bits = token_bits(len(tokens))
    u = composite_keys(ordered_keys(rng.integers(0, 5, 300).astype(np.float32)), tokens, bits)
    for k in (1, 17, 150, 299):
        chosen = radix_select(u, k, 32 + bits)
        assert chosen.whole_bucket  # distinct composites: the last bucket is always taken whole
        shift = np.uint64(chosen.shift)
        picked = np.sort(u[(u >> shift) <= (np.uint64(chosen.prefix) >> shift)])
        np.testing.assert_array_equal(picked, np.sort(u)[:k])
