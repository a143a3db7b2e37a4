"""Default tolerances per engine precision, and the Polygraphy compare function that applies them.

Only float outputs get a tolerance; every integer output (kept-token indices, generated
ids, TopKGather's indices and positions) must match exactly (atol = rtol = 0).

Logit atol per precision, from the repository's own measurements:
    fp32  1e-4  the ORT pipeline matches the fp32 reference to 1e-4 in every test
                (tests/runtime/test_graph_pipeline.py, both tiny models, both policies);
    fp16  1e-2  the largest first-step logit difference of fp16 engines against the fp32
                reference is 0.0028 (logits up to about 3; `python benchmarks/fp16_accuracy.py`,
                16 runs): 1e-2 leaves a 3.5x margin, as the fp16 tests do;
    bf16  5e-2  not measured (ORT's CPU provider has no bf16 kernels): bf16 keeps 3 fewer
                mantissa bits than fp16, so 8 x 0.0028 = 0.022, with the same margin rounded up.
rtol defaults to 0: the check is absolute (Polygraphy's elementwise check fails an element
only when it exceeds both atol and rtol).

Single graphs (hidden states, keys/values, scores; `--save-graph-data` and the graph replay)
get the same atol plus an rtol, because their values reach larger magnitudes than logits
(hidden states up to about 6 on the tiny models, far more in real 7B models) where one
rounding step exceeds any fixed atol. Measured on the tiny VideoLLaMA2 engine, ORT against
the fp32 torch graph modules on the same inputs: fp32 at most 1.2e-6; fp16 at most 0.0039,
which is one fp16 rounding step at |x| in [4, 8) (relative 2^-10 = 9.8e-4). So:
    fp32  atol 1e-4, rtol 1e-4     fp16  atol 1e-2, rtol 1e-2 (about 10 rounding steps)
    bf16  atol 5e-2, rtol 5e-2 (not measured; scaled like the logits)
"""

from __future__ import annotations

LOGITS_ATOL = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 5e-2}
DEFAULT_RTOL = 0.0
GRAPH_TOLERANCES = {"fp32": (1e-4, 1e-4), "fp16": (1e-2, 1e-2), "bf16": (5e-2, 5e-2)}  # (atol, rtol)


def check_tolerance(name: str, value: float) -> None:
    """A tolerance must be a finite number >= 0: with NaN every elementwise check is false, so
    Polygraphy's "fails when above atol" never fails and anything passes."""
    import math

    from ..errors import FastAVError

    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise FastAVError(f"{name} {value!r} must be a finite number >= 0")


def logits_atol(precision: str) -> float:
    return LOGITS_ATOL[precision]


def float_tolerances(float_outputs, atol: float, rtol: float) -> tuple[dict, dict]:
    """Per-output (atol, rtol) dicts in Polygraphy's form: `float_outputs` get the tolerance, every
    other output ("" is Polygraphy's default key) must match exactly."""
    atols, rtols = {"": 0.0}, {"": 0.0}
    for name in float_outputs:
        atols[name], rtols[name] = atol, rtol
    return atols, rtols


def compare_func(float_outputs, atol: float, rtol: float = DEFAULT_RTOL):
    """Polygraphy's simple elementwise comparison with the per-output tolerances above."""
    from polygraphy.comparator.compare import SimpleCompareFunc

    atols, rtols = float_tolerances(float_outputs, atol, rtol)
    return SimpleCompareFunc(atol=atols, rtol=rtols)
