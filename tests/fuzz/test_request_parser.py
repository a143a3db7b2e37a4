"""Property: any set of Triton input tensors gives a validated request or one FastAVError line.

Inputs are drawn around a valid request (the tiny engine's layout, placeholders, vocab):
each named input is kept, dropped, or replaced by an array of another dtype and shape, or
by JSON bytes; the layout and pruning inputs get arbitrary JSON (and arbitrary bytes).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fastav_export.serving.request import parse_request

from ..serving.inputs import make_request
from .contract import FUZZ, accepts_or_refuses, json_values

PLACEHOLDER = -201
DTYPES = [np.int64, np.int32, np.uint8, np.float32, np.float16, np.float64, np.bool_]


@pytest.fixture(scope="module")
def manifest(tiny_engine):
    return tiny_engine("videollama2-tiny")


def arrays():
    return hnp.arrays(st.sampled_from(DTYPES), hnp.array_shapes(min_dims=0, max_dims=3, max_side=5))


def json_inputs():
    as_bytes = st.one_of(json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=40))
    return as_bytes.map(lambda b: np.frombuffer(b, np.uint8))


pruning_objects = st.dictionaries(
    st.sampled_from(["fine_ratio", "alpha", "global_policy", "global_budget", "cutoff", "keep_audio", "keep_frames",
                     "rollout_queries", "global_layer", "bogus"]),
    st.one_of(json_values, st.sampled_from(["rollout", "positional", "none", "all", "last", 0.5, 3])), max_size=4)


@FUZZ
@given(data=st.data())
def test_any_inputs(manifest, data):
    ids, mm = make_request(manifest, PLACEHOLDER, seed=data.draw(st.integers(0, 3)))
    inputs = {"input_ids": ids, "mm_embeds": mm}
    for name in ("input_ids", "mm_embeds"):
        choice = data.draw(st.sampled_from(["keep", "keep", "drop", "array"]))
        if choice == "drop":
            del inputs[name]
        elif choice == "array":
            inputs[name] = data.draw(arrays())
    for name, values in (("layout", json_inputs()),
                         ("pruning", st.one_of(json_inputs(), pruning_objects.map(
                             lambda p: np.frombuffer(json.dumps(p).encode(), np.uint8)))),
                         ("max_new_tokens", arrays()), ("fine_ratio", arrays())):
        if data.draw(st.booleans()):
            inputs[name] = data.draw(values)
    request = accepts_or_refuses(lambda: parse_request(inputs, manifest, PLACEHOLDER, 4))
    if request is not None:
        assert request.mm_embeds.shape == (int(request.multimodal.sum()), manifest.dims.hidden_size)
        assert request.input_ids.shape == (request.layout.n_tokens,) and np.isfinite(request.mm_embeds).all()
        assert 1 <= request.max_new_tokens <= manifest.max_new_tokens
