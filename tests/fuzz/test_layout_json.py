"""Property: any layout JSON (parsed value, file bytes) gives a TokenLayout or one FastAVError line."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from fastav_export.contract.layout import KINDS, TokenLayout

from .contract import FUZZ, accepts_or_refuses, json_values

# Mostly near-valid segments, so the checks after the first one are reached too.
values = st.one_of(json_values, st.integers(-2, 2**33), st.sampled_from([0, 1, 10**12, 10**23, 1e23, 2.5, True]))
segments = st.dictionaries(st.sampled_from(["kind", "length", "frame", "extra"]),
                           st.one_of(st.sampled_from(KINDS), values), min_size=1, max_size=4)
layouts = st.one_of(json_values, st.lists(segments, max_size=6))


@FUZZ
@given(layouts)
def test_any_json_value(data):
    layout = accepts_or_refuses(lambda: TokenLayout.from_json(data))
    if layout is not None:  # an accepted layout is usable
        assert layout.n_tokens == sum(s.length for s in layout.segments) and layout.to_json() == [
            s.to_json() for s in layout.segments]
        assert TokenLayout.from_json(json.loads(json.dumps(layout.to_json()))) == layout


@FUZZ
@given(st.one_of(st.binary(max_size=200), layouts.map(lambda v: json.dumps(v).encode())))
def test_any_file_content(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("layout") / "layout.json"
    path.write_bytes(content)
    accepts_or_refuses(lambda: TokenLayout.load(path))
