"""Runtime objects release what they hold: `close()` and `with`, as Polygraphy's runners do."""

from __future__ import annotations

import pytest
import torch

from fastav_export.runtime.backends import open_engine_backend, open_graphs
from fastav_export.serving.engine import ServedEngine


def test_a_pipeline_that_opened_its_sessions_closes_them(tiny_engine):
    manifest = tiny_engine("videollama2-tiny")
    embeds = torch.randn(1, manifest.layout.n_tokens, manifest.dims.hidden_size)
    with open_engine_backend(manifest, manifest.layout, manifest.pruning) as pipeline:
        pipeline.decode(pipeline.prefill(embeds, max_new_tokens=2).logits.argmax(-1))
        assert pipeline.owns_graphs and pipeline.graphs.sessions
    assert not pipeline.graphs.sessions  # the sessions are gone
    with pytest.raises(RuntimeError, match="decode\\(\\) before prefill\\(\\)"):
        pipeline.decode(torch.zeros(1, dtype=torch.int64))  # and so are the KV buffers


def test_a_shared_runner_outlives_the_pipelines_over_it(tiny_engine):
    manifest = tiny_engine("videollama2-tiny")
    with open_graphs(manifest) as graphs:
        open_engine_backend(manifest, manifest.layout, manifest.pruning, graphs=graphs).close()
        assert graphs.sessions  # a pipeline closes only what it opened
    assert not graphs.sessions


def test_a_served_engine_closes_its_pipelines_and_sessions(tiny_engine):
    with ServedEngine(tiny_engine("videollama2-tiny")) as engine:
        pipeline = engine.default_backend
        assert engine.graphs.sessions
    assert not engine.graphs.sessions and pipeline.kv is None
