"""`compare` of engines with quantized weights: agreement figures against the fp32 reference, within stated limits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastav_export.compare.quantized import (
    QUANTIZED_LIMITS,
    QuantizedLimits,
    judge,
    kept_jaccard,
    logits_error,
    measure,
    token_agreement,
)


def _outputs(logits, kept, tokens):
    return {"logits": np.asarray(logits, np.float32), **{f"kept.{layer}": np.asarray(rows) for layer, rows in
                                                        kept.items()}, "tokens": np.asarray(tokens)}


def test_figures_on_hand_made_outputs():
    ours = _outputs([[1.0, 2.0, -4.0]], {3: [[0, 1, 2, 3]], 4: [[0, 1, 2]]}, [[5, 6, 7, 8]])
    theirs = _outputs([[1.0, 2.5, -4.0]], {3: [[0, 1, 2, 4]], 4: [[0, 1, 2]]}, [[5, 6, 9, 8]])
    assert kept_jaccard(ours, theirs) == pytest.approx(3 / 5)  # layer 3: {0,1,2} of {0,1,2,3,4}
    assert token_agreement(ours["tokens"], theirs["tokens"]) == (3, 4)
    assert logits_error(ours["logits"], theirs["logits"]) == pytest.approx(0.5 / 4.0)
    figures = measure(ours, theirs)
    assert figures["tokens_equal"] == 3 and figures["logits_max_abs_diff"] == pytest.approx(0.5)


def test_limits_apply_to_all_inputs_together():
    ours = _outputs([[1.0, 2.0, -4.0]], {3: [[0, 1, 2, 3]]}, [[5, 6, 7, 8]])
    theirs = _outputs([[1.0, 2.5, -4.0]], {3: [[0, 1, 2, 4]]}, [[5, 6, 9, 8]])
    same = _outputs([[1.0, 2.0, -4.0]], {3: [[0, 1, 2, 3]]}, [[5, 6, 7, 8]])
    iterations = [measure(ours, theirs), measure(same, same)]  # tokens 3/4 and 4/4: 7/8 overall
    overall = judge(iterations, QuantizedLimits(kept_jaccard=0.6, token_agreement=0.875, logits_error=0.125))
    assert overall["passed"] and overall["tokens_equal"] == 7 and overall["kept_jaccard"] == pytest.approx(0.6)
    assert not judge(iterations, QuantizedLimits(0.61, 0.875, 0.125))["within"]["kept_jaccard"]
    assert not judge(iterations, QuantizedLimits(0.6, 0.876, 0.125))["passed"]
    assert not judge(iterations, QuantizedLimits(0.6, 0.875, 0.124))["passed"]


def test_equal_outputs_are_perfect_agreement():
    outputs = _outputs([[0.0, 0.0]], {}, [[1, 2]])
    overall = judge([measure(outputs, outputs)], QUANTIZED_LIMITS["int4"])
    assert overall["kept_jaccard"] == 1.0 and overall["token_agreement"] == 1.0 and overall["logits_error"] == 0.0


def test_tolerances_are_refused_for_quantized_engines(tiny_engine, capsys):
    from fastav_export.cli import main

    engine = tiny_engine("videollama2-tiny", weights="int8")
    assert main(["compare", str(engine.path), "--atol", "1e-3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "stated limits" in err and err.count("\n") == 1


@pytest.mark.slow  # builds quantized engines (as tiny_engine tests are)
@pytest.mark.parametrize("model", ["videollama2-tiny", "video-salmonn2-tiny"])
@pytest.mark.parametrize("weights", ["int4", "int8"])
def test_quantized_engines_pass_compare_within_the_stated_limits(tiny_engine, tmp_path, capsys, model, weights):
    from fastav_export.cli import main

    engine = tiny_engine(model, weights=weights)
    report = tmp_path / "report.json"
    code = main(["compare", str(engine.path), "--against", "torch", "--inputs", "4", "--report", str(report), "-q"])
    out = capsys.readouterr().out
    data = json.loads(report.read_text())
    assert code == 0 and data["passed"], out
    assert out.startswith("PASSED") and f"{weights} weights" in out and "kept Jaccard" in out
    assert data["weights"]["kind"] == weights and len(data["iterations"]) == 4
    assert data["overall"]["kept_jaccard"] >= QUANTIZED_LIMITS[weights].kept_jaccard
    assert main(["run", str(engine.path), "--max-new-tokens", "3"]) == 0
    assert f"{weights} weights" in capsys.readouterr().out  # run says what it runs
