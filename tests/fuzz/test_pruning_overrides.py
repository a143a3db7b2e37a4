"""Property: any pruning override, from a request's JSON or from the command line, gives a valid
config or one FastAVError line (or argparse's one-line exit 2)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastav_export.cli import build_parser
from fastav_export.cli.options import pruning_config_from_args
from fastav_export.contract.pruning_config import (
    GLOBAL_POLICIES,
    ROLLOUT_QUERIES,
    PruningConfig,
)
from fastav_export.errors import FastAVError
from fastav_export.models import get_model_spec
from fastav_export.serving.request import request_config

from .contract import FUZZ, accepts_or_refuses, json_values

SPEC = get_model_spec("videollama2-tiny")
L = SPEC.dims.num_layers
FLAGS = ["--global-layer", "--fine-ratio", "--alpha", "--global-policy", "--global-budget", "--rollout-queries",
         "--cutoff", "--keep-audio", "--keep-frames"]
flag_values = st.one_of(st.text(max_size=8), st.integers(-5, 10**6).map(str), st.floats().map(repr),
                        st.sampled_from([*GLOBAL_POLICIES, *ROLLOUT_QUERIES, "nan", "inf", "-0", "1e400", "0.5"]))


def _valid(config: PruningConfig) -> None:
    assert config.validate(L) is config and 1 <= config.global_layer < L


@FUZZ
@given(st.one_of(json_values, st.dictionaries(st.sampled_from(
    ["fine_ratio", "alpha", "global_policy", "global_budget", "cutoff", "keep_audio", "keep_frames",
     "rollout_queries"]), json_values, max_size=4)), st.one_of(st.none(), st.floats(allow_nan=True)))
@pytest.mark.parametrize("policy", ["positional", "rollout"])
def test_request_overrides(policy, overrides, fine_ratio):
    base = PruningConfig(global_policy=policy).resolve(L)
    config = accepts_or_refuses(lambda: request_config(base, L, fine_ratio, json.dumps(overrides)))
    if config is not None:
        _valid(config)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(FLAGS), flag_values), max_size=4), st.booleans())
def test_command_line_overrides(pairs, no_prune):
    argv = ["flops", "--model", SPEC.name, *(x for pair in pairs for x in pair), *(["--no-prune"] if no_prune else [])]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse's one-line error
        assert exc.code == 2
        return
    config = accepts_or_refuses(lambda: pruning_config_from_args(args, SPEC, L))
    if config is not None:
        _valid(config)


ROLLOUT = PruningConfig(global_policy="rollout").resolve(L)


@pytest.mark.parametrize("budget,kept", [(1, 1), (300, 300), (0.3, 0.3), ("30%", 0.3), ("1", 1), ("0.3", 0.3)])
def test_a_request_budget_is_a_count_or_a_fraction(budget, kept):
    config = request_config(ROLLOUT, L, None, json.dumps({"global_budget": budget}))
    assert config.global_budget == kept and type(config.global_budget) is type(kept)


@pytest.mark.parametrize("budget,words", [(1.0, "could mean 1 candidate"), (2.0, "could mean"), (0.0, "could mean"),
                                          (True, "not a number"), ("1.0", "could mean"), ("100%", "every candidate"),
                                          (1.5, "above 1")])
def test_a_request_budget_that_reads_two_ways_is_refused(budget, words):
    with pytest.raises(FastAVError, match=words) as err:
        request_config(ROLLOUT, L, None, json.dumps({"global_budget": budget}))
    assert str(err.value).startswith("global_budget ")  # the request's field, not a CLI flag


@pytest.mark.parametrize("text", ["1.0", "2.", "0.0", "100%"])
def test_the_command_line_refuses_a_budget_that_reads_two_ways(text):
    args = build_parser().parse_args(["flops", "--model", SPEC.name, "--global-policy", "rollout",
                                      "--global-budget", text])
    with pytest.raises(FastAVError, match="--global-budget"):
        pruning_config_from_args(args, SPEC, L)
