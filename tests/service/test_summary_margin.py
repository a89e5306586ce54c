"""A customer sent as a summary with a ``margin_rate`` is valued at that margin, as purchases
with costs at that margin would be: in the value matrix, the churn features and the CLV, on
the fast and the pandas path, on every customer route and on ``/invocations``."""

from __future__ import annotations

from datetime import date

import mlflow
import numpy as np
import pandas as pd
import pytest

from service import fast_scoring
from service.config import Settings
from service.model_store import ModelStore
from service.schemas import CustomerIn
from service.scoring import RequestNotes, build_features, score_customers, segment_customers

AS_OF = "2025-12-31"
# 11 purchase days of 200 on average: revenue 2,200. At margin 0.9 each purchase earns 180,
# at margin −0.5 it loses 100.
SUMMARY = {"frequency": 10, "recency": 300, "T": 330, "monetary_value": 200.0}
MARGINS = {"loss": -0.5, "rich": 0.9}
EXPECTED = {"loss": "stream", "rich": "gold"}  # many repeats; profit below / above the cut


def _customers(margins: dict[str, float | None] = MARGINS) -> list[dict]:
    out = []
    for name, margin in margins.items():
        summary = dict(SUMMARY) if margin is None else {**SUMMARY, "margin_rate": margin}
        out.append({"customer_id": name, "summary": summary})
    return out


@pytest.fixture(scope="module")
def store(trained_store):
    store = ModelStore(Settings(mlflow_tracking_uri=trained_store["uri"], reload_interval=0))
    store.start_loading()
    assert store.wait(120), store.error
    yield store
    store.stop()


def test_the_demo_thresholds_put_the_two_margins_on_either_side(trained_store):
    matrix = trained_store["result"].models["segmentation"].value_matrix_
    print(f"profit threshold {matrix.profit_threshold_:.2f}, repeats {matrix.repeat_threshold_}")
    assert matrix.repeat_threshold_ <= SUMMARY["frequency"]
    assert -0.5 * 200.0 < matrix.profit_threshold_ <= 0.9 * 200.0


@pytest.mark.parametrize("route", ["/v1/customers/score", "/v1/segments"])
def test_the_given_margin_decides_the_value_type(client, route):
    body = client.post(route, json={"as_of": AS_OF, "customers": _customers()})
    assert body.status_code == 200, body.text
    got = {c["customer_id"]: c["segments"]["value_matrix"] for c in body.json()["customers"]}
    assert {k: v["label"] for k, v in got.items()} == EXPECTED
    assert {v["basis"] for v in got.values()} == {"profit"}


def test_the_customer_view_applies_the_margin_to_clv(client):
    body = client.post("/v1/customers/score", json={"as_of": AS_OF, "customers": _customers()})
    clv = {c["customer_id"]: c["clv"] for c in body.json()["customers"]}
    # the demo models learned margins from costs: each customer's own margin is applied
    assert clv["rich"]["margin"] == 0.9 and clv["loss"]["margin"] == -0.5
    assert clv["rich"]["clv"] == pytest.approx(clv["loss"]["clv"] * 0.9 / -0.5, rel=1e-12)


def test_the_audience_of_gold_holds_the_profitable_customer_only(client):
    body = client.post(
        "/v1/segments/audience",
        json={
            "as_of": AS_OF,
            "scheme": "value_matrix",
            "label": "gold",
            "customers": _customers(),
        },
    )
    assert body.status_code == 200, body.text
    assert [c["customer_id"] for c in body.json()["customers"]] == ["rich"]


def test_fast_and_pandas_paths_build_the_same_profit_columns(store):
    customers = [CustomerIn.model_validate(c) for c in _customers({**MARGINS, "unknown": None})]
    summary, features = build_features(customers, date(2025, 12, 31))
    # summarize's definitions: total profit = margin rate × revenue, per purchase / 11
    assert summary["total_profit"].tolist()[:2] == [-1100.0, 1980.0]
    assert summary["profit_per_purchase"].tolist()[:2] == [-100.0, 180.0]
    assert np.isnan(summary.loc["unknown", "total_profit"])
    assert features["profit_per_purchase"].tolist()[:2] == [-100.0, 180.0]
    built = fast_scoring.build(customers, date(2025, 12, 31), False)
    for column in ("total_profit", "profit_per_purchase", "margin_rate"):
        np.testing.assert_array_equal(built.summary[column], summary[column].to_numpy())
        np.testing.assert_array_equal(built.features[column], features[column].to_numpy())

    slow, fast = RequestNotes(fast=False), RequestNotes()
    for route in (score_customers, segment_customers):
        pandas = route(store, customers, date(2025, 12, 31), slow)
        column_wise = route(store, customers, date(2025, 12, 31), fast)
        for answer in (pandas, column_wise):
            labels = [c["segments"]["value_matrix"]["label"] for c in answer["customers"]]
            assert labels[:2] == [EXPECTED["loss"], EXPECTED["rich"]]
        assert pandas == column_wise


def test_invocations_value_a_row_by_its_margin_rate(client, trained_store):
    """A segmentation row with a margin rate and no profit columns (a caller's own summary)."""
    uri = trained_store["uri"]
    client_ml = mlflow.MlflowClient(uri, uri)
    pyfunc = mlflow.pyfunc.load_model(
        client_ml.get_model_version_download_uri("cvm-segmentation", "1")
    )
    example = pyfunc.input_example.reset_index(drop=True).iloc[[0, 0]].reset_index(drop=True)
    frame = example.assign(
        frequency=10.0,
        n_purchases=11.0,
        avg_order_value=200.0,
        total_revenue=2200.0,
        margin_rate=[-0.5, 0.9],
        total_profit=np.nan,
        profit_per_purchase=np.nan,
    )
    rows = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in frame.astype(object).to_dict(orient="records")
    ]
    body = client.post("/v1/models/cvm-segmentation/invocations", json={"dataframe_records": rows})
    assert body.status_code == 200, body.text
    predictions = body.json()["predictions"]
    assert [p["value_type"] for p in predictions] == [EXPECTED["loss"], EXPECTED["rich"]]
    assert [p["profit_per_purchase"] for p in predictions] == [-100.0, 180.0]
    assert pd.Series([p["value_basis"] for p in predictions]).eq("profit").all()


def test_a_margin_whose_profit_overflows_names_the_margin_rate(client):
    customer = {"customer_id": "huge", "summary": {**SUMMARY, "margin_rate": 1e306}}
    body = client.post("/v1/customers/score", json={"as_of": AS_OF, "customers": [customer]})
    assert body.status_code == 422, body.text
    message = (
        "the total profit of customer 'huge', margin_rate × total revenue, is more than about "
        "1.8e308, the largest number the service computes with; send a margin rate such as "
        "0.3, or amounts in a larger currency unit"
    )
    detail = {"path": "customers.0.summary.margin_rate", "message": message, "rows": [0]}
    assert body.json()["error"] == {
        "code": "invalid_input",
        "message": message,
        "details": [detail],
    }
