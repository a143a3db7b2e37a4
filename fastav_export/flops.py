"""FLOPs accounting for a pruning schedule.

Two figures, as the semantics page asks:

* paper: FastV's per-layer estimate F(n) = 4nd^2 + 2n^2d + 2ndm (used by FastAV);
  ratio = sum_l F(n_l) / (L * F(N)).
* exact: multiply-accumulates of the real Qwen2 layer on n tokens: GQA projections
  (q and o: n*d*H*hd each, k and v: n*d*kv*hd each), causal attention over the actual
  key counts (QK^T and PV: H*hd*n(n+1)/2 each), SwiGLU MLP 3*n*d*m, the last-query
  scoring of pruned layers (H*hd*n), and the final norm-free lm_head on the last token
  (d*V). No early drop: every layer computes all its tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models.registry import DecoderDims
from .schedule import PruningSchedule


def paper_layer_flops(n: int, d: int, m: int) -> int:
    return 4 * n * d * d + 2 * n * n * d + 2 * n * d * m


def exact_layer_macs(n: int, dims: DecoderDims, scored: bool = False) -> int:
    d, hd = dims.hidden_size, dims.head_size
    q_width, kv_width = dims.num_heads * hd, dims.num_kv_heads * hd
    projections = n * d * (2 * q_width + 2 * kv_width)
    attention = 2 * dims.num_heads * hd * (n * (n + 1) // 2)
    mlp = 3 * n * d * dims.intermediate_size
    scoring = dims.num_heads * hd * n if scored else 0
    return projections + attention + mlp + scoring


@dataclass(frozen=True)
class FlopsReport:
    tokens: tuple[int, ...]
    paper: tuple[int, ...]  # per layer, pruned
    exact: tuple[int, ...]  # per layer MACs, pruned
    paper_dense: int  # per layer at N (the same for every layer)
    exact_dense_total: int
    exact_total: int

    @property
    def paper_ratio(self) -> float:
        return sum(self.paper) / (len(self.paper) * self.paper_dense)

    @property
    def exact_ratio(self) -> float:
        return self.exact_total / self.exact_dense_total

    def to_json(self) -> dict:
        return {"paper": round(self.paper_ratio, 6), "exact_macs": round(self.exact_ratio, 6)}


def flops_report(dims: DecoderDims, schedule: PruningSchedule) -> FlopsReport:
    """Per-layer and total FLOPs of `schedule` against the dense model on N tokens."""
    d, m, n_all = dims.hidden_size, dims.intermediate_size, schedule.n_tokens
    lm_head = d * dims.vocab_size
    paper = tuple(paper_layer_flops(n, d, m) for n in schedule.tokens)
    exact = tuple(
        exact_layer_macs(n, dims, scored=schedule.drops[layer] > 0 and layer >= schedule.global_layer)
        for layer, n in enumerate(schedule.tokens)
    )
    dense_total = dims.num_layers * exact_layer_macs(n_all, dims) + lm_head
    return FlopsReport(
        tokens=schedule.tokens,
        paper=paper,
        exact=exact,
        paper_dense=paper_layer_flops(n_all, d, m),
        exact_dense_total=dense_total,
        exact_total=sum(exact) + lm_head,
    )
