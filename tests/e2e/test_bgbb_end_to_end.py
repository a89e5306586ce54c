"""BG/BB end to end, as a user runs it: ``cvm generate --period month``, ``cvm train --model
bgbb --period month``, then the service answers the customer view and ``/invocations`` with
the registered model's own numbers (from purchases, from a summary in days, from periods)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from models.clv import DiscreteCLV
from models.clv.periodic import PERIOD_COLUMNS, with_period_columns
from models.features import summarize
from service.app import create_app
from service.config import Settings
from tests.conftest import purchases
from tests.training.test_cli import cvm
from training import batch

pytestmark = pytest.mark.e2e

AS_OF = "2025-12-31"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    home = tmp_path_factory.mktemp("bgbb-home")
    data = home / "donors"
    made = cvm(
        "generate",
        "--period",
        "month",
        "--customers",
        "600",
        "--out",
        str(data),
        home=home,
        timeout=600,
    )
    assert made.returncode == 0, made.stderr
    result = cvm(
        "train",
        "--transactions",
        str(data / "transactions.csv"),
        "--model",
        "bgbb",
        "--period",
        "month",
        home=home,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "] CLV: chose bgbb per month (alpha=" in result.stderr
    assert "registered cvm-clv version 1 as @champion" in result.stdout
    transactions = pd.read_csv(data / "transactions.csv", dtype={"customer_id": str})
    transactions["timestamp"] = pd.to_datetime(transactions["timestamp"])
    app = create_app(Settings(mlflow_tracking_uri=f"sqlite:///{home}/mlflow.db", reload_interval=0))
    with TestClient(app) as client:
        assert app.state.store.wait(120), app.state.store.error
        yield client, app, transactions


def _estimators(app):
    return {family: m.estimator for family, m in app.state.store.snapshot().items()}


def test_the_customer_view_answers_with_the_models_own_numbers(trained):
    client, app, transactions = trained
    model = _estimators(app)["clv"]
    assert isinstance(model, DiscreteCLV) and model.period == "month"
    customer = transactions["customer_id"].iloc[-1]
    summary = {"frequency": 5, "recency": 300, "T": 600, "monetary_value": 40.0}
    body = {
        "as_of": AS_OF,
        "customers": [
            {"customer_id": customer, "transactions": purchases(transactions, customer)},
            {"customer_id": "S1", "summary": summary},
        ],
    }
    answer = client.post("/v1/customers/score", json=body)
    assert answer.status_code == 200, answer.text
    got = [c["clv"] for c in answer.json()["customers"]]
    # From purchases: the customer's exact periods; from a summary: converted from days.
    mine = transactions[transactions["customer_id"] == customer]
    exact = with_period_columns(model, summarize(mine, AS_OF), mine, AS_OF)
    assert exact[PERIOD_COLUMNS].notna().all(axis=None)
    days = pd.DataFrame([summary], index=pd.Index(["S1"], name="customer_id"))
    for block, rows in zip(got, (exact, days), strict=True):
        expected = model.predict(rows).iloc[0]
        for column in ("expected_purchases", "probability_alive", "expected_spend", "clv"):
            assert block[column] == expected[column], column
        assert block["clv_lower"] == pytest.approx(expected["clv_lower"], rel=1e-12)
        assert block["horizon_days"] == 365
    assert 0 <= got[1]["probability_alive"] <= 1 and got[1]["clv"] > 0
    # The segments route reads P(alive) from the same model.
    segments = client.post("/v1/segments", json=body)
    assert segments.status_code == 200, segments.text


def test_invocations_take_a_summary_with_or_without_periods(trained):
    client, app, _ = trained
    model = _estimators(app)["clv"]
    row = {
        "frequency": 5.0,
        "recency": 300.0,
        "T": 600.0,
        "monetary_value": 40.0,
        "margin_rate": None,
        "tenure_days": 600.0,
        "total_revenue": 240.0,
    }
    with_periods = {**row, "period_frequency": 3.0, "period_recency": 9.0, "periods": 19.0}
    answer = client.post(
        "/v1/models/cvm-clv/invocations", json={"dataframe_records": [row, with_periods]}
    )
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    frame = pd.DataFrame([row, with_periods]).astype(float)
    expected = model.predict(frame)
    for got, (_, want) in zip(predictions, expected.iterrows(), strict=True):
        assert got["clv"] == pytest.approx(want["clv"], rel=1e-12)
        assert got["expected_purchases"] == pytest.approx(want["expected_purchases"], rel=1e-12)
    # The periods sent are used (3 of 9, last at 9), not the conversion's (5 of 10, last at 10).
    x, t_x, n = model.periods_of(frame)
    assert (x.tolist(), t_x.tolist(), n.tolist()) == ([5.0, 3.0], [10.0, 9.0], [19.0, 19.0])
    assert predictions[1]["clv"] != predictions[0]["clv"]
    bad = {**with_periods, "period_frequency": 12.0}
    refused = client.post("/v1/models/cvm-clv/invocations", json={"dataframe_records": [bad]})
    assert refused.status_code == 422
    assert refused.json()["error"]["message"].startswith(
        "period_frequency is greater than period_recency (rows [0])"
    )


def test_batch_scoring_uses_each_customers_periods(trained):
    _, app, transactions = trained
    models = _estimators(app)
    scored = batch.score_customers(models, transactions, None, AS_OF, progress=lambda m: None)
    model = models["clv"]
    exact = with_period_columns(model, summarize(transactions, AS_OF), transactions, AS_OF)
    np.testing.assert_array_equal(
        scored.set_index("customer_id").loc[exact.index, "clv"], model.predict(exact)["clv"]
    )


def test_spark_scoring_refuses_a_bgbb_champion(trained, monkeypatch):
    from models.exceptions import CVMError
    from training import tracking
    from training.spark.score import resolve_versions, score_customers

    client, app, _ = trained
    uri = app.state.settings.mlflow_tracking_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    try:
        tracking.setup()
        versions = resolve_versions()
        with pytest.raises(CVMError) as caught:  # before any Spark work
            score_customers(None, None, None, pd.Timestamp(AS_OF), versions, 0)
    finally:
        monkeypatch.undo()
        tracking.setup()
    assert str(caught.value) == (
        "cvm-clv v1 (@champion) is a BG/BB model (periods of a month), which the Spark engine "
        "does not score: leave out --engine spark"
    )


def test_spark_engine_refuses_bgbb_before_starting(tmp_path):
    result = cvm(
        "train",
        "--engine",
        "spark",
        "--model",
        "bgbb",
        "--transactions",
        "x.csv",
        home=tmp_path,
        timeout=600,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: --model bgbb and --period (BG/BB for discrete-opportunity data) are trained by "
        "the pandas engine only: leave out --engine spark"
    )
