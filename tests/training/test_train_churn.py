"""Churn training on the demo data: baseline beside the model, calibration no worse."""


def test_holdout_auc_reported_beside_logistic_baseline(trained_store):
    metrics = trained_store["result"].metrics
    assert 0.5 < metrics["churn_baseline_roc_auc"] < 1
    assert 0.7 < metrics["churn_roc_auc"] < 1
    # Gradient boosting is at least as good as the baseline on this data (within noise).
    assert metrics["churn_roc_auc"] >= metrics["churn_baseline_roc_auc"] - 0.02


def test_calibrated_brier_no_worse_than_uncalibrated(trained_store):
    metrics = trained_store["result"].metrics
    assert metrics["churn_brier"] <= metrics["churn_brier_uncalibrated"] + 1e-12
    assert metrics["churn_calibration_ok"] == 1.0


def test_comparison_and_gains_tables_are_logged(trained_store):
    tables = trained_store["result"].tables
    comparison = tables["churn_model_comparison"]
    assert set(comparison.get("model", comparison.index)) >= {
        "gradient_boosting",
        "logistic_baseline",
    }
    gains = tables["churn_gains"]
    assert gains["gain"].iloc[-1] == 1.0
