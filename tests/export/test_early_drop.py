"""Exact early drop: a layer that computes its output for the kept tokens only gives their exact rows.

Runs one post graph on ONNX Runtime twice on the same tokens: once keeping every token,
once with a fine cut inside the layer. The rows the cut keeps must equal the same rows
of the full output, and the KV entries of every token must be written either way.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastav_export.contract import graph_io
from fastav_export.runtime.ort.graphs import OrtGraphs

pytestmark = pytest.mark.slow  # exports every layer graph with and without its cut


@pytest.mark.parametrize("flavour", ["ort-contrib", "onnx-standard"])
def test_cut_rows_equal_the_uncut_layer_output(tiny_engine, flavour):
    manifest = tiny_engine("videollama2-tiny", flavour=flavour)
    graphs = OrtGraphs(manifest)
    layer, n, batch = manifest.global_layer, 12, 2
    dims = manifest.dims
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(batch, n, dims.hidden_size, generator=generator)
    positions = torch.arange(n).expand(batch, n).contiguous() * 3  # pruned positions are not contiguous

    def run(protected, candidates, keep: int):
        in_place = graph_io.IN_PLACE_KV[flavour]
        slots = n + 4 if in_place else 0
        past = [torch.zeros(batch, dims.num_kv_heads, slots, dims.head_size) for _ in range(2)]
        present = past if in_place else [torch.empty(batch, dims.num_kv_heads, n, dims.head_size) for _ in range(2)]
        kept = protected.shape[1] + keep
        outputs = {"layer_output": torch.empty(batch, kept, dims.hidden_size),
                   "kept_index": torch.empty(batch, kept, dtype=torch.int64),
                   "kept_position_ids": torch.empty(batch, kept, dtype=torch.int64),
                   "last_query_scores": torch.empty(batch, n), **dict(zip(graph_io.present(layer), present))}
        inputs = {"hidden_states": hidden, "position_ids": positions, "past_length": torch.zeros(batch, dtype=torch.int64),
                  **dict(zip(graph_io.past(layer), past)), "candidates": candidates.contiguous(),
                  "protected": protected.contiguous(), "keep": torch.zeros(keep, dtype=torch.int64)}
        graphs.run(graph_io.post(layer), inputs, outputs)
        return outputs

    everything = torch.arange(n).expand(batch, n)
    full = run(everything, everything[:, :0], 0)
    cut = run(everything[:, 8:], everything[:, :8], 3)  # 4 protected + the 3 best of 8 candidates
    assert cut["layer_output"].shape[1] == 7
    rows = cut["kept_index"]
    assert torch.equal(cut["kept_position_ids"], positions.gather(1, rows))
    expected = full["layer_output"].gather(1, rows[..., None].expand(-1, -1, dims.hidden_size))
    np.testing.assert_allclose(cut["layer_output"].numpy(), expected.numpy(), atol=1e-5, rtol=0)
    for name in graph_io.present(layer):  # every token's keys/values, cut or not
        torch.testing.assert_close(cut[name][:, :, :n], full[name][:, :, :n])
