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


@pytest.fixture
def registry(tmp_path):
    """An empty SQLite registry with one model whose versions the tests register by hand."""
    uri = f"sqlite:///{tmp_path}/registry.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("cvm-test")
    (tmp_path / "model").mkdir()
    return client, str(tmp_path / "model")


def _register(client, source):
    return str(client.create_model_version("cvm-test", source).version)


def _decide(client, version):
    """What training does with a version it registered: the alias, then the event."""
    alias = tracking.initial_alias(client, "cvm-test", version)
    client.set_registered_model_alias("cvm-test", alias, version)
    client.set_model_version_tag(
        "cvm-test", version, "event.2026-01-01T00:00:00.000000Z-0.registered", "by test"
    )
    return alias


def test_two_trainers_interleaved_give_the_lower_version_the_champion(registry):
    """Both trainers register before either chooses its alias (the race of two `cvm train`
    runs at once): whichever chooses first, v1 is the champion and v2 the challenger. With
    the rule "champion when the family has none", v2 would become a second champion here."""
    client, source = registry
    first, second = _register(client, source), _register(client, source)
    assert _decide(client, second) == "challenger"  # v1 is still choosing: it comes first
    assert _decide(client, first) == "champion"
    assert str(client.get_model_version_by_alias("cvm-test", "champion").version) == first
    assert str(client.get_model_version_by_alias("cvm-test", "challenger").version) == second

    third = _register(client, source)
    assert _decide(client, third) == "challenger"  # a champion exists


def test_a_lower_version_decided_or_abandoned_long_ago_does_not_hold_the_champion(
    registry, monkeypatch
):
    client, source = registry
    first = _register(client, source)
    # v1's trainer died before choosing its alias; v2 is registered more than the window later
    monkeypatch.setattr(tracking, "UNDECIDED_FOR_MS", 0)
    second = _register(client, source)
    assert _decide(client, second) == "champion"
    # a decided version without the champion (the alias was deleted): the next one takes it
    client.delete_registered_model_alias("cvm-test", "champion")
    monkeypatch.setattr(tracking, "UNDECIDED_FOR_MS", 10 * 60 * 1000)
    third = _register(client, source)
    assert int(first) < int(second) < int(third)
    client.set_model_version_tag("cvm-test", first, "event.x.registered", "by hand")
    assert _decide(client, third) == "champion"
