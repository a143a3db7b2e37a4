"""TensorRT optimisation profiles of every engine graph, from the layout limits and the schedule.

Each graph gets two profiles (TensorRT picks one per execution context call):

    0 prefill: q new tokens with an empty past; q from 1 to the built token limit,
               optimised for n_l, the tokens the built layout's schedule gives layer l;
    1 decode:  one new token; the past is the layer's whole KV buffer, n_l + T
               entries for a request, up to max_tokens + max_new_tokens.

The limits are ranges, not the built layout's counts, because run-time overrides
(`--fine-ratio`, budgets, another layout up to `max_tokens`) change n_l. The cut
inputs inside the pre and post graphs (TopKGather's candidates, protected tokens and
kept count) are ranges up to the token limit in prefill; in decode every cut keeps its
one token (no candidates, one protected token). Position ids are [B, q], or [3, B, q] for an M-RoPE decoder
(`dims.position_rows`). Shapes are plain tuples here so this module, and its tests,
need no TensorRT.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...contract import graph_io
from ...contract.dims import DecoderDims
from ...contract.schedule import PruningSchedule

PREFILL, DECODE = 0, 1
PROFILE_NAMES = ("prefill", "decode")

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ShapeRange:
    min: Shape
    opt: Shape
    max: Shape

    def to_json(self) -> dict:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


@dataclass(frozen=True)
class Limits:
    """What the engine is built to serve: batch rows, prompt tokens, new tokens."""

    max_batch: int
    max_tokens: int
    max_new_tokens: int


def _span(lo: int, opt: int, hi: int) -> tuple[int, int, int]:
    """Clamp opt into [lo, hi] (a layout may prune a layer to fewer tokens than lo)."""
    return lo, min(max(opt, lo), hi), hi


def _ranges(shapes: dict[str, tuple]) -> dict[str, ShapeRange]:
    """{name: (dims as ints or (lo, opt, hi))} -> {name: ShapeRange}."""
    out = {}
    for name, dims in shapes.items():
        spans = [d if isinstance(d, tuple) else (d, d, d) for d in dims]
        out[name] = ShapeRange(*(tuple(span[i] for span in spans) for i in range(3)))
    return out


def _token_inputs(dims: DecoderDims, first: str) -> dict[str, tuple]:
    """The token inputs of a pre or post graph (`first`: its hidden-state input), with "b" for the
    batch axis and "q" for the new tokens."""
    rows = dims.position_rows
    return {first: ("b", "q", dims.hidden_size), "position_ids": ("b", "q") if rows == 1 else (rows, "b", "q")}


def _layer_profiles(dims: DecoderDims, limits: Limits, n_layer: int, layers, first: dict,
                    cut: tuple[int, int, int] | None) -> list[dict]:
    """Prefill and decode profiles of a graph whose first inputs are `first` and that owns `layers`' KV.

    first: {input name: shape with "b" (batch) and "q" (new tokens) placeholders} (`_token_inputs`).
    cut: the built schedule's (candidates, protected, kept candidates) at the graph's cut, or None.
    """
    batch = _span(1, 1, limits.max_batch)
    kv = (dims.num_kv_heads,)
    hd = (dims.head_size,)
    prefill_q = _span(1, n_layer, limits.max_tokens)
    decode_past = _span(1, n_layer + limits.max_new_tokens, limits.max_tokens + limits.max_new_tokens)
    profiles = []
    for q, past, decode in ((prefill_q, 0, False), ((1, 1, 1), decode_past, True)):
        placeholders = {"b": batch, "q": q}
        shapes = {name: tuple(placeholders.get(d, d) if isinstance(d, str) else d for d in dims_)
                  for name, dims_ in first.items()}
        shapes["past_length"] = (batch,)  # one past length per row
        for layer in layers:
            for name in graph_io.past(layer):
                shapes[name] = (batch, *kv, past, *hd)
        if cut is not None:
            candidates, protected, keep = ((0, 0, 0), (1, 1, 1), (0, 0, 0)) if decode else (
                _span(0, n, limits.max_tokens) for n in cut)
            shapes.update({"candidates": (batch, candidates), "protected": (batch, protected), "keep": (keep,)})
        profiles.append(_ranges(shapes))
    return profiles


def graph_profiles(dims: DecoderDims, schedule: PruningSchedule, limits: Limits,
                   rollout: bool) -> dict[str, list[dict[str, ShapeRange]]]:
    """{graph name: [prefill profile, decode profile]}, each {input name: ShapeRange}."""
    K, L = schedule.global_layer, schedule.num_layers
    n = schedule.tokens
    batch = _span(1, 1, limits.max_batch)
    profiles: dict[str, list[dict[str, ShapeRange]]] = {}

    embed_prefill = _ranges({"input_ids": (batch, _span(1, n[0], limits.max_tokens))})
    embed_decode = _ranges({"input_ids": (batch, 1)})
    profiles[graph_io.EMBED] = [embed_prefill, embed_decode]

    def cut(layer: int, kept: int) -> tuple[int, int, int]:
        """(candidates, protected, kept candidates) of the cut after `layer` in the built schedule."""
        return schedule.candidates[layer], n[layer] - schedule.candidates[layer], kept

    pre = _layer_profiles(dims, limits, n[0], range(K), _token_inputs(dims, "inputs_embeds"),
                          cut(K - 1, schedule.candidates[K]))
    if rollout:
        # rollout_weights has one weight per query row: [q] (a placeholder [1] in decode).
        pre[PREFILL]["rollout_weights"] = _ranges({"w": (_span(1, n[0], limits.max_tokens),)})["w"]
        pre[DECODE]["rollout_weights"] = ShapeRange((1,), (1,), (1,))
        for profile in pre:
            profile["rollout_alpha"] = profile["rollout_enabled"] = ShapeRange((), (), ())
    profiles[graph_io.PRE] = pre

    for layer in range(K, L):
        final = layer == L - 1
        profiles[graph_io.post(layer)] = _layer_profiles(
            dims, limits, n[layer], [layer], _token_inputs(dims, "hidden_states"),
            None if final else cut(layer, schedule.candidates[layer] - schedule.drops[layer]))
    return profiles


def profiles_to_json(profiles: dict[str, list[dict[str, ShapeRange]]]) -> dict:
    return {graph: [{name: r.to_json() for name, r in profile.items()} for profile in per_graph]
            for graph, per_graph in profiles.items()}
