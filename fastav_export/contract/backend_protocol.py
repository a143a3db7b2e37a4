"""What every backend offers, the PyTorch reference and the engine runtimes alike.

A backend has `prefill(inputs_embeds [B, N, D], max_new_tokens) -> PrefillOutput`,
`decode(token_ids [B]) -> logits [B, V]`, `schedule` (the tokens each layer keeps),
`device`, and `embedding_table()` ([V, D], what synthetic inputs draw text rows from).
The greedy loop (runtime/generation.py), `compare` and serving use nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from .schedule import PruningSchedule


@dataclass
class PrefillOutput:
    """What every backend's prefill returns."""

    logits: torch.Tensor  # [B, V] fp32, the last token's next-token logits
    kept: dict[int, torch.Tensor]  # layer K..L-1 -> [B, n_l] original indices, ascending


class DecoderBackend(Protocol):
    """The interface every backend implements (see the module docstring)."""

    name: str
    device: torch.device
    schedule: PruningSchedule

    def prefill(self, inputs_embeds: torch.Tensor, max_new_tokens: int) -> PrefillOutput: ...

    def decode(self, token_ids: torch.Tensor) -> torch.Tensor: ...

    def embedding_table(self) -> torch.Tensor: ...
