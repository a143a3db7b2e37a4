"""Greedy answering: a prompt's embeddings in, token ids and text out, stopping at the end of the turn."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from .generation import GenerationResult, greedy_steps


@dataclass
class Answer:
    """token_ids:    generated ids, the end-of-turn id included when it came.
    text:         the detokenised answer (up to the end of the turn, special tokens skipped).
    kept:         layer -> kept original indices of the prompt (its one row).
    first_logits: [V] fp32, the prefill's logits.
    seconds:      stage -> seconds (prefill, decode, plus the front end's stages)."""

    token_ids: list[int]
    text: str
    kept: dict[int, list[int]]
    n_tokens: int
    first_logits: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)

    def as_generation(self) -> GenerationResult:
        """This answer as the one-row result every `run` reports, so both write one JSON schema."""
        return GenerationResult(self.n_tokens, {layer: [rows] for layer, rows in self.kept.items()},
                                [self.token_ids], self.first_logits[None], seconds=self.seconds)

    def to_json(self) -> dict:
        """`GenerationResult.to_json` plus `text`, and `token_ids`: `tokens[0]` under the name media
        runs used before, kept one release for scripts that read it."""
        return {**self.as_generation().to_json(), "text": self.text, "token_ids": self.token_ids}


def batch_positions(positions) -> torch.Tensor | None:
    """One prompt's position ids as a batch of one: [N] -> [1, N], M-RoPE's [3, N] -> [3, 1, N]; None stays."""
    if positions is None:
        return None
    positions = torch.as_tensor(positions, dtype=torch.int64)
    return positions[None] if positions.dim() == 1 else positions[:, None]


def stream_answer(backend, inputs_embeds: torch.Tensor, max_new_tokens: int, stop_ids,
                  timings: dict[str, float] | None = None, on_prefill=None,
                  cancelled=lambda: False, positions=None) -> Iterator[int]:
    """Yield greedy token ids of one prompt ([1, N, D]) until a stop id (yielded too) or `max_new_tokens`.

    timings: filled with `prefill` and `decode` seconds. on_prefill(PrefillOutput): called once.
    cancelled: asked after each token; True ends the stream (a served request whose client left).
    positions: the prompt's position ids where they are not 0..N-1 (`Prompt.positions`: [3, N] for M-RoPE).
    """
    timings = {} if timings is None else timings
    started = time.perf_counter()
    position_ids = batch_positions(positions)
    if position_ids is None:
        prefill = backend.prefill(inputs_embeds, max_new_tokens=max_new_tokens)
    else:
        prefill = backend.prefill(inputs_embeds, max_new_tokens=max_new_tokens, position_ids=position_ids)
    timings["prefill"] = time.perf_counter() - started
    if on_prefill is not None:
        on_prefill(prefill)
    stops = set(stop_ids)
    started = time.perf_counter()
    for next_ids in greedy_steps(backend, prefill, max_new_tokens):
        token = int(next_ids[0])
        yield token
        if token in stops or cancelled():
            break
    timings["decode"] = time.perf_counter() - started


def answer_pieces(backend, inputs_embeds: torch.Tensor, max_new_tokens: int, tokenizer, stop_ids, positions=None,
                  pieces: bool = True) -> Iterator[str | Answer]:
    """`stream_answer`'s tokens as text: with `pieces`, the new text after each token (a character split
    across tokens is held back until whole, so the pieces join to the answer's text); last, the Answer."""
    from ..text.text_pieces import new_text
    from ..text.tokenizer import decode_text

    timings, kept, logits, tokens, sent = {}, {}, [], [], ""

    def keep(prefill):
        kept.update({layer: idx[0].cpu().tolist() for layer, idx in prefill.kept.items()})
        logits.append(prefill.logits[0].float().cpu().numpy())

    for token in stream_answer(backend, inputs_embeds, max_new_tokens, stop_ids, timings, keep, positions=positions):
        tokens.append(token)
        if pieces:
            piece, sent = new_text(decode_text(tokenizer, tokens, stop_ids), sent)
            yield piece
    text = decode_text(tokenizer, tokens, stop_ids)
    if pieces:
        yield new_text(text, sent, final=True)[0]
    yield Answer(tokens, text, kept, inputs_embeds.shape[1], logits[0], timings)


def answer(backend, inputs_embeds: torch.Tensor, max_new_tokens: int, tokenizer, stop_ids, positions=None) -> Answer:
    """Every token of `stream_answer`, then the text."""
    *_, result = answer_pieces(backend, inputs_embeds, max_new_tokens, tokenizer, stop_ids, positions, pieces=False)
    return result
