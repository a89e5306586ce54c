"""Training registers three pyfunc models that MLflow itself can load and score."""

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from training import tracking


@pytest.mark.parametrize("family", ["segmentation", "churn", "clv"])
def test_registered_pyfunc_loads_and_scores_like_the_estimator(trained_store, family):
    tracking.setup()  # "models:/" URIs resolve against MLflow's process-wide store
    name = f"cvm-{family}"
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert model.metadata.signature is not None
    result = trained_store["result"]
    example = result.input_examples[family].reset_index(drop=True)
    example = example.apply(
        lambda c: c.astype("float64") if pd.api.types.is_integer_dtype(c) else c
    )
    scored = model.predict(example)
    expected = result.output_examples[family].reset_index(drop=True)
    for column in expected.columns:
        if pd.api.types.is_numeric_dtype(expected[column]):
            np.testing.assert_allclose(
                scored[column].to_numpy(dtype=float), expected[column].to_numpy(dtype=float)
            )
        else:
            assert scored[column].tolist() == expected[column].tolist()


def test_run_logs_params_metrics_fingerprint_plots_and_lineage(trained_store):
    client = MlflowClient(tracking_uri=trained_store["uri"], registry_uri=trained_store["uri"])
    run_id = trained_store["registered"]["clv"]["run_id"]
    run = client.get_run(run_id)
    assert run.data.params["as_of"] == "2025-12-31"
    assert run.data.params["churn_horizon_days"] == "90"
    assert len(run.data.tags["data_fingerprint"]) == 64
    for metric in ("churn_roc_auc", "churn_brier", "clv_holdout_mae", "n_customers"):
        assert metric in run.data.metrics
    plots = {a.path for a in client.list_artifacts(run_id, "plots")}
    expected = {
        "plots/clv_distribution.png",
        "plots/clv_cumulative_repeat_purchases.png",
        "plots/clv_holdout_by_frequency.png",
        "plots/segments_silhouette.png",
        "plots/segments_rfm_heatmap.png",
        "plots/segments_value_matrix.png",
        "plots/segments_nine_grid.png",
        "plots/churn_calibration_gains.png",
    }
    assert expected <= plots
    tables = {a.path for a in client.list_artifacts(run_id, "tables")}
    assert {"tables/segment_cluster_profiles.csv", "tables/segment_catalogue.json"} <= tables
    for family, info in trained_store["registered"].items():
        version = client.get_model_version(info["name"], info["version"])
        assert version.tags["as_of"] == "2025-12-31"
        assert version.tags["family"] == family
        assert version.run_id == run_id


def test_first_versions_are_champions_and_later_ones_challengers(trained_store):
    assert {f: i["alias"] for f, i in trained_store["registered"].items()} == dict.fromkeys(
        ["segmentation", "churn", "clv"], "champion"
    )
    assert tracking.champion_versions() == {"segmentation": "1", "churn": "1", "clv": "1"}
