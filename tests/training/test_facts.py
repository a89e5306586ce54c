"""Each fact has one home: families and names, gate metrics, risk bands, pyfunc requirements."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np

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
    }


def test_the_gate_reads_its_metrics_and_tolerances_from_the_families():
    from training.gate import gate

    rule = FAMILIES["clv"].gate[0]
    assert (rule.metric, rule.better, rule.tolerance) == ("clv_holdout_mae", "lower", 0.02)
    assert gate("clv", {rule.metric: 1.0}, {rule.metric: 1.0 + 0.019}).passed
    refused = gate("clv", {rule.metric: 1.0}, {rule.metric: 1.0 + 0.021})
    assert not refused.passed and "WORSE" in refused.message()
    auc = FAMILIES["churn"].gate[0]
    assert gate("churn", {auc.metric: 0.80}, {auc.metric: 0.80 - 0.009}).passed


def test_run_metrics_split_by_family_prefix():
    split = metrics_by_family(
        {"churn_roc_auc": 0.8, "clv_holdout_mae": 0.5, "segment_silhouette": 0.3, "n_x": 1.0}
    )
    assert split == {
        "segmentation": {"segment_silhouette": 0.3},
        "churn": {"churn_roc_auc": 0.8},
        "clv": {"clv_holdout_mae": 0.5},
    }


def test_risk_band_follows_the_risk_bands_table(monkeypatch):
    from models.churn import classifier

    p = [0.0, 0.29, 0.3, 0.59, 0.6, 1.0, np.nan]
    assert classifier.risk_band(p).tolist() == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
        "low",
    ]
    monkeypatch.setattr(classifier, "RISK_BANDS", (("low", 0.0), ("medium", 0.5), ("high", 0.9)))
    assert classifier.risk_band([0.4, 0.6, 0.95]).tolist() == ["low", "medium", "high"]


def test_pyfunc_requirements_are_the_bounds_pyproject_declares():
    from training.tracking import PYFUNC_DEPENDENCIES, pip_requirements

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = [
        next(d for d in declared if d.split(">=")[0].split("[")[0] == name)
        for name in PYFUNC_DEPENDENCIES
    ]
    assert pip_requirements() == wanted
    assert "pandas>=3.0" in pip_requirements()
