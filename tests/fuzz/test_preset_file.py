"""Property: any preset file (`build --preset`, `run --preset`) is accepted or refused in one FastAVError line."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from fastav_export.contract.preset import PRESET_FORMAT, PRESET_VERSION, parse_preset, preset_json
from fastav_export.contract.pruning_config import PruningConfig

from .contract import FUZZ, accepts_or_refuses, json_values

SETTINGS = ["global_layer", "fine_ratio", "alpha", "global_policy", "global_budget", "cutoff", "keep_audio",
            "keep_frames", "rollout_queries", "bogus"]
pruning = st.dictionaries(st.sampled_from(SETTINGS), json_values, max_size=5)
documents = st.fixed_dictionaries({}, optional={
    "format": st.one_of(st.just(PRESET_FORMAT), json_values),
    "format_version": st.one_of(st.just(PRESET_VERSION), json_values),
    "pruning": st.one_of(pruning, json_values),
    "provenance": json_values,
})


@FUZZ
@given(document=st.one_of(documents, json_values), raw=st.binary(max_size=30), use_raw=st.booleans())
def test_any_preset_file(document, raw, use_raw):
    data = raw if use_raw else json.dumps(document).encode()
    preset = accepts_or_refuses(lambda: parse_preset(data, "--preset p.json", 6))
    if preset is not None:
        assert preset.config.validate(6) is preset.config and len(preset.sha256) == 64


def test_a_written_preset_reads_back():
    config = PruningConfig(global_layer=3, cutoff=20, keep_audio=2)
    preset = parse_preset(preset_json(config, {"calibrate": {"samples": ["a.npy"]}}).encode(), "p", 6)
    assert preset.config == config and preset.provenance == {"calibrate": {"samples": ["a.npy"]}}
