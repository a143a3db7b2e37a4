"""Property: any preset file (`build --preset`, `run --preset`) is accepted or refused in one FastAVError line."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from fastav_export.contract.preset import (
    PRESET_FORMAT,
    PRESET_VERSION,
    PresetTarget,
    parse_preset,
    preset_json,
)
from fastav_export.contract.pruning_config import PruningConfig
from fastav_export.models import get_model_spec

from .contract import FUZZ, accepts_or_refuses, json_values

SETTINGS = ["global_layer", "fine_ratio", "alpha", "global_policy", "global_budget", "cutoff", "keep_audio",
            "keep_frames", "rollout_queries", "bogus"]
pruning = st.dictionaries(st.sampled_from(SETTINGS), json_values, max_size=5)
SPECS = [get_model_spec(name) for name in ("videollama2-tiny", "video-salmonn2-tiny", "videollama2")]
TARGETS = [PresetTarget.of(spec.name, spec.family, spec.default_layout(), spec.dims.num_layers) for spec in SPECS]
targets = st.one_of(st.sampled_from([t.to_json() for t in TARGETS]), json_values, st.fixed_dictionaries({
    "model": st.one_of(st.sampled_from([t.model for t in TARGETS]), json_values),
    "family": st.one_of(st.none(), st.sampled_from(["videollama2", "video-salmonn2"]), json_values),
    "layout": st.one_of(st.sampled_from(["blocks", "interleaved"]), json_values),
    "num_layers": st.one_of(st.sampled_from([6, 28]), json_values),
    "media_tokens": st.one_of(st.integers(0, 10**5), json_values)}))
documents = st.fixed_dictionaries({}, optional={
    "format": st.one_of(st.just(PRESET_FORMAT), json_values),
    # bool and float forms of the version: `true` is 1 and `2.0` is 2 to Python, neither to a preset
    "format_version": st.one_of(st.just(PRESET_VERSION), st.sampled_from([True, False, 1, float(PRESET_VERSION)]),
                                json_values),
    "target": targets,
    "pruning": st.one_of(pruning, json_values),
    "provenance": json_values,
})


@FUZZ
@given(document=st.one_of(documents, json_values), raw=st.binary(max_size=30), use_raw=st.booleans(),
       applied_to=st.one_of(st.none(), st.sampled_from(TARGETS)))
def test_any_preset_file(document, raw, use_raw, applied_to):
    data = raw if use_raw else json.dumps(document).encode()
    preset = accepts_or_refuses(lambda: parse_preset(data, "--preset p.json", 6, applied_to))
    if preset is not None:
        assert preset.config.validate(6) is preset.config and len(preset.sha256) == 64
        assert type(document["format_version"]) is int and document["format_version"] == PRESET_VERSION
        if applied_to is not None:  # never applied across layout kinds
            assert preset.target.layout == applied_to.layout
        assert preset.warning is None or "\n" not in preset.warning


def test_a_written_preset_reads_back():
    config = PruningConfig(global_layer=3, cutoff=20, keep_audio=2)
    text = preset_json(config, {"calibrate": {"samples": ["a.npy"]}}, TARGETS[0])
    preset = parse_preset(text.encode(), "p", 6, TARGETS[0])
    assert preset.config == config and preset.provenance == {"calibrate": {"samples": ["a.npy"]}}
    assert preset.target == TARGETS[0] and preset.warning is None
