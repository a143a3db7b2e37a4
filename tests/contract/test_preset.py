"""Preset files name the model and layout they were calibrated for; a preset for another kind of model is refused."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from fastav_export.contract.preset import PRESET_FORMAT, PRESET_VERSION, PresetTarget, parse_preset, preset_json
from fastav_export.contract.pruning_config import PruningConfig
from fastav_export.errors import FastAVError
from fastav_export.models import get_model_spec

VL2 = get_model_spec("videollama2-tiny")
SALMONN = get_model_spec("video-salmonn2-tiny")


def target(spec, layout=None) -> PresetTarget:
    return PresetTarget.of(spec.name, spec.family, layout or spec.default_layout(), spec.dims.num_layers)


def preset_bytes(spec, config=None, **changes) -> bytes:
    document = json.loads(preset_json(config or replace(spec.preset, global_layer=3), {}, target(spec)))
    document.update(changes)
    return json.dumps(document).encode()


def test_the_layout_kinds_of_the_two_families():
    assert target(VL2).layout == "blocks" and target(SALMONN).layout == "interleaved"


def test_a_preset_reads_back_with_its_target():
    preset = parse_preset(preset_bytes(VL2), "p.json", 6, target(VL2))
    assert preset.target == target(VL2) and preset.warning is None and preset.config.cutoff == VL2.preset.cutoff


@pytest.mark.parametrize("source,destination", [(VL2, SALMONN), (SALMONN, VL2)])
def test_a_preset_of_the_other_layout_kind_is_refused(source, destination):
    with pytest.raises(FastAVError, match=f"calibrated for {source.name}") as err:
        parse_preset(preset_bytes(source), "--preset p.json", 6, target(destination))
    assert "\n" not in str(err.value) and "calibrate" in str(err.value)


def test_a_preset_of_another_family_is_refused_even_on_the_same_layout_kind():
    other = replace(target(VL2), model="video-salmonn2", family="video-salmonn2")
    with pytest.raises(FastAVError, match="family videollama2.*video-salmonn2"):
        parse_preset(preset_bytes(VL2), "--preset p.json", 6, other)


def test_only_a_different_size_gives_a_warning():
    full = get_model_spec("videollama2")
    bigger = PresetTarget.of(full.name, full.family, full.default_layout(), full.dims.num_layers)
    preset = parse_preset(preset_bytes(VL2), "--preset p.json", 28, bigger)
    assert "videollama2-tiny" in preset.warning and "videollama2" in preset.warning
    assert "\n" not in preset.warning


def test_clip_lengths_do_not_warn_for_a_frame_rule():
    """A frame rule means the same on any clip length: a longer clip's token count is no mismatch."""
    from fastav_export.models.families.video_salmonn2.spec import TINY_INTERLEAVE

    longer = TINY_INTERLEAVE.layout_for_duration(6.0, 6, 6)
    preset = parse_preset(preset_bytes(SALMONN), "p.json", 6, target(SALMONN, longer))
    assert preset.warning is None


def test_a_cutoff_rule_on_another_token_count_warns():
    from fastav_export.contract.layout import Segment, TokenLayout

    shorter = TokenLayout((Segment("text", 3), Segment("video", 20), Segment("audio", 10), Segment("text", 3)))
    preset = parse_preset(preset_bytes(VL2), "p.json", 6, target(VL2, shorter))
    assert "positions" in preset.warning


@pytest.mark.parametrize("changes,words", [
    ({"format_version": True}, "format_version"), ({"format_version": float(PRESET_VERSION)}, "format_version"),
    ({"format_version": 1}, "preset format 1"), ({"format": ["x"]}, "not a fastav-export preset"),
    ({"target": None}, "target"), ({"target": {"model": "x"}}, "target"),
    ({"extra": 1}, "unknown keys"),
])
def test_fields_are_checked_strictly(changes, words):
    with pytest.raises(FastAVError, match=words) as err:
        parse_preset(preset_bytes(VL2, **changes), "--preset p.json", 6, target(VL2))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("field,value", [("model", ""), ("model", 3), ("family", 1), ("layout", "mixed"),
                                         ("num_layers", True), ("num_layers", 0), ("media_tokens", 2.0), ("bogus", 1)])
def test_target_fields_are_checked_strictly(field, value):
    document = json.loads(preset_bytes(VL2))
    document["target"][field] = value
    with pytest.raises(FastAVError, match="target"):
        parse_preset(json.dumps(document).encode(), "--preset p.json", 6, target(VL2))


def test_a_rollout_preset_keeps_its_count():
    config = PruningConfig(global_layer=3, global_policy="rollout", global_budget=1)
    preset = parse_preset(preset_bytes(VL2, config), "p.json", 6, target(VL2))
    assert preset.config.global_budget == 1 and type(preset.config.global_budget) is int
    assert PRESET_FORMAT == "fastav-preset"
