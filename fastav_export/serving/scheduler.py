"""Continuous batching for a served engine: requests join the decode batch at the next step and leave when done.

One thread owns the decoder. Between decode steps it admits waiting requests in arrival
order: each is prefilled alone (its own layout, prompt and pruning), gives its first token
from the prefill's logits, and joins the `RaggedDecodeBatch`; then one step decodes every
row (TensorRT-LLM calls this in-flight batching). A row leaves at its stop id, at its
`max_new_tokens`, or as soon as its client cancels, which frees its slot.

Admission is bounded by a KV memory budget. A request's KV size is known before its prefill,
from its layout and pruning (per layer: the tokens that layer keeps, plus the generation
budget). The batch stores every row at the longest row's length per layer
(`RaggedDecodeBatch.bytes_with`), so a request is admitted when the batch with it fits the
budget. A request that could not fit even alone is refused at once; the others wait in a
bounded queue, and a request that finds the queue full is refused as "server busy".

Media requests are decoded and encoded by the caller (Triton's `execute`, another thread),
never inside this loop: the loop only embeds the prompt's text rows, prefills and decodes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch

from ..closing import Closing
from ..contract.kv_buffers import request_kv_capacities
from ..contract.schedule import make_schedule
from ..errors import FastAVError
from ..runtime.answer import batch_positions
from ..runtime.ragged_batch import BatchRow, RaggedDecodeBatch
from .client import BUSY
from .request import ServingRequest

log = logging.getLogger("fastav_export")
MIB = 1 << 20


class ServerBusy(FastAVError):
    """The queue of waiting requests is full: the client may retry later."""


class Cancelled(Exception):
    """The client cancelled the request (or left) before it finished."""


class RequestSink(Protocol):
    """Where a request's results go (Triton's response sender, or a test's list)."""

    def token(self, token_id: int) -> None: ...

    def finish(self, stats: "RequestStats") -> None: ...

    def fail(self, error: BaseException) -> None: ...

    def cancelled(self) -> bool: ...


@dataclass
class RequestStats:
    """queue_seconds: from arrival to the start of its prefill. batch_size: the most rows that
    decoded together in any of its steps (1 when it never shared a step). tokens: ids generated."""

    queue_seconds: float = 0.0
    batch_size: int = 1
    tokens: list[int] = field(default_factory=list)


@dataclass(eq=False)
class _Waiting:
    request: ServingRequest
    sink: RequestSink
    capacities: list[int]
    arrived: float


@dataclass(eq=False)
class _Decoding:
    request: ServingRequest
    sink: RequestSink
    stats: RequestStats
    last_token: int


class ContinuousBatcher(Closing):
    """engine: a `ServedEngine`. kv_budget_mib: the KV memory the batch may hold. max_queue: the
    requests that may wait for room (beyond it: `ServerBusy`)."""

    def __init__(self, engine, kv_budget_mib: float, max_queue: int, idle_wait: float = 0.5):
        if kv_budget_mib <= 0 or max_queue < 0:
            raise ValueError("the KV budget must be positive and the queue length non-negative")
        self.engine, self.budget, self.max_queue = engine, int(kv_budget_mib * MIB), max_queue
        self.batch = RaggedDecodeBatch(engine.manifest, engine.graphs, engine.manifest.global_layer,
                                       max_bytes=self.budget)
        self._waiting: deque[_Waiting] = deque()
        self._rows: dict[BatchRow, _Decoding] = {}
        self._wake = threading.Condition()
        self._stopping = False
        self._idle_wait = idle_wait
        self._thread = threading.Thread(target=self._loop, name="fastav-batcher", daemon=True)
        self._thread.start()

    # ---- admission ------------------------------------------------------------------
    def kv_capacities(self, request: ServingRequest) -> list[int]:
        """Per layer, the KV entries the request needs: the tokens the layer keeps plus its budget."""
        schedule = make_schedule(request.layout, request.config, self.engine.manifest.dims.num_layers)
        return request_kv_capacities(schedule.tokens, request.max_new_tokens)

    def kv_bytes(self, request: ServingRequest) -> int:
        """The request's own pruned KV size in bytes."""
        return sum(self.kv_capacities(request)) * self.batch.entry_bytes()

    def submit(self, request: ServingRequest, sink: RequestSink) -> None:
        """Queue `request`; its tokens and end go to `sink` from the batching thread.

        Raises FastAVError when the request can never fit the budget, ServerBusy when the queue is full."""
        capacities = self.kv_capacities(request)
        need = sum(capacities) * self.batch.entry_bytes()
        if need > self.budget:
            raise FastAVError(f"the request needs {need / MIB:.1f} MiB of KV cache and the server's budget is "
                              f"{self.budget / MIB:.1f} MiB: send a shorter clip, stronger pruning or a smaller "
                              "max_new_tokens, or raise the model's kv_budget_mib")
        with self._wake:
            if self._stopping:
                raise FastAVError("the model is unloading")
            if len(self._waiting) >= self.max_queue and (self._waiting or self.batch.rows):
                raise ServerBusy(f"{BUSY}: {len(self._waiting)} requests are already waiting for KV room; "
                                 "retry later")
            self._waiting.append(_Waiting(request, sink, capacities, time.perf_counter()))
            self._wake.notify()

    def _next_admissible(self) -> _Waiting | None:
        """The head of the queue when the batch has room for it (arrival order: nobody overtakes)."""
        with self._wake:
            while self._waiting and self._waiting[0].sink.cancelled():
                waiting = self._waiting.popleft()
                waiting.sink.fail(Cancelled("the request was cancelled while it waited"))
            if not self._waiting:
                return None
            head = self._waiting[0]
            if self.batch.rows and self.batch.bytes_with(head.capacities) > self.budget:
                return None
            return self._waiting.popleft()

    # ---- the loop -------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and not self._waiting and not self.batch.rows:
                    self._wake.wait(self._idle_wait)
                if self._stopping:
                    return
            while (waiting := self._next_admissible()) is not None:
                self._guarded(waiting.sink, lambda: self._start(waiting))
            if self.batch.rows:
                self._guarded(None, self._step)

    def _guarded(self, sink: RequestSink | None, work) -> None:
        """Run `work`; a failure ends the requests it concerns (`sink`, or every row), never the loop."""
        try:
            work()
        except Exception as exc:  # noqa: BLE001  one request's failure is reported to it
            if sink is not None:
                sink.fail(exc)
                return
            log.error("a decode step failed: %s: %s", type(exc).__name__, exc)
            for row, decoding in list(self._rows.items()):
                self._leave(row)
                decoding.sink.fail(exc)

    def _start(self, waiting: _Waiting) -> None:
        """Prefill one request alone; its first token; it joins the batch unless already done."""
        request, sink = waiting.request, waiting.sink
        stats = RequestStats(queue_seconds=time.perf_counter() - waiting.arrived)
        pipeline = self.engine.pipeline(request.layout, request.config)
        embeds = torch.from_numpy(self.engine.inputs_embeds(request, pipeline))
        extra = {} if request.positions is None else {"position_ids": batch_positions(request.positions)}
        prefill = pipeline.prefill(embeds, max_new_tokens=request.max_new_tokens, **extra)
        state = pipeline.hand_over()
        decoding = _Decoding(request, sink, stats, int(prefill.logits[0].argmax()))
        end = self._emit(decoding)
        if end is None:
            self._rows[self.batch.join(state)] = decoding
        else:
            end()

    def _step(self) -> None:
        rows = len(self.batch.rows)
        logits = self.batch.step({row: decoding.last_token for row, decoding in self._rows.items()})
        for row, row_logits in logits.items():
            decoding = self._rows[row]
            decoding.stats.batch_size = max(decoding.stats.batch_size, rows)
            decoding.last_token = int(row_logits.argmax())
            end = self._emit(decoding)
            if end is not None:
                self._leave(row)  # the slot is free before the client hears of the end
                end()

    def _emit(self, decoding: _Decoding) -> Callable[[], None] | None:
        """Send the row's newest token. When the request is over, the call that tells its sink so
        (the caller frees the row first); None while it goes on."""
        token, stats, request, sink = decoding.last_token, decoding.stats, decoding.request, decoding.sink
        stats.tokens.append(token)
        sink.token(token)
        if sink.cancelled():
            cancelled = Cancelled(f"request cancelled after {len(stats.tokens)} of {request.max_new_tokens} tokens")
            return lambda: sink.fail(cancelled)
        if token in request.stop_ids or len(stats.tokens) >= request.max_new_tokens:
            return lambda: sink.finish(stats)
        return None

    def _leave(self, row: BatchRow) -> None:
        del self._rows[row]
        self.batch.leave(row)

    # ---- lifetime -------------------------------------------------------------------
    def close(self) -> None:
        """Stop the loop; every waiting or decoding request is told the model is unloading."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join()
        unloading = FastAVError("the model is unloading")
        for waiting in self._waiting:
            waiting.sink.fail(unloading)
        self._waiting.clear()
        for row, decoding in list(self._rows.items()):
            self._leave(row)
            decoding.sink.fail(unloading)
        self.batch.close()
