"""Quantized-weight engines against the fp32 PyTorch reference on the tiny seed models: the figures
`compare` judges them by (compare/quantized.py), to set and check its stated limits.

Builds the tiny model of each family with int8 and int4 weights (ort-contrib) and int4 weights (onnx-standard), with
and without the rollout graph, in a temporary directory, then compares each on 8 seeded inputs and
prints the smallest kept Jaccard, the token agreement (over all inputs, and the worst input's) and
the largest logits error.

    python benchmarks/quantized_accuracy.py
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from fastav_export.compare.quantized import QUANTIZED_LIMITS, judge
from fastav_export.compare.session import Comparison
from fastav_export.testing.models import build_tiny_engine

MODELS = ("videollama2-tiny", "video-salmonn2-tiny", "qwen2.5-omni-tiny")
VARIANTS = (("int8", "ort-contrib"), ("int4", "ort-contrib"), ("int4", "onnx-standard"))


def main() -> None:
    from polygraphy.logger import G_LOGGER

    logging.disable(logging.WARNING)
    G_LOGGER.module_severity = G_LOGGER.WARNING  # Polygraphy's per-runner lines
    with tempfile.TemporaryDirectory() as tmp:
        for name in MODELS:
            for weights, flavour in VARIANTS:
                for rollout in (False, True):
                    out = Path(tmp) / f"{name}-{weights}-{flavour}-{rollout}"
                    build_tiny_engine(out, name, rollout=rollout, weights=weights, flavour=flavour)
                    comparison = Comparison(out)
                    report = comparison.run(comparison.synthetic_inputs(8, 1, 0))
                    overall = judge(report["iterations"], QUANTIZED_LIMITS[weights])
                    worst = min(f["tokens_equal"] / f["tokens"] for f in report["iterations"])
                    print(f"{name:<20} {weights} {flavour:<13} {'rollout' if rollout else 'positional':<10} "
                          f"Jaccard {overall['kept_jaccard']:.3f}  tokens {overall['token_agreement']:.0%} "
                          f"(worst input {worst:.0%})  logits error {overall['logits_error']:.3f}  "
                          f"{'within' if overall['passed'] else 'BEYOND'} the limits", flush=True)


if __name__ == "__main__":
    main()
