"""M-RoPE in the exportable layer modules: cos/sin and the cut's kept positions, against transformers.

(The exported thinker graphs themselves are checked in tests/runtime/test_thinker_pipeline.py,
which builds them once for both flavours.)
"""

from __future__ import annotations

import functools

import torch

from fastav_export.contract.positions import take_positions
from fastav_export.export.custom_ops import topk_gather
from fastav_export.export.layer_graphs import RotaryTable, cut_tokens
from fastav_export.models.families.qwen2_5_omni.thinker import ThinkerDecoder, tiny_thinker
from tests.thinker_prompts import thinker_prompt


@functools.cache
def _thinker():
    return tiny_thinker(0)


def test_rotary_table_equals_transformers_mrope_on_three_rows():
    thinker = _thinker()
    decoder = ThinkerDecoder(thinker)
    positions = thinker_prompt(thinker, batch=2).position_ids  # rows differ, positions non-contiguous
    table = RotaryTable(decoder.model.rotary_emb, decoder.config)
    x = torch.zeros(1, dtype=torch.float32)
    for dtype in (torch.float32, torch.float16):
        cos, sin = table(positions, dtype)
        expected_cos, expected_sin = decoder.model.rotary_emb(x.to(dtype), positions)
        assert cos.shape == (2, positions.shape[2], 1, 16)
        assert torch.equal(cos[:, :, 0], expected_cos) and torch.equal(sin[:, :, 0], expected_sin)


def test_a_cut_takes_the_kept_tokens_three_rows():
    generator = torch.Generator().manual_seed(0)
    batch, n = 2, 9
    scores = torch.rand(batch, n, generator=generator)
    hidden = torch.randn(batch, n, 4, generator=generator)
    positions = torch.randint(0, 50, (3, batch, n), generator=generator)
    candidates = torch.arange(1, 7).expand(batch, 6)
    protected = torch.tensor([0, 7, 8]).expand(batch, 3)
    keep = torch.zeros(2, dtype=torch.int64)
    index, kept_hidden, kept_positions = cut_tokens(scores, hidden, positions, candidates, protected, keep)
    one_row = topk_gather(scores, hidden, positions[0], candidates, protected, keep)
    assert torch.equal(index, one_row[0]) and torch.equal(kept_hidden, one_row[1])
    assert kept_positions.shape == (3, batch, 5)
    assert torch.equal(kept_positions, take_positions(positions, index))
    assert torch.equal(kept_positions[0], one_row[2])
