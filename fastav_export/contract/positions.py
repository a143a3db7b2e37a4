"""Position ids through the cuts: one row ([B, N]) or three with M-RoPE ([3, B, N]).

The rule (docs/semantics.md, "Inputs" and "KV cache and decoding"):

* position ids are `[B, N]` (one row, default 0..N-1) or, for a decoder with M-RoPE
  (Qwen2.5-Omni's thinker), `[3, B, N]`: the temporal, height and width rows that
  transformers' `get_rope_index` computes;
* a cut takes the kept tokens' rows (`take_positions`): a kept token keeps all of its
  original positions, never renumbered;
* decoding continues at the last kept token's position + 1 in every row (`next_positions`).
  The last token is never pruned, so this is the prompt's last position + 1 whatever was cut.
  For Qwen2.5-Omni it equals transformers' `cache_position + rope_deltas`: the prompt ends in
  text, whose three rows are equal and above every earlier position, and `rope_deltas` is
  max position + 1 - N.

The rows axis comes first, as in transformers; the token axis is always the last.
"""

from __future__ import annotations

import torch

from ..errors import FastAVError


def positions_shape(batch: int, n: int, rows: int = 1) -> tuple[int, ...]:
    """The shape of position ids: [B, n] (rows 1) or [rows, B, n] (M-RoPE)."""
    return (batch, n) if rows == 1 else (rows, batch, n)


def default_positions(batch: int, n: int, rows: int = 1, device=None) -> torch.Tensor:
    """0..n-1 for every row: [B, n] (rows 1) or [3, B, n] (rows 3), int64."""
    positions = torch.arange(n, device=device).unsqueeze(0).expand(batch, n)
    return positions if rows == 1 else positions.unsqueeze(0).expand(rows, batch, n)


def check_positions(positions: torch.Tensor, rows: int, batch: int, n: int) -> None:
    """One-line FastAVError unless `positions` is [B, n] (rows 1) or [3, B, n] (rows 3) of integers."""
    expected = (batch, n) if rows == 1 else (rows, batch, n)
    if tuple(positions.shape) != expected or positions.dtype.is_floating_point or positions.dtype == torch.bool:
        names = "[B, N]" if rows == 1 else "[3, B, N] (temporal, height, width: M-RoPE)"
        raise FastAVError(f"position_ids are {positions.dtype} {list(positions.shape)}, expected integers "
                          f"{names} = {list(expected)}")


def take_positions(positions: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The kept tokens' positions: [B, n] or [3, B, n] with index [B, m] -> [B, m] or [3, B, m]."""
    if positions.dim() == 2:
        return positions.gather(1, index)
    return positions.gather(2, index.unsqueeze(0).expand(positions.shape[0], -1, -1))


def next_positions(positions: torch.Tensor) -> torch.Tensor:
    """Where decoding continues: the last token's position + 1 in every row, [B, 1] or [3, B, 1]."""
    return positions[..., -1:] + 1
