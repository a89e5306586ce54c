"""Each fact has one home: families and names, gate metrics, risk bands, pyfunc requirements."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from models.exceptions import InvalidInputError
from models.families import FAMILIES, REGISTERED_NAMES, metrics_by_family

ROOT = Path(__file__).resolve().parents[2]


def test_training_and_service_read_the_same_registered_names():
    from service import config as service_config
    from training import config as training_config

    assert service_config.REGISTERED_NAMES is REGISTERED_NAMES
    assert training_config.REGISTERED_NAMES is REGISTERED_NAMES
    assert REGISTERED_NAMES == {
        "segmentation": "cvm-segmentation",
        "churn": "cvm-churn",
        "clv": "cvm-clv",
        "uplift": "cvm-uplift",
    }


def test_the_gate_reads_its_metrics_and_tolerances_from_the_families():
    from training.gate import gate

    rule = FAMILIES["clv"].gate[0]
    # the MAE's allowance is relative: 5 % of the champion's value
    assert (rule.metric, rule.better, rule.tolerance, rule.relative) == (
        "clv_holdout_mae",
        "lower",
        0.05,
        True,
    )
    assert gate("clv", {rule.metric: 2.0}, {rule.metric: 2.0 + 0.099}).passed
    refused = gate("clv", {rule.metric: 2.0}, {rule.metric: 2.0 + 0.101})
    assert not refused.passed and "WORSE" in refused.message()
    assert "needs ≤ champion + 5% = 0.1000" in refused.reasons[0]
    auc = FAMILIES["churn"].gate[0]
    assert gate("churn", {auc.metric: 0.80}, {auc.metric: 0.80 - 0.009}).passed


def test_relative_and_absolute_tolerances():
    """The CDNOW case: MAE 0.5311 against 0.5110 was refused by 0.0001 with an absolute 0.02;
    3.9 % worse passes the relative default, and the absolute form still works."""
    from training.gate import Tolerance, gate

    champion, challenger = {"clv_holdout_mae": 0.5110}, {"clv_holdout_mae": 0.5311}
    assert gate("clv", champion, challenger).passed
    assert not gate("clv", champion, challenger, {"clv_holdout_mae": 0.02}).passed
    assert not gate("clv", champion, challenger, {"clv_holdout_mae": "3%"}).passed
    assert gate("clv", champion, challenger, {"clv_holdout_mae": "4%"}).passed
    assert gate("clv", champion, challenger, {"clv_holdout_mae": "0.021"}).passed
    assert Tolerance.parse("5%") == Tolerance(0.05, relative=True)
    assert Tolerance.parse(" 0.02 ") == Tolerance(0.02) and str(Tolerance(0.05, True)) == "5%"
    for bad in ("x%", "", "nan", True, None):
        with pytest.raises(InvalidInputError, match="percentage of the champion's value"):
            Tolerance.parse(bad, "clv_holdout_mae")


def test_segmentation_notes_are_shown_but_not_gated():
    from training.gate import comparison_table, gate

    champion = {"segment_silhouette": 0.40, "segment_n_clusters": 2, "segment_n_clusters_model": 2}
    challenger = {
        "segment_silhouette": 0.38,
        "segment_n_clusters": 2,
        "segment_n_clusters_model": 3,
        "segment_label_agreement": 0.05,  # labels reshuffled: said, not a refusal
    }
    result = gate("segmentation", champion, challenger)
    assert result.passed
    assert "segment_n_clusters_model 3 vs champion 2 (not gated)" in result.reasons
    assert "segment_label_agreement 0.0500 vs champion n/a (not gated)" in result.reasons
    table = comparison_table({"segmentation": champion}, {"segmentation": challenger})
    assert "segment_n_clusters_model            2           3" in table


def test_mixed_as_of_dates_are_named():
    from models.families import mixed_as_of

    assert mixed_as_of({"churn": "2026-03-31", "clv": "2026-03-31", "segmentation": None}) is None
    warning = mixed_as_of({"churn": "2026-03-31", "clv": "2025-12-31"})
    assert warning is not None
    assert "different dates (churn 2026-03-31, clv 2025-12-31)" in warning


def test_run_metrics_split_by_family_prefix():
    split = metrics_by_family(
        {"churn_roc_auc": 0.8, "clv_holdout_mae": 0.5, "segment_silhouette": 0.3, "n_x": 1.0}
    )
    assert split == {
        "segmentation": {"segment_silhouette": 0.3},
        "churn": {"churn_roc_auc": 0.8},
        "clv": {"clv_holdout_mae": 0.5},
        "uplift": {},
    }


def test_pyfunc_requirements_are_the_bounds_pyproject_declares():
    from training.tracking import PYFUNC_DEPENDENCIES, pip_requirements

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = [
        next(d for d in declared if d.split(">=")[0].split("[")[0] == name)
        for name in PYFUNC_DEPENDENCIES
    ]
    assert pip_requirements() == wanted
    assert "pandas>=3.0" in pip_requirements()
