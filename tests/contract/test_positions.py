"""Position ids through the cuts: one row or three (M-RoPE)."""

from __future__ import annotations

import pytest
import torch

from fastav_export.contract.positions import check_positions, default_positions, next_positions, take_positions
from fastav_export.errors import FastAVError


def test_default_positions_count_from_zero_in_every_row():
    assert default_positions(2, 4).tolist() == [[0, 1, 2, 3]] * 2
    three = default_positions(2, 4, rows=3)
    assert three.shape == (3, 2, 4) and torch.equal(three[2], default_positions(2, 4))


def test_a_cut_takes_each_kept_tokens_rows_and_decoding_continues_after_the_last():
    rows = torch.tensor([[[0, 1, 5, 5, 9]], [[0, 1, 2, 3, 9]], [[0, 1, 3, 4, 9]]])  # [3, 1, 5]
    index = torch.tensor([[0, 2, 4]])
    kept = take_positions(rows, index)
    assert kept.tolist() == [[[0, 5, 9]], [[0, 2, 9]], [[0, 3, 9]]]
    assert next_positions(kept).tolist() == [[[10]], [[10]], [[10]]]
    assert take_positions(rows[0], index).tolist() == [[0, 5, 9]]
    assert next_positions(rows[0]).tolist() == [[10]]


@pytest.mark.parametrize("positions", [torch.zeros(2, 5, dtype=torch.int64), torch.zeros(3, 2, 4, dtype=torch.int64),
                                       torch.zeros(3, 2, 5)])
def test_positions_of_another_shape_or_type_are_one_line_errors(positions):
    with pytest.raises(FastAVError, match=r"expected integers \[3, B, N\]"):
        check_positions(positions, 3, 2, 5)
    check_positions(torch.zeros(3, 2, 5, dtype=torch.int64), 3, 2, 5)
