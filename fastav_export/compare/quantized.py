"""How far an engine with quantized weights is from its unquantized reference, and the limits it must stay within.

Quantized weights change every number a little, so the exact checks of `compare` (kept
tokens and generated tokens equal, logits within 1e-4) do not apply. Instead each input is
measured by three figures, all reported, and the comparison fails only where, over all its
inputs, one is beyond the stated limit for the weight kind:

    kept Jaccard     |A n B| / |A u B| of the kept index sets of every post layer and row
                     (the smallest over them and the inputs): pruning still keeps the same tokens;
    token agreement  generated tokens equal to the reference's at the same step, over all
                     steps, rows and inputs (after a first difference the texts may part);
    logits error     largest |difference| of the first-step logits, divided by the
                     reference logits' largest |value| (the largest over the inputs).

Limits (QUANTIZED_LIMITS): measured on the tiny models of all three families, positional and
rollout builds, both graph flavours, 8 seeded inputs each (`python benchmarks/quantized_accuracy.py`),
the worst case seen was: int8 Jaccard 0.926, tokens 0.84 (0.375 on one input), logits error
0.049; int4 Jaccard 0.793, tokens 0.27 (0 on some inputs: the first token differs), logits error
0.197. The limits leave a margin over those. Random-weight tiny models are hard on
quantization (small hidden sizes, near-flat logits that make greedy choices close calls), so
the token limit for int4 is low; trained checkpoints agree far more, and a real model's figures
are what to read in the report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class QuantizedLimits:
    kept_jaccard: float  # at least
    token_agreement: float  # at least
    logits_error: float  # at most (relative to the largest reference logit)

    def to_json(self) -> dict:
        return {"kept_jaccard": {"at_least": self.kept_jaccard}, "token_agreement": {"at_least": self.token_agreement},
                "logits_error": {"at_most": self.logits_error}}


QUANTIZED_LIMITS = {"int8": QuantizedLimits(0.85, 0.5, 0.1), "int4": QuantizedLimits(0.7, 0.1, 0.3)}


def kept_jaccard(engine: dict, reference: dict) -> float:
    """Smallest Jaccard index of the kept sets over every `kept.<l>` output and row (1.0 with no cut)."""
    smallest = 1.0
    for name, ours in engine.items():
        if not name.startswith("kept."):
            continue
        for mine, theirs in zip(np.asarray(ours), np.asarray(reference[name]), strict=True):
            a, b = set(mine.tolist()), set(theirs.tolist())
            union = len(a | b)
            smallest = min(smallest, len(a & b) / union if union else 1.0)
    return smallest


def token_agreement(engine_tokens, reference_tokens) -> tuple[int, int]:
    """(steps where the generated token equals the reference's, all steps), over every row."""
    ours, theirs = np.asarray(engine_tokens), np.asarray(reference_tokens)
    return int((ours == theirs).sum()), int(ours.size)


def logits_error(engine_logits, reference_logits) -> float:
    """max |engine - reference| / max |reference| of the first-step logits."""
    return _logits_differences(engine_logits, reference_logits)[1]


def _logits_differences(engine_logits, reference_logits) -> tuple[float, float]:
    """(max |engine - reference|, that over max |reference|)."""
    ours, theirs = np.asarray(engine_logits, np.float64), np.asarray(reference_logits, np.float64)
    largest = float(np.abs(ours - theirs).max())
    return largest, largest / (float(np.abs(theirs).max()) or 1.0)


def measure(engine: dict, reference: dict) -> dict:
    """One input's figures (the outputs of compare/runners.py)."""
    equal, total = token_agreement(engine["tokens"], reference["tokens"])
    largest, relative = _logits_differences(engine["logits"], reference["logits"])
    return {"kept_jaccard": kept_jaccard(engine, reference), "tokens_equal": equal, "tokens": total,
            "logits_error": relative, "logits_max_abs_diff": largest}


def judge(iterations: list[dict], limits: QuantizedLimits) -> dict:
    """The figures over all inputs (`measure`'s), each with whether it is within `limits`."""
    equal, total = sum(f["tokens_equal"] for f in iterations), sum(f["tokens"] for f in iterations)
    figures = {"kept_jaccard": min(f["kept_jaccard"] for f in iterations),
               "token_agreement": equal / total if total else 1.0,
               "logits_error": max(f["logits_error"] for f in iterations)}
    within = {"kept_jaccard": figures["kept_jaccard"] >= limits.kept_jaccard,
              "token_agreement": figures["token_agreement"] >= limits.token_agreement,
              "logits_error": figures["logits_error"] <= limits.logits_error}
    return {**figures, "tokens_equal": equal, "tokens": total, "within": within, "passed": all(within.values())}
