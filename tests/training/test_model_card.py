"""The model card states what the run did about calibration, never a fixed claim."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from training.model_card import calibration_lines, model_card

ROOT = Path(__file__).resolve().parents[2]

# The CDNOW run of the report: no calibration served, the holdout check failed.
CDNOW = (
    {"churn_calibration": "none", "churn_holdout_calibration": "sigmoid"},
    {"churn_calibration_ok": 0.0, "churn_brier": 0.1612, "churn_brier_uncalibrated": 0.1598},
)


def test_an_uncalibrated_run_is_said_to_be_uncalibrated():
    lines, limit = calibration_lines(*CDNOW)
    assert lines[0].startswith("- method of the served model: none (the out-of-fold check")
    assert lines[1] == (
        "- holdout check: failed (sigmoid: calibrated Brier 0.1612 against 0.1598 raw): "
        "calibration made the holdout probabilities worse"
    )
    assert limit.startswith("Probabilities are not calibrated:")


def test_a_calibrated_run_that_held_and_one_that_did_not():
    params = {"churn_calibration": "sigmoid", "churn_holdout_calibration": "sigmoid"}
    held = {"churn_calibration_ok": 1.0, "churn_brier": 0.15, "churn_brier_uncalibrated": 0.16}
    lines, limit = calibration_lines(params, held)
    assert lines == [
        "- method of the served model: sigmoid (Platt scaling) on out-of-fold scores of the "
        "training window",
        "- holdout check: passed (sigmoid: calibrated Brier 0.1500 against 0.1600 raw)",
    ]
    assert limit.startswith(
        "Probabilities are calibrated (sigmoid) on the training window and held"
    )
    _, limit = calibration_lines(params, {**held, "churn_calibration_ok": 0.0})
    assert limit.startswith("Probabilities are calibrated (sigmoid), but the calibration did not")
    none = {"churn_calibration": "none", "churn_holdout_calibration": "none"}
    lines, _ = calibration_lines(none, {**held, "churn_calibration_ok": 1.0})
    assert (
        lines[1] == "- holdout check: not run: the model checked on the holdout had no calibration"
    )


def test_the_churn_card_follows_its_run(trained_store):
    result = trained_store["result"]
    card = model_card("churn", "cvm-churn", result, "f" * 16, None)
    lines, limit = calibration_lines(result.params, result.metrics)
    assert "## Calibration\n" + "\n".join(lines) + "\n" in card
    assert f"- {limit}" in card
    assert result.params["churn_holdout_calibration"] in ("sigmoid", "isotonic", "none")
    # the same run, had its check failed: the card no longer says "calibrated" unqualified
    failed = replace(
        result, params={**result.params, **CDNOW[0]}, metrics={**result.metrics, **CDNOW[1]}
    )
    card = model_card("churn", "cvm-churn", failed, "f" * 16, None)
    assert "Probabilities are not calibrated" in card and "held on the holdout" not in card
    assert "calibrated on the training window" not in card


def test_the_readme_makes_no_fixed_calibration_claim():
    text = (ROOT / "README.md").read_text()
    assert "calibrated classifier" not in text and "calibrated gradient-boosted" not in text
    assert "model card says which method it uses and whether the holdout check passed" in text
