"""Property: any policy list (`eval --policies`, `pruning=`) is accepted or refused in one FastAVError line,
and an accepted one resolves to configs that validate."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fastav_export.contract.pruning_config import PruningConfig
from fastav_export.contract.pruning_policy import parse_policies

from .contract import FUZZ, accepts_or_refuses

LAYERS = 6
BASE = PruningConfig(cutoff=20, keep_audio=2).resolve(LAYERS)
words = st.sampled_from(["dense", "preset", "rollout", "positional", "keep_chunks", "cutoff", "keep_audio",
                         "keep_frames", "budget", "fine_ratio", "alpha", "rollout_queries", "last", "0.3", "30%",
                         "300", "1.0", "-1", "nan", "x", ""])
pieces = st.lists(st.tuples(words, st.sampled_from(["", ":", "=", ",", ", "]), words), max_size=6)
texts = st.one_of(st.text(max_size=40), pieces.map(lambda parts: "".join(a + sep + b for a, sep, b in parts)))


@FUZZ
@given(texts)
def test_any_policy_text_is_accepted_or_refused_in_one_line(text):
    def parse_and_resolve():
        return [policy.config(BASE, LAYERS) for policy in parse_policies(text)]

    resolved = accepts_or_refuses(parse_and_resolve)
    for config in resolved or []:
        config.validate(LAYERS)
