"""Limits of one run, checked before anything is sized by its layout: the model's positions and memory."""

from __future__ import annotations

from ..errors import FastAVError
from .layout import TokenLayout


def check_layout_positions(layout: TokenLayout, dims, new_tokens: int = 0) -> None:
    """The layout (plus `new_tokens` to generate) must fit the model's positions; checked before
    anything is sized by the layout (a 10**12-token layout would otherwise allocate first)."""
    if layout.n_tokens + new_tokens > dims.max_position_embeddings:
        extra = f" + {new_tokens} new" if new_tokens else ""
        raise FastAVError(f"{layout.n_tokens} tokens{extra} exceed the model's {dims.max_position_embeddings} "
                          "positions: shorten the layout" + (" or --max-new-tokens" if new_tokens else ""))


def check_run_memory(layout, config, dims, batch: int, new_tokens: int, dtype_bytes: int,
                     synthetic: bool) -> None:
    """One line when a run of `batch` rows cannot fit in memory: the inputs (synthetic ones are
    drawn as noise and table rows, then combined), every layer's KV buffer sized for its
    tokens plus the generation, one layer's activations and the logits."""
    from ..user_io.memory import check_fits
    from .schedule import make_schedule

    schedule = make_schedule(layout, config, dims.num_layers)
    n, d = layout.n_tokens, dims.hidden_size
    inputs = batch * n * d * 4 * (3 if synthetic else 1)
    kv = sum(2 * batch * dims.num_kv_heads * (tokens + new_tokens) * dims.head_size * dtype_bytes
             for tokens in schedule.tokens)
    activations = batch * n * (4 * d + 2 * dims.intermediate_size) * 4
    logits = 2 * batch * dims.vocab_size * 4
    check_fits(inputs + kv + activations + logits, f"a batch of {batch} x {n} tokens (inputs, KV buffers, "
               "activations)", "use a smaller --batch, a shorter layout or fewer --max-new-tokens")
