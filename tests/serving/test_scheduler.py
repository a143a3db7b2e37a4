"""Continuous batching without Triton: requests of different prompts share decode steps, and each
gets exactly the tokens it gets alone; cancelled requests free their rows; admission keeps the
batch's KV within the budget, refuses what can never fit and answers a full queue "server busy"."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from fastav_export.errors import FastAVError
from fastav_export.serving.client import json_bytes
from fastav_export.serving.engine import ServedEngine
from fastav_export.serving.scheduler import MIB, Cancelled, ContinuousBatcher, ServerBusy

from .inputs import make_request

pytestmark = pytest.mark.slow  # builds the tiny engine

MODEL = "videollama2-tiny"
# Different pruning per request: the preset, rollout, none at all, a stronger fine cut.
PRUNING = [None, {"global_policy": "rollout"}, {"global_policy": "none", "fine_ratio": 0.0}, {"fine_ratio": 0.6}]


class Sink:
    """Records what the batcher reports; cancels itself after `cancel_after` tokens when given."""

    def __init__(self, cancel_after: int | None = None):
        self.tokens, self.stats, self.error = [], None, None
        self.cancel_after = cancel_after
        self.done = threading.Event()

    def token(self, token_id):
        self.tokens.append(token_id)

    def finish(self, stats):
        self.stats = stats
        self.done.set()

    def fail(self, error):
        self.error = error
        self.done.set()

    def cancelled(self):
        return self.cancel_after is not None and len(self.tokens) >= self.cancel_after


@pytest.fixture(scope="module")
def engine(tiny_engine):
    engine = ServedEngine.open(tiny_engine(MODEL).path, default_max_new_tokens=4)
    yield engine
    engine.close()


def _request(engine, seed: int, pruning=None, max_new_tokens: int = 6):
    ids, mm = make_request(engine.manifest, engine.placeholder_id, seed)
    inputs = {"input_ids": ids, "mm_embeds": mm, "max_new_tokens": np.array([max_new_tokens], np.int32)}
    if pruning is not None:
        inputs["pruning"] = json_bytes(pruning)
    return engine.parse(inputs)


def _wait(sinks, timeout=120):
    for sink in sinks:
        assert sink.done.wait(timeout), "a request never ended"


def test_requests_decoding_together_get_their_single_request_tokens(engine):
    requests = [_request(engine, seed, PRUNING[seed % len(PRUNING)], max_new_tokens=3 + seed % 5)
                for seed in range(12)]
    expected = [engine.generate(request)[0] for request in requests]
    batcher = ContinuousBatcher(engine, kv_budget_mib=64, max_queue=64)
    try:
        sinks = [Sink() for _ in requests]
        for request, sink in zip(requests, sinks):
            batcher.submit(request, sink)
        _wait(sinks)
    finally:
        batcher.close()
    assert [sink.error for sink in sinks] == [None] * len(sinks)
    assert [sink.tokens for sink in sinks] == expected
    assert [sink.stats.tokens for sink in sinks] == expected
    assert max(sink.stats.batch_size for sink in sinks) > 1  # rows shared decode steps
    assert all(sink.stats.queue_seconds >= 0 for sink in sinks)


def test_a_cancelled_request_leaves_the_batch_and_the_others_finish(engine):
    batcher = ContinuousBatcher(engine, kv_budget_mib=64, max_queue=8)
    try:
        cancelled, others = Sink(cancel_after=2), [Sink(), Sink()]
        batcher.submit(_request(engine, 0, max_new_tokens=8), cancelled)
        for seed, sink in enumerate(others, start=1):
            batcher.submit(_request(engine, seed, max_new_tokens=8), sink)
        _wait([cancelled, *others])
        assert isinstance(cancelled.error, Cancelled) and len(cancelled.tokens) == 2
        assert all(sink.error is None and len(sink.tokens) == 8 for sink in others)
        assert not batcher.batch.rows and batcher.batch.pool_bytes() == 0  # every slot freed
    finally:
        batcher.close()


def test_a_request_that_can_never_fit_the_budget_is_refused_at_once(engine):
    request = _request(engine, 0)
    batcher = ContinuousBatcher(engine, kv_budget_mib=64, max_queue=8)
    need = batcher.kv_bytes(request)
    batcher.close()
    batcher = ContinuousBatcher(engine, kv_budget_mib=need / MIB * 0.9, max_queue=8)
    try:
        with pytest.raises(FastAVError, match=r"needs .* MiB of KV cache and the server's budget is"):
            batcher.submit(request, Sink())
    finally:
        batcher.close()


def test_the_batch_stays_within_the_budget_and_a_full_queue_is_server_busy(engine):
    requests = [_request(engine, seed, max_new_tokens=8) for seed in range(4)]
    probe = ContinuousBatcher(engine, kv_budget_mib=64, max_queue=8)
    room_for_one = probe.kv_bytes(requests[0]) * 1.5 / MIB  # two rows never fit
    probe.close()
    batcher = ContinuousBatcher(engine, kv_budget_mib=room_for_one, max_queue=2)
    try:
        with batcher._wake:  # hold the loop so that the queue fills before anything is admitted
            first, second = Sink(), Sink()
            batcher.submit(requests[0], first)
            batcher.submit(requests[1], second)
            with pytest.raises(ServerBusy, match="server busy"):
                batcher.submit(requests[2], Sink())
        _wait([first, second])
        assert first.error is None and second.error is None
        assert first.stats.batch_size == second.stats.batch_size == 1  # never two rows at once
        assert second.stats.queue_seconds > 0
    finally:
        batcher.close()


def test_closing_tells_waiting_requests(engine):
    batcher = ContinuousBatcher(engine, kv_budget_mib=64, max_queue=8)
    with batcher._wake:
        sink = Sink()
        batcher.submit(_request(engine, 0), sink)
        batcher._stopping = True
    batcher.close()
    assert isinstance(sink.error, FastAVError) and "unloading" in str(sink.error)
