"""GPU: the TopKGather kernels (through their launcher API, as a PyTorch extension) equal
the algorithm twin and the contract's reference in fp32/fp16/bf16."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastav_export.export.topk_gather import topk_gather_reference
from fastav_export.export.topk_gather_algorithm import topk_gather_algorithm

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU and a CUDA build of torch")

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# (batch, N, candidates, protected, k, width)
SIZES = {
    "random": (3, 300, 200, 60, 70, 20),
    "k=0": (2, 50, 30, 20, 0, 8),
    "k=candidates": (2, 50, 30, 20, 30, 8),
    "N=1": (1, 1, 1, 0, 1, 8),
    "protected-only": (2, 40, 0, 40, 0, 8),
    "no-protected": (2, 40, 40, 0, 9, 8),
    "N=32768": (2, 32768, 30000, 2000, 9000, 8),
    "odd-width": (2, 64, 40, 10, 17, 7),  # 7 elements per row: the narrow gather path
}
SCORES = ("distinct", "ties", "all-equal", "signed-zeros")


@pytest.fixture(scope="module")
def extension():
    from fastav_export.testing.topk_gather_extension import load_topk_gather_extension

    return load_topk_gather_extension()


def _scores(rng, kind, shape):
    if kind == "distinct":
        return rng.standard_normal(shape)
    if kind == "ties":
        return rng.integers(0, 4, shape).astype(np.float64)
    if kind == "all-equal":
        return np.full(shape, 0.5)
    return rng.choice(np.array([0.0, -0.0, 1.0, -1.0]), shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", SCORES)
@pytest.mark.parametrize("size", SIZES)
def test_kernel_equals_reference(extension, size, kind, dtype):
    batch, n, n_candidates, n_protected, k, width = SIZES[size]
    rng = np.random.default_rng(n + k + len(kind))
    torch_dtype = DTYPES[dtype]
    scores = torch.tensor(_scores(rng, kind, (batch, n)), dtype=torch_dtype)
    hidden = torch.randn(batch, n, width).to(torch_dtype)
    perm = np.stack([rng.permutation(n) for _ in range(batch)])
    candidates = torch.from_numpy(perm[:, :n_candidates].copy())  # unsorted on purpose
    protected = torch.from_numpy(np.sort(perm[:, n_candidates:n_candidates + n_protected], axis=1))
    positions = torch.arange(n).repeat(batch, 1) * 3 + 1

    got = extension.topk_gather(scores.cuda(), hidden.cuda(), positions.cuda(), candidates.cuda(),
                                protected.cuda(), k)
    got = [t.cpu() for t in got]
    # Exact in every dtype: scores widen to fp32 exactly, hidden rows are copied bit for bit.
    args = (scores.float().numpy(), hidden.float().numpy(), positions.numpy(), candidates.numpy(), protected.numpy())
    for expected in (topk_gather_reference(*args, k), topk_gather_algorithm(*args, k)):
        np.testing.assert_array_equal(got[0].numpy(), expected[0])
        np.testing.assert_array_equal(got[1].float().numpy(), expected[1])
        np.testing.assert_array_equal(got[2].numpy(), expected[2])


def test_kernel_is_deterministic(extension):
    rng = np.random.default_rng(0)
    scores = torch.tensor(rng.integers(0, 2, (4, 5000)), dtype=torch.float16).cuda()
    hidden = torch.randn(4, 5000, 64, dtype=torch.float16).cuda()
    positions = torch.arange(5000).repeat(4, 1).cuda()
    candidates = torch.arange(100, 5000).repeat(4, 1).cuda()
    protected = torch.arange(100).repeat(4, 1).cuda()
    first = extension.topk_gather(scores, hidden, positions, candidates, protected, 1234)
    for _ in range(3):
        again = extension.topk_gather(scores, hidden, positions, candidates, protected, 1234)
        for a, b in zip(first, again, strict=True):
            assert torch.equal(a, b)
