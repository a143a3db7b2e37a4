"""FLOPs accounting for a pruning schedule.

Two figures, as the semantics page asks:

* paper: FastV's per-layer estimate F(n) = 4nd^2 + 2n^2d + 2ndm (used by FastAV);
  ratio = sum_l F(n_l) / (L * F(N)).
* exact: multiply-accumulates of the real Qwen2 layer on n tokens: GQA projections
  (q and o: n*d*H*hd each, k and v: n*d*kv*hd each), causal attention over the actual
  key counts (QK^T and PV: H*hd*n(n+1)/2 each), SwiGLU MLP 3*n*d*m, the last-query
  scoring of pruned layers (H*hd*n), and the final norm-free lm_head on the last token
  (d*V). Reported twice:
  - with exact early drop, what the exported graphs compute: a layer whose output is
    cut (K-1 and every later layer) runs its output projection and MLP only for the
    tokens the next layer keeps (the last layer: for the last token); projections q/k/v
    and the fused attention still cover all its tokens, since its KV buffer keeps them;
  - without early drop (every layer computes all its tokens), as the reference does.
The dense baseline is the unpruned model as users run it: every layer on all N tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from .dims import DecoderDims
from .schedule import PruningSchedule


def paper_layer_flops(n: int, d: int, m: int) -> int:
    return 4 * n * d * d + 2 * n * n * d + 2 * n * d * m


def exact_layer_macs(n: int, dims: DecoderDims, scored: bool = False, kept: int | None = None) -> int:
    """MACs of one layer on n tokens whose output is needed for `kept` of them (default all n)."""
    kept = n if kept is None else kept
    d, hd = dims.hidden_size, dims.head_size
    q_width, kv_width = dims.num_heads * hd, dims.num_kv_heads * hd
    projections = n * d * (q_width + 2 * kv_width) + kept * d * q_width  # q, k, v for all; o for the kept
    attention = 2 * dims.num_heads * hd * (n * (n + 1) // 2)
    mlp = 3 * kept * d * dims.intermediate_size
    scoring = dims.num_heads * hd * n if scored else 0
    return projections + attention + mlp + scoring


@dataclass(frozen=True)
class FlopsReport:
    tokens: tuple[int, ...]
    paper: tuple[int, ...]  # per layer, pruned
    exact: tuple[int, ...]  # per layer MACs, pruned, with early drop (what the graphs compute)
    exact_no_drop: tuple[int, ...]  # per layer MACs, pruned, every layer computing all its tokens
    paper_dense: int  # per layer at N (the same for every layer)
    exact_dense_total: int
    lm_head: int

    @property
    def paper_ratio(self) -> float:
        return sum(self.paper) / (len(self.paper) * self.paper_dense)

    @property
    def exact_ratio(self) -> float:
        """Exact MACs with early drop / dense."""
        return (sum(self.exact) + self.lm_head) / self.exact_dense_total

    @property
    def exact_ratio_no_drop(self) -> float:
        return (sum(self.exact_no_drop) + self.lm_head) / self.exact_dense_total

    def describe(self) -> str:
        return (f"paper formula {self.paper_ratio:.4f}, exact MACs {self.exact_ratio:.4f} with early drop "
                f"({self.exact_ratio_no_drop:.4f} without)")

    def to_json(self) -> dict:
        return {"paper": round(self.paper_ratio, 6), "exact_macs": round(self.exact_ratio, 6),
                "exact_macs_without_early_drop": round(self.exact_ratio_no_drop, 6)}


def flops_report(dims: DecoderDims, schedule: PruningSchedule) -> FlopsReport:
    """Per-layer and total FLOPs of `schedule` against the dense model on N tokens."""
    d, m, n_all = dims.hidden_size, dims.intermediate_size, schedule.n_tokens
    K, L = schedule.global_layer, schedule.num_layers

    def needed(layer: int) -> int:
        """Tokens whose output layer `layer` must compute: what the next layer keeps."""
        return 1 if layer == L - 1 else schedule.tokens[layer] - schedule.drops[layer]

    scored = [schedule.drops[layer] > 0 and layer >= K for layer in range(L)]
    return FlopsReport(
        tokens=schedule.tokens,
        paper=tuple(paper_layer_flops(n, d, m) for n in schedule.tokens),
        exact=tuple(exact_layer_macs(n, dims, scored[layer], kept=needed(layer))
                    for layer, n in enumerate(schedule.tokens)),
        exact_no_drop=tuple(exact_layer_macs(n, dims, scored[layer]) for layer, n in enumerate(schedule.tokens)),
        paper_dense=paper_layer_flops(n_all, d, m),
        exact_dense_total=L * exact_layer_macs(n_all, dims) + d * dims.vocab_size,
        lm_head=d * dims.vocab_size,
    )
