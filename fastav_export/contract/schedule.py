"""The pruning schedule: how many tokens each layer processes.

A function of the layout and the config alone (never of data), which is what lets
exported graphs have static shape expressions, the runtime size its KV buffers up
front, and the FLOPs be counted before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from .layout import TokenLayout
from .pruning_config import PruningConfig
from .selection import fine_drop_count, global_keep_count


@dataclass(frozen=True)
class PruningSchedule:
    """Per-layer token counts for one layout and config.

    tokens[l]:     n_l, tokens layer l processes (N for l < K).
    candidates[l]: candidates among them.
    drops[l]:      tokens removed after layer l (the global cut is counted at K-1).
    """

    num_layers: int
    global_layer: int
    tokens: tuple[int, ...]
    candidates: tuple[int, ...]
    drops: tuple[int, ...]

    @property
    def n_tokens(self) -> int:
        return self.tokens[0]

    def rows(self):
        """(first layer, last layer, tokens, candidates) runs of equal counts, for printing."""
        runs, start = [], 0
        for layer in range(1, self.num_layers + 1):
            if layer == self.num_layers or self.tokens[layer] != self.tokens[start]:
                runs.append((start, layer - 1, self.tokens[start], self.candidates[start]))
                start = layer
        return runs


def make_schedule(layout: TokenLayout, config: PruningConfig, num_layers: int) -> PruningSchedule:
    config = config.resolve(num_layers)
    K = config.global_layer
    n, c = layout.n_tokens, int(layout.candidate_mask().sum())
    tokens, candidates, drops = [], [], []
    for layer in range(num_layers):
        if layer == K:
            kept = global_keep_count(layout, config)
            drops[-1] = c - kept
            n, c = n - (c - kept), kept
        tokens.append(n)
        candidates.append(c)
        drops.append(0)
        if K <= layer < num_layers - 1:
            d = fine_drop_count(c, config.fine_ratio)
            drops[-1] = d
            n, c = n - d, c - d
    return PruningSchedule(num_layers, K, tuple(tokens), tuple(candidates), tuple(drops))
