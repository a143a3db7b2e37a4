"""TopKGather: the ONNX function (run by ONNX Runtime and onnx.reference) equals the numpy reference."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx.reference import ReferenceEvaluator

from fastav_export.export.topk_gather import (
    DOMAIN,
    PLUGIN_NAMESPACE,
    PLUGIN_VERSION,
    topk_gather_model,
    topk_gather_reference,
)

WIDTH = 4


@pytest.fixture(scope="module")
def runners():
    model = topk_gather_model(WIDTH)
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session, ReferenceEvaluator(model)


def _case(rng, batch, n, n_candidates, n_protected, k, scores=None):
    perm = np.stack([rng.permutation(n) for _ in range(batch)])
    feeds = {
        "scores": rng.standard_normal((batch, n)).astype(np.float32) if scores is None else scores,
        "hidden_states": rng.standard_normal((batch, n, WIDTH)).astype(np.float32),
        "position_ids": np.tile(np.arange(n, dtype=np.int64) * 3 + 7, (batch, 1)),
        "candidates": np.sort(perm[:, :n_candidates], axis=1).astype(np.int64),
        "protected": np.sort(perm[:, n_candidates:n_candidates + n_protected], axis=1).astype(np.int64),
        "keep": np.zeros(k, np.int64),
    }
    return feeds


CASES = {
    "random": dict(batch=2, n=12, n_candidates=8, n_protected=4, k=5),
    "some-dropped-by-rule": dict(batch=2, n=12, n_candidates=5, n_protected=3, k=2),
    "k=0": dict(batch=2, n=10, n_candidates=6, n_protected=4, k=0),
    "k=candidates": dict(batch=1, n=10, n_candidates=6, n_protected=4, k=6),
    "all-protected": dict(batch=2, n=9, n_candidates=0, n_protected=9, k=0),
    "no-protected": dict(batch=2, n=9, n_candidates=9, n_protected=0, k=4),
    "N=1": dict(batch=1, n=1, n_candidates=0, n_protected=1, k=0),
}


@pytest.mark.parametrize("ties", ["distinct", "ties", "all-equal"])
@pytest.mark.parametrize("case", CASES)
def test_function_reference_evaluator_and_numpy_agree(runners, case, ties):
    rng = np.random.default_rng(len(case) + len(ties))
    spec = CASES[case]
    scores = None
    if ties == "ties":
        scores = rng.integers(0, 3, (spec["batch"], spec["n"])).astype(np.float32)
    elif ties == "all-equal":
        scores = np.ones((spec["batch"], spec["n"]), np.float32)
    feeds = _case(rng, scores=scores, **spec)
    session, evaluator = runners
    expected = topk_gather_reference(*(feeds[k] for k in ("scores", "hidden_states", "position_ids",
                                                           "candidates", "protected")), spec["k"])
    for got in (session.run(None, feeds), evaluator.run(None, feeds)):
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b)
    kept = expected[0]
    assert kept.shape == (spec["batch"], spec["n_protected"] + spec["k"])
    assert (np.diff(kept, axis=1) > 0).all()  # original order restored


def test_ties_keep_the_lower_index():
    scores = np.array([[1.0, 2.0, 2.0, 2.0, 0.5, 9.0]], np.float32)
    hidden = np.zeros((1, 6, WIDTH), np.float32)
    positions = np.arange(6)[None]
    kept, _, _ = topk_gather_reference(scores, hidden, positions, np.array([[0, 1, 2, 3, 4]]),
                                       np.array([[5]]), 2)
    assert kept.tolist() == [[1, 2, 5]]  # the 2.0 at index 3 loses the tie


def test_node_carries_the_plugin_mapping():
    model = topk_gather_model(WIDTH)
    (node,) = model.graph.node
    attrs = {a.name: a.s.decode() for a in node.attribute}
    assert node.domain == DOMAIN and node.op_type == "TopKGather"
    assert attrs == {"plugin_namespace": PLUGIN_NAMESPACE, "plugin_version": PLUGIN_VERSION}
    (function,) = model.functions
    assert (function.domain, function.name) == (DOMAIN, "TopKGather")
    assert {"TopK", "Gather", "GatherElements"} <= {n.op_type for n in function.node}
