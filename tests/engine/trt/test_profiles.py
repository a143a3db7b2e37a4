"""Optimisation profiles: every graph input covered, ranges from the limits, opt from the schedule."""

from __future__ import annotations

import pytest

from fastav_export.contract import graph_io
from fastav_export.contract.schedule import make_schedule
from fastav_export.engine.trt.profiles import (
    DECODE,
    PREFILL,
    Limits,
    graph_profiles,
    profiles_to_json,
)
from fastav_export.models import get_model_spec
from fastav_export.testing.models import TINY_MODELS

LIMITS = Limits(max_batch=4, max_tokens=128, max_new_tokens=20)


def _profiles(name, rollout=True):
    spec = get_model_spec(name)
    config = spec.preset.resolve(spec.dims.num_layers)
    schedule = make_schedule(spec.default_layout(), config, spec.dims.num_layers)
    return spec, schedule, graph_profiles(spec.dims, schedule, LIMITS, rollout)


@pytest.mark.parametrize("rollout", [True, False])
@pytest.mark.parametrize("name", TINY_MODELS)
def test_every_graph_input_has_a_range_in_both_profiles(name, rollout):
    _, schedule, profiles = _profiles(name, rollout)
    K, L = schedule.global_layer, schedule.num_layers
    inputs = {graph_io.EMBED: graph_io.embed_io()[0], graph_io.PRE: graph_io.pre_io(K, rollout)[0],
              **{graph_io.post(layer): graph_io.post_io(layer, layer == L - 1)[0] for layer in range(K, L)}}
    assert set(profiles) == set(inputs)
    for graph, names in inputs.items():
        assert len(profiles[graph]) == 2
        for profile in profiles[graph]:
            assert set(profile) == set(names), graph
            for shape in profile.values():
                assert len(shape.min) == len(shape.opt) == len(shape.max)
                assert all(lo <= opt <= hi for lo, opt, hi in zip(shape.min, shape.opt, shape.max, strict=True))


def test_prefill_takes_up_to_the_token_limit_with_an_empty_past():
    spec, schedule, profiles = _profiles("videollama2-tiny")
    D, Hkv, hd = spec.dims.hidden_size, spec.dims.num_kv_heads, spec.dims.head_size
    K = schedule.global_layer
    layer = K + 1
    post = profiles[graph_io.post(layer)][PREFILL]
    assert post["hidden_states"].min == (1, 1, D)
    assert post["hidden_states"].opt == (1, schedule.tokens[layer], D)
    assert post["hidden_states"].max == (4, 128, D)
    key = graph_io.past(layer)[0]
    assert post[key].min == (1, Hkv, 0, hd) and post[key].max == (4, Hkv, 0, hd)
    assert post["past_length"].min == (1,) and post["past_length"].max == (4,)  # one per row
    pre = profiles[graph_io.PRE][PREFILL]
    assert pre["inputs_embeds"].opt == (1, schedule.tokens[0], D)
    assert pre["rollout_weights"].max == (128,)


def test_decode_is_one_token_over_the_whole_buffer():
    spec, schedule, profiles = _profiles("video-salmonn2-tiny")
    Hkv, hd = spec.dims.num_kv_heads, spec.dims.head_size
    for layer in range(schedule.global_layer, schedule.num_layers):
        decode = profiles[graph_io.post(layer)][DECODE]
        assert decode["hidden_states"].min[1] == decode["hidden_states"].max[1] == 1
        key = decode[graph_io.past(layer)[0]]
        assert key.opt == (1, Hkv, schedule.tokens[layer] + 20, hd)  # n_l + T of the built layout
        assert key.max == (4, Hkv, 128 + 20, hd)  # any layout up to the limits
    assert profiles[graph_io.EMBED][DECODE]["input_ids"].max == (4, 1)
    assert profiles[graph_io.PRE][DECODE]["rollout_weights"].max == (1,)


def test_cuts_are_tuned_for_the_schedule_and_keep_one_token_in_decode():
    _, schedule, profiles = _profiles("videollama2-tiny")
    K = schedule.global_layer
    prefill, decode = profiles[graph_io.PRE]
    assert prefill["candidates"].opt == (1, schedule.candidates[K - 1])  # the global cut
    assert prefill["keep"].opt == (schedule.candidates[K],)
    assert prefill["keep"].min == (0,) and prefill["candidates"].min == (1, 0)  # k = 0 and no candidates
    fine = profiles[graph_io.post(K)][PREFILL]
    assert fine["keep"].opt == (schedule.candidates[K] - schedule.drops[K],)
    for graph in (graph_io.PRE, graph_io.post(K)):
        decode = profiles[graph][DECODE]
        assert decode["candidates"].max == (4, 0) and decode["protected"].min[1] == 1 and decode["keep"].max == (0,)
    assert "keep" not in profiles[graph_io.post(schedule.num_layers - 1)][PREFILL]  # the last layer has no cut


def test_profiles_are_written_as_plain_json():
    _, _, profiles = _profiles("videollama2-tiny")
    data = profiles_to_json(profiles)
    assert data[graph_io.EMBED][PREFILL]["input_ids"] == {"min": [1, 1], "opt": [1, 72], "max": [4, 128]}


def test_mrope_position_ids_get_the_rows_axis_in_both_profiles():
    from dataclasses import replace

    spec, schedule, one_row = _profiles("videollama2-tiny")
    dims = replace(spec.dims, mrope_section=(2, 3, 3))  # head size 16: 8 rotary frequencies
    three_rows = graph_profiles(dims, schedule, LIMITS, rollout=True)
    for graph in [graph_io.PRE, *(graph_io.post(layer) for layer in range(schedule.global_layer, 6))]:
        for before, after in zip(one_row[graph], three_rows[graph]):
            shape = after["position_ids"]
            assert (shape.min[0], shape.opt[0], shape.max[0]) == (3, 3, 3)
            assert (shape.min[1:], shape.opt[1:], shape.max[1:]) == (before["position_ids"].min,
                                                                      before["position_ids"].opt,
                                                                      before["position_ids"].max)
            assert {k: v for k, v in after.items() if k != "position_ids"} == \
                {k: v for k, v in before.items() if k != "position_ids"}
