"""Pruning policies named in text (`eval --policies`, `Engine.answer(pruning=...)`)."""

from __future__ import annotations

import json

import pytest

from fastav_export.contract.preset import PresetTarget, preset_json
from fastav_export.contract.pruning_config import PruningConfig
from fastav_export.contract.pruning_policy import parse_policies, parse_policy
from fastav_export.errors import FastAVError
from fastav_export.models import get_model_spec

LAYERS = 6
BASE = PruningConfig(global_policy="positional", cutoff=24, keep_audio=3).resolve(LAYERS)


def configs(text: str) -> dict[str, PruningConfig]:
    return {policy.name: policy.config(BASE, LAYERS) for policy in parse_policies(text)}


def test_a_list_names_each_policy_and_key_value_pieces_continue_the_one_before():
    found = configs("dense,preset,rollout:0.3,positional:cutoff=10,keep_audio=2,keep_chunks:2,rollout")
    assert list(found) == ["dense", "preset", "rollout:0.3", "positional:cutoff=10,keep_audio=2", "keep_chunks:2",
                           "rollout"]
    assert not found["dense"].prunes and found["dense"].global_layer == BASE.global_layer
    assert found["preset"] == BASE
    assert found["rollout:0.3"] == PruningConfig(global_layer=3, global_policy="rollout", global_budget=0.3,
                                                 cutoff=24, keep_audio=3)
    assert (found["positional:cutoff=10,keep_audio=2"].cutoff, found["positional:cutoff=10,keep_audio=2"].keep_audio
            ) == (10, 2)
    # keep_chunks keeps the chunk rule only: the preset's cutoff and audio head are off
    chunks = found["keep_chunks:2"]
    assert (chunks.global_policy, chunks.keep_frames, chunks.cutoff, chunks.keep_audio) == ("positional", 2, None, 0)
    assert found["rollout"].global_budget is None  # as many as the positional rule keeps


@pytest.mark.parametrize("text, budget", [("rollout:300", 300), ("rollout:30%", 0.3), ("rollout:budget=0.25", 0.25)])
def test_a_rollout_budget_is_a_count_or_a_fraction(text, budget):
    assert parse_policy(text).config(BASE, LAYERS).global_budget == budget


def test_general_settings_apply_to_any_policy_but_dense():
    config = parse_policy("rollout:0.2,fine_ratio=0.1,alpha=0.7,rollout_queries=last").config(BASE, LAYERS)
    assert (config.fine_ratio, config.alpha, config.rollout_queries) == (0.1, 0.7, "last")


def test_a_preset_file_policy_keeps_the_engines_split_layer(tmp_path):
    spec = get_model_spec("videollama2-tiny")
    target = PresetTarget.of(spec.name, spec.family, spec.default_layout(), spec.dims.num_layers)
    path = tmp_path / "preset.json"
    path.write_text(preset_json(PruningConfig(global_policy="positional", cutoff=7, global_layer=2).resolve(LAYERS),
                                {}, target))
    policy = parse_policy(f"preset:{path}")
    assert policy.kind == "file"
    config = policy.config(BASE, LAYERS, target)
    assert (config.cutoff, config.global_layer) == (7, BASE.global_layer)


@pytest.mark.parametrize("text, message", [
    ("", "no pruning policies"),
    ("dense,,rollout", "empty policy"),
    ("fastest", "unknown pruning policy 'fastest'"),
    ("keep_audio=3,dense", "continues no policy"),
    ("dense:1", "dense takes no settings"),
    ("rollout:0.1,0.2", "unknown pruning policy '0.2'"),
    ("positional:budget=3", "unknown setting 'budget' for positional"),
    ("positional:cutoff=1,cutoff=2", "sets cutoff twice"),
    ("keep_chunks:two", "is not a whole number"),
    ("rollout:1.0", "could mean 1 candidate"),
    ("rollout:fine_ratio=x", "is not a number"),
    ("rollout:rollout_queries=some", "is not one of"),
    ("dense,dense", "given twice"),
])
def test_bad_policies_are_refused_in_one_line(text, message):
    with pytest.raises(FastAVError, match=message) as caught:
        [policy.config(BASE, LAYERS) for policy in parse_policies(text)]
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("text, message", [
    ("rollout:fine_ratio=1.5", r"fine_ratio of policy 'rollout:fine_ratio=1.5' 1.5 is outside \[0, 1\)"),
    ("positional:cutoff=5,alpha=2", "alpha of policy"),
])
def test_values_out_of_range_name_the_policy(text, message):
    with pytest.raises(FastAVError, match=message):
        parse_policy(text).config(BASE, LAYERS)


def test_a_missing_preset_file_is_one_line(tmp_path):
    with pytest.raises(FastAVError, match="cannot read it"):
        parse_policy(f"preset:{tmp_path / 'none.json'}").config(BASE, LAYERS)


def test_policy_names_survive_json():
    """The names are the keys of summary.json: plain strings as written."""
    names = [policy.name for policy in parse_policies(" dense , rollout:0.3 ")]
    assert json.loads(json.dumps(names)) == ["dense", "rollout:0.3"]
