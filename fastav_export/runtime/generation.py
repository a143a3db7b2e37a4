"""Greedy generation over any backend, and the result every backend reports.

A backend offers `prefill(inputs_embeds, max_new_tokens) -> PrefillOutput` and
`decode(token_ids) -> logits`; this loop is the same for all of them, so the JSON
written by `fastav-export run --json` has one schema whatever ran it (a media run's
`Answer` reports through `GenerationResult` too; docs/usage.md has the table).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..contract.backend_protocol import PrefillOutput


@dataclass
class GenerationResult:
    n_tokens: int
    kept: dict[int, list[list[int]]]  # layer -> per row, ascending original indices
    tokens: list[list[int]]  # per row, generated ids
    first_logits: np.ndarray  # [B, V] fp32
    flops_ratio: dict = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # stage -> seconds (prefill, decode, ...)

    def to_json(self) -> dict:
        """The keys every `run --json` has (the caller adds `layout`)."""
        return {
            "n_tokens": self.n_tokens,
            "kept": {str(layer): rows for layer, rows in sorted(self.kept.items())},
            "tokens": self.tokens,
            "logits": self.first_logits.tolist(),
            "flops_ratio": self.flops_ratio,
            "seconds": {stage: round(value, 6) for stage, value in self.seconds.items()},
        }

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json()) + "\n")


def greedy_steps(backend, prefill: PrefillOutput, max_new_tokens: int):
    """Yield the next token ids [B] of greedy decoding, one step at a time, after `prefill`.

    The first ids come from the prefill logits; each later step decodes the previous ids.
    Streaming (Triton) and `generate` share this loop.
    """
    logits = prefill.logits
    for step in range(max_new_tokens):
        next_ids = logits.argmax(dim=-1)
        yield next_ids
        if step + 1 < max_new_tokens:
            logits = backend.decode(next_ids)


def generate(backend, inputs_embeds: torch.Tensor, max_new_tokens: int) -> GenerationResult:
    """Greedy decoding: prefill, then `max_new_tokens - 1` decode steps (argmax each).

    inputs_embeds: [B, N, D]. The first token comes from the prefill logits.
    """
    n_tokens = inputs_embeds.shape[1]
    started = time.perf_counter()
    out = backend.prefill(inputs_embeds, max_new_tokens=max_new_tokens)
    first_logits = out.logits.float().cpu().numpy()
    prefilled = time.perf_counter()
    generated = [ids.cpu() for ids in greedy_steps(backend, out, max_new_tokens)]
    seconds = {"prefill": prefilled - started, "decode": time.perf_counter() - prefilled}
    tokens = torch.stack(generated, dim=1).tolist() if generated else [[] for _ in range(inputs_embeds.shape[0])]
    kept = {layer: idx.cpu().tolist() for layer, idx in out.kept.items()}
    return GenerationResult(n_tokens, kept, tokens, first_logits, seconds=seconds)
