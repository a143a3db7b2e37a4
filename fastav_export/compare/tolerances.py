"""Default tolerances per engine precision, and the Polygraphy compare function that applies them.

Only float outputs get a tolerance; every integer output (kept-token indices, generated
ids, TopKGather's indices and positions) must match exactly (atol = rtol = 0).

Logit atol per precision, from the repository's own measurements:
    fp32  1e-4  the ORT pipeline matches the fp32 reference to 1e-4 in every test
                (tests/ort_backend/test_pipeline.py, both tiny models, both policies);
    fp16  1e-2  the largest first-step logit difference of fp16 engines against the fp32
                reference is 0.0028 (logits up to about 3; `python benchmarks/fp16_accuracy.py`,
                16 runs): 1e-2 leaves a 3.5x margin, as the fp16 tests do;
    bf16  5e-2  not measured (ORT's CPU provider has no bf16 kernels): bf16 keeps 3 fewer
                mantissa bits than fp16, so 8 x 0.0028 = 0.022, with the same margin rounded up.
rtol defaults to 0: the check is absolute (Polygraphy's elementwise check fails an element
only when it exceeds both atol and rtol).
"""

from __future__ import annotations

LOGITS_ATOL = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 5e-2}
DEFAULT_RTOL = 0.0


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
    from polygraphy.comparator import compare

    atols, rtols = float_tolerances(float_outputs, atol, rtol)
    simple = getattr(compare, "SimpleCompareFunc", None)
    if simple is None:  # Polygraphy < 0.53 only has the factory
        return compare.CompareFunc.simple(atol=atols, rtol=rtols)
    return simple(atol=atols, rtol=rtols)
