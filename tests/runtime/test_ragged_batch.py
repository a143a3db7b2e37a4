"""Rows of different requests decoding in one batch get exactly what they get alone.

Each request has its own layout, prompt length, pruning policy and generation length; rows
join mid-way and leave when done. Every row's kept sets and greedy tokens equal its
single-request run, and its logits agree within LOGITS_ATOL at every step, on both ONNX Runtime
flavours (per-row `seqlens_k` of GroupQueryAttention, a per-row mask on the opset-23 Attention),
for the Qwen2 families and the M-RoPE thinker (three position rows per row).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch

from fastav_export.contract.layout import Segment, TokenLayout
from fastav_export.contract.pruning_config import PruningConfig
from fastav_export.contract.synthetic_inputs import synthetic_embeds
from fastav_export.models import get_model_spec
from fastav_export.runtime.backends import open_engine_backend, open_graphs
from fastav_export.runtime.embedding import embedding_table
from fastav_export.runtime.ragged_batch import RaggedDecodeBatch
from tests.conftest import ENGINE_BACKENDS

pytestmark = pytest.mark.slow  # builds tiny engines in both flavours

LOGITS_ATOL = 1e-5  # a row batched vs the same row alone: the same graphs, other GEMM shapes

LAYOUTS = {
    "short": TokenLayout((Segment("text", 4), Segment("video", 16, 0), Segment("audio", 8), Segment("text", 3))),
    "interleaved": TokenLayout((Segment("text", 4), Segment("video", 12, 0), Segment("text", 3),
                                Segment("video", 12, 1), Segment("audio", 10), Segment("text", 5))),
    "ends-in-audio": TokenLayout((Segment("text", 6), Segment("video", 20, 0), Segment("audio", 14))),
}


@dataclass(frozen=True)
class RowCase:
    layout: str | None  # None: the model's default layout
    policy: str  # "positional", "rollout" or "dense"
    new_tokens: int
    joins_at: int  # the decode step before which it is prefilled and joins


ROWS = (RowCase(None, "positional", 7, 0), RowCase("interleaved", "rollout", 3, 0),
        RowCase("ends-in-audio", "dense", 6, 2), RowCase("short", "rollout", 5, 3), RowCase(None, "dense", 2, 3))


def _config(spec, policy: str, global_layer: int) -> PruningConfig:
    if policy == "dense":
        return replace(PruningConfig.dense(), global_layer=global_layer)
    return replace(spec.preset, global_policy=policy, global_layer=global_layer)


def _positions(layout: TokenLayout, rows: int, seed: int) -> torch.Tensor | None:
    """Position ids of one prompt as a batch of one; three distinct rows for an M-RoPE decoder."""
    if rows == 1:
        return None
    n = torch.arange(layout.n_tokens)
    return torch.stack((n + seed, n // 2 + seed, n % 5 + seed))[:, None]


@dataclass
class Request:
    case: RowCase
    layout: TokenLayout
    config: PruningConfig
    embeds: torch.Tensor
    positions: torch.Tensor | None


def _requests(manifest, model: str) -> list[Request]:
    spec = get_model_spec(model)
    table = embedding_table(manifest)
    requests = []
    for seed, case in enumerate(ROWS):
        layout = spec.default_layout() if case.layout is None else LAYOUTS[case.layout]
        requests.append(Request(case, layout, _config(spec, case.policy, manifest.global_layer),
                                synthetic_embeds(table, layout, 1, seed),
                                _positions(layout, manifest.dims.position_rows, seed)))
    return requests


def _prefill(pipeline, request: Request):
    extra = {} if request.positions is None else {"position_ids": request.positions}
    return pipeline.prefill(request.embeds, max_new_tokens=request.case.new_tokens, **extra)


def _alone(manifest, graphs, request: Request):
    """(kept, [logits [V] of the prefill and each decode step], tokens) of the request run by itself."""
    pipeline = open_engine_backend(manifest, request.layout, request.config, graphs=graphs,
                                   max_new_tokens=request.case.new_tokens)
    prefill = _prefill(pipeline, request)
    logits, tokens = [prefill.logits[0]], []
    for _ in range(request.case.new_tokens):
        tokens.append(int(logits[-1].argmax()))
        if len(tokens) < request.case.new_tokens:
            logits.append(pipeline.decode(torch.tensor([tokens[-1]]))[0])
    return prefill.kept, logits, tokens


def _batched(manifest, graphs, requests: list[Request]):
    """The same requests through one RaggedDecodeBatch, joining at their step and leaving when done."""
    batch = RaggedDecodeBatch(manifest, graphs, manifest.global_layer)
    results = {id(r): ([], []) for r in requests}  # logits, tokens
    kept, rows, sizes = {}, {}, []
    for step in range(max(r.case.joins_at + r.case.new_tokens for r in requests) + 1):
        for request in (r for r in requests if r.case.joins_at == step):
            pipeline = open_engine_backend(manifest, request.layout, request.config, graphs=graphs,
                                           max_new_tokens=request.case.new_tokens)
            prefill = _prefill(pipeline, request)
            kept[id(request)] = prefill.kept
            logits, tokens = results[id(request)]
            logits.append(prefill.logits[0])
            tokens.append(int(prefill.logits[0].argmax()))
            if request.case.new_tokens > 1:
                rows[batch.join(pipeline.hand_over())] = request
        if not batch.rows:
            continue
        sizes.append(len(batch.rows))
        out = batch.step({row: results[id(request)][1][-1] for row, request in rows.items()})
        for row, row_logits in out.items():
            logits, tokens = results[id(rows[row])]
            logits.append(row_logits)
            tokens.append(int(row_logits.argmax()))
            if len(tokens) == rows[row].case.new_tokens:
                batch.leave(row)
                del rows[row]
    assert batch.pool_bytes() == 0  # every row left: the pools are released
    return kept, results, sizes


@pytest.fixture(params=ENGINE_BACKENDS)
def backend_and_flavour(request):
    return request.param


@pytest.mark.parametrize("model", ["videollama2-tiny", "video-salmonn2-tiny", "qwen2.5-omni-tiny"])
def test_rows_batched_together_get_what_they_get_alone(tiny_engine, backend_and_flavour, model):
    backend, flavour = backend_and_flavour
    manifest = tiny_engine(model, backend=backend, flavour=flavour)
    graphs = open_graphs(manifest, backend)
    requests = _requests(manifest, model)
    kept, batched, sizes = _batched(manifest, graphs, requests)
    assert max(sizes) == 4 and min(sizes) < max(sizes)  # rows really shared steps, and the batch changed
    for request in requests:
        alone_kept, alone_logits, alone_tokens = _alone(manifest, graphs, request)
        logits, tokens = batched[id(request)]
        assert {layer: k.tolist() for layer, k in kept[id(request)].items()} == \
            {layer: k.tolist() for layer, k in alone_kept.items()}
        assert tokens == alone_tokens
        assert len(logits) == len(alone_logits)
        for got, want in zip(logits, alone_logits):
            np.testing.assert_allclose(got.float().cpu().numpy(), want.float().cpu().numpy(),
                                       atol=LOGITS_ATOL, rtol=0)


def test_the_pools_hold_each_layer_at_its_longest_row(tiny_engine):
    manifest = tiny_engine("videollama2-tiny")
    graphs = open_graphs(manifest, "ort")
    batch = RaggedDecodeBatch(manifest, graphs, manifest.global_layer)
    requests = _requests(manifest, "videollama2-tiny")[:2]
    capacities = []
    for request in requests:
        pipeline = open_engine_backend(manifest, request.layout, request.config, graphs=graphs,
                                       max_new_tokens=request.case.new_tokens)
        _prefill(pipeline, request)
        state = pipeline.hand_over()
        capacities.append([buffer.capacity for buffer in state.kv.buffers])
        expected = batch.bytes_with(capacities[-1])
        batch.join(state)
        assert batch.pool_bytes() == expected
    longest = np.max(capacities, axis=0)
    assert batch.pool_bytes() == 2 * int(longest.sum()) * batch.entry_bytes()
    with pytest.raises(ValueError, match="one token for every row"):
        batch.step({batch.rows[0]: 1})
    batch.close()
    assert batch.pool_bytes() == 0


def test_the_pools_grow_by_half_but_never_beyond_their_byte_limit(tiny_engine):
    """Slots grow ahead of need (a re-size copies every row), up to `max_bytes`; past it, exactly."""
    manifest = tiny_engine("videollama2-tiny")
    graphs = open_graphs(manifest, "ort")
    request = _requests(manifest, "videollama2-tiny")[0]
    pipeline = open_engine_backend(manifest, request.layout, request.config, graphs=graphs,
                                   max_new_tokens=request.case.new_tokens)

    def prefilled():
        _prefill(pipeline, request)
        return pipeline.hand_over()

    row_bytes = RaggedDecodeBatch(manifest, graphs, manifest.global_layer).bytes_with(
        [buffer.capacity for buffer in prefilled().kv.buffers])
    unlimited = RaggedDecodeBatch(manifest, graphs, manifest.global_layer)
    limited = RaggedDecodeBatch(manifest, graphs, manifest.global_layer, max_bytes=5 * row_bytes)
    slots = []
    for _ in range(5):
        unlimited.join(prefilled())
        limited.join(prefilled())
        slots.append((unlimited.slots, limited.slots))
    assert slots == [(1, 1), (2, 2), (3, 3), (4, 4), (6, 5)]  # 4 + 4 // 2 = 6 slots; the limit holds 5
    assert limited.pool_bytes() <= 5 * row_bytes
