"""Calibration: the rollout importance of sample inputs -> the keep-mass positional rule.

For every sample (an inputs_embeds row over the model's layout) the reference runs the
dense layers 0..K-1 once and the streaming rollout (no N x N map) turns their queries and
keys into the importance of every position, for each alpha. The importance is averaged
over the samples and `rule.choose_rule` picks the positional rule. Stability: the rule
chosen on each half of the samples, and the mass the chosen rule holds on each sample.

Video-SALMONN 2 clips of different lengths each have their own interleaved layout (a sample's
`layout`); their rule is in frames, so it is chosen over the per-frame importance of all of
them (`rule.choose_rule_over_clips`). The report's layout is then the first sample's.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..contract.layout import TokenLayout
from ..contract.pruning_config import PruningConfig
from ..contract.selection import positional_keep_mask, select_global_topk
from ..errors import FastAVError
from ..reference.rollout import query_row_weights, streaming_rollout
from ..reference.torch_reference import TorchReference
from .rule import PositionalRule, choose_rule_over_clips, retained_mass


@dataclass
class Sample:
    name: str
    embeds: torch.Tensor  # [1, N, D] fp32
    layout: TokenLayout | None = None  # its own layout (a clip's); None: the calibration's
    # Its prompt's position ids where they are not 0..N-1 ([3, N]: M-RoPE's TMRoPE rows); None: 0..N-1.
    positions: torch.Tensor | None = None

    def position_ids(self) -> torch.Tensor | None:
        """[1, N] or [3, 1, N] (the batch axis the reference takes), or None."""
        if self.positions is None:
            return None
        positions = torch.as_tensor(self.positions, dtype=torch.int64)
        return positions[None] if positions.dim() == 1 else positions[:, None]


@dataclass
class Calibration:
    """importance: alpha -> per sample its [N_s] importance over layouts[s]; rules: alpha -> the rule
    over all samples. layout: the first sample's (every sample's, unless clips differ in length)."""

    layout: TokenLayout
    global_layer: int
    alphas: list[float]
    keep_mass: float
    samples: list[str]
    importance: dict[float, list[np.ndarray]]
    rules: dict[float, PositionalRule]
    halves: list[PositionalRule | None] = field(default_factory=list)
    per_sample_mass: list[float] = field(default_factory=list)
    layouts: list[TokenLayout] = field(default_factory=list)

    @property
    def alpha(self) -> float:
        return self.alphas[0]

    @property
    def rule(self) -> PositionalRule:
        """The preset's rule: the first alpha's."""
        return self.rules[self.alpha]

    def mean_importance(self, alpha: float | None = None) -> np.ndarray:
        """[N] the mean importance over the samples on `layout` (all of them when they share it)."""
        rows = self.importance[self.alpha if alpha is None else alpha]
        return np.mean([row for row, layout in zip(rows, self.layouts) if layout == self.layout], axis=0)


def sample_importance(reference: TorchReference, embeds: torch.Tensor, global_layer: int, alphas: list[float],
                      rows: str = "all", position_ids: torch.Tensor | None = None) -> dict[float, np.ndarray]:
    """alpha -> [N] float64 rollout importance of one sample ([1, N, D]) at layer `global_layer`;
    position_ids: its [1, N] or [3, 1, N] positions (default 0..N-1)."""
    layers = reference.dense_queries_and_keys(embeds, global_layer, position_ids)
    u = query_row_weights(reference.layout, rows, reference.device)
    return {alpha: streaming_rollout(layers, alpha, u, reference.scale)[0].double().cpu().numpy()
            for alpha in alphas}


def calibrate(model, layout: TokenLayout, samples: list[Sample], global_layer: int, alphas: list[float],
              keep_mass: float, rows: str = "all",
              progress: Callable[[str], None] = lambda message: None) -> Calibration:
    if not samples:
        raise FastAVError("no samples: pass .npy embeddings files (or directories or globs of them) with --samples")
    layouts = [sample.layout or layout for sample in samples]
    layout = layouts[0]
    references = _References(model, global_layer)
    importance: dict[float, list[np.ndarray]] = {alpha: [] for alpha in alphas}
    for index, (sample, own) in enumerate(zip(samples, layouts), 1):
        own.check_matches(sample.embeds.shape[1], f"sample {sample.name}", plural=False)
        for alpha, values in sample_importance(references(own), sample.embeds, global_layer, alphas, rows,
                                               sample.position_ids()).items():
            importance[alpha].append(values)
        progress(f"[{index}/{len(samples)}] rollout of {sample.name}")
    rules = {alpha: choose_rule_over_clips(values, layouts, keep_mass) for alpha, values in importance.items()}
    result = Calibration(layout, global_layer, list(alphas), keep_mass, [s.name for s in samples], importance, rules,
                         layouts=layouts)
    first = importance[result.alpha]
    if len(samples) >= 2:
        half = len(samples) // 2
        result.halves = [choose_rule_over_clips(first[:half], layouts[:half], keep_mass),
                         choose_rule_over_clips(first[half:], layouts[half:], keep_mass)]
    config = result.rule.config(PruningConfig(global_layer=global_layer))
    result.per_sample_mass = [retained_mass(row, own, config) for row, own in zip(first, layouts)]
    return result


class _References:
    """One TorchReference per distinct layout (clips of different lengths have their own)."""

    def __init__(self, model, global_layer: int):
        self.model, self.config, self.built = model, PruningConfig(global_layer=global_layer), {}

    def __call__(self, layout: TokenLayout) -> TorchReference:
        if layout not in self.built:
            self.built[layout] = TorchReference(self.model, layout, self.config)
        return self.built[layout]


def flops_at_7b(layout: TokenLayout, rule: PositionalRule):
    """The rule's FLOPs report at Qwen2-7B's dims on `layout`, cut before the 7B model's middle layer (14)."""
    from ..contract.flops import flops_report
    from ..contract.schedule import make_schedule
    from ..models.qwen2 import QWEN2_7B

    config = rule.config(PruningConfig(global_layer=QWEN2_7B.num_layers // 2))
    return flops_report(QWEN2_7B, make_schedule(layout, config, QWEN2_7B.num_layers))


def mass_summary(masses: list[float]) -> dict:
    return {"min": min(masses), "median": statistics.median(masses)}


def held_out_overlap(model, layout: TokenLayout, rule: PositionalRule, samples: list[Sample], global_layer: int,
                     alpha: float, rows: str = "all") -> list[float]:
    """Per held-out sample: the Jaccard overlap of the candidates online rollout keeps at the rule's
    budget (what the rule keeps on the sample's layout) and those the calibrated positional rule keeps."""
    references = _References(model, global_layer)
    config = rule.config(PruningConfig(global_layer=global_layer))
    overlaps = []
    for sample in samples:
        own = sample.layout or layout
        own.check_matches(sample.embeds.shape[1], f"held-out sample {sample.name}", plural=False)
        positional = positional_keep_mask(own, config)
        importance = sample_importance(references(own), sample.embeds, global_layer, [alpha], rows,
                                       sample.position_ids())[alpha]
        candidate = torch.from_numpy(own.candidate_mask())
        kept = select_global_topk(torch.from_numpy(importance)[None], candidate, int(positional.sum()))[0].numpy()
        online = np.zeros(own.n_tokens, bool)
        online[kept] = True
        online &= own.candidate_mask()
        union = (online | positional).sum()
        overlaps.append(float((online & positional).sum() / union) if union else 1.0)
    return overlaps
