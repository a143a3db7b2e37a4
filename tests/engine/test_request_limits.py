"""What an engine cannot serve is one line whose advice works: a rebuild the model's positions allow,
and no rebuild advice at all for a served engine's clients, who cannot rebuild it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from fastav_export.contract.layout import Segment, TokenLayout
from fastav_export.contract.pruning_config import PruningConfig
from fastav_export.engine.requests import check_request
from fastav_export.errors import FastAVError

POSITIONS = 1000


def _manifest(max_tokens=100, max_new_tokens=20, rollout=False):
    """The fields check_request reads, of an engine split at layer 3 of a 1,000-position model."""
    return SimpleNamespace(max_tokens=max_tokens, max_new_tokens=max_new_tokens, global_layer=3, rollout=rollout,
                           dims=SimpleNamespace(max_position_embeddings=POSITIONS))


def _layout(tokens: int) -> TokenLayout:
    return TokenLayout((Segment("text", 2), Segment("video", tokens - 3, frame=0), Segment("text", 1)))


def _message(manifest, tokens=50, config=None, max_new_tokens=None, **kwargs) -> str:
    config = config or PruningConfig(global_layer=3).resolve(6)
    with pytest.raises(FastAVError) as caught:
        check_request(manifest, _layout(tokens), config, max_new_tokens, **kwargs)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_a_longer_layout_suggests_a_rebuild_the_positions_allow():
    assert "`fastav-export build --max-tokens 300`" in _message(_manifest(), tokens=300)


def test_a_layout_beyond_the_positions_suggests_no_impossible_rebuild():
    message = _message(_manifest(), tokens=995)
    assert "--max-tokens 995" not in message and "1000 positions" in message, message


def test_more_new_tokens_than_the_positions_hold_suggest_no_impossible_rebuild():
    message = _message(_manifest(max_tokens=900), max_new_tokens=960)
    assert "--max-new-tokens 960" not in message and "at most 20" in message, message
    # a rebuild that fits: the engine's prompt limit is lowered to make room
    message = _message(_manifest(max_tokens=900), tokens=50, max_new_tokens=300)
    assert "`fastav-export build --max-new-tokens 300 --max-tokens 700`" in message, message


def test_clients_of_a_served_engine_are_not_told_to_rebuild_it():
    def field(name):
        return name

    cases = [dict(tokens=300), dict(max_new_tokens=50),
             dict(config=PruningConfig(global_layer=2).resolve(6)),
             dict(config=PruningConfig(global_layer=3, global_policy="rollout").resolve(6))]
    for case in cases:
        message = _message(_manifest(), name=field, for_client=True, **case)
        assert "build" not in message, (case, message)
