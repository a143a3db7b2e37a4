"""What a prompt too long for its engine or model is told: a rebuild only where the user can do one."""

from __future__ import annotations

from fastav_export.runtime.token_limit import TokenLimit


def test_an_engine_user_may_rebuild_and_a_served_client_may_not():
    assert "fastav-export build --max-tokens 300" in TokenLimit.of_engine(256).refusal(300)
    client = TokenLimit.of_engine(256, for_client=True).refusal(300)
    assert "send a shorter clip" in client and "build" not in client and "--" not in client


def test_the_reference_suggests_fewer_new_tokens_only_where_they_would_make_room():
    limit = TokenLimit.of_model(positions=400, new_tokens=100)
    assert limit.tokens == 300
    assert "--max-new-tokens 50 or fewer" in limit.refusal(350)
    assert "--max-new-tokens" not in limit.refusal(400).split(":")[-1]  # no room for even one token
