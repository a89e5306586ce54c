"""``value`` in the customer view: historical, current and potential value of hand-made
customers, by purchases and by summary, equal on the fast and the pandas path."""

from __future__ import annotations

from datetime import date

import pytest

from service.config import Settings
from service.model_store import ModelStore
from service.schemas import CustomerIn
from service.scoring import RequestNotes, score_customers
from tests.models.test_customer_value import hand_made

AS_OF = "2025-12-31"


def _purchases() -> list[dict]:
    return [
        {"timestamp": t.isoformat(), "amount": a, "cost": c}
        for t, a, c in zip(*(hand_made()[k] for k in ("timestamp", "amount", "cost")), strict=True)
    ]


# 5 purchase days of 50: revenue 250; T < 365, so all of it is in the last 12 months.
RECENT = {"frequency": 4, "recency": 150, "T": 200, "monetary_value": 50.0, "margin_rate": 0.3}
# silent for 364 days: the summary cannot say what the last 12 months held ...
OLD = {"frequency": 4, "recency": 436, "T": 800, "monetary_value": 50.0, "margin_rate": 0.3}
# ... unless it is sent
OLD_SAID = {**OLD, "revenue_12m": 40.0}
# no margin of its own: the CLV model's
NO_MARGIN = {"frequency": 4, "recency": 150, "T": 200, "monetary_value": 50.0}


def _customers() -> list[dict]:
    return [
        {"customer_id": "H1", "transactions": _purchases()},
        {"customer_id": "recent", "summary": RECENT},
        {"customer_id": "old", "summary": OLD},
        {"customer_id": "old_said", "summary": OLD_SAID},
        {"customer_id": "no_margin", "summary": NO_MARGIN},
    ]


@pytest.fixture(scope="module")
def answer(client):
    body = client.post("/v1/customers/score", json={"as_of": AS_OF, "customers": _customers()})
    assert body.status_code == 200, body.text
    return {c["customer_id"]: c for c in body.json()["customers"]}


def test_value_of_the_hand_made_customer(answer):
    value, clv = answer["H1"]["value"], answer["H1"]["clv"]
    # 600 to date, 220 in the 365 days from 2025-01-01, every cost 60 % of the amount
    assert value["historical"] == pytest.approx(240.0, rel=1e-12)
    assert value["current"] == pytest.approx(88.0, rel=1e-12)
    assert value["margin"] == pytest.approx(0.4, rel=1e-12)
    assert value["potential"] == clv["clv"]


def test_value_from_summaries(answer):
    recent, old, said = (answer[k]["value"] for k in ("recent", "old", "old_said"))
    assert recent["historical"] == pytest.approx(75.0, rel=1e-12)  # 50 × 5 × 0.3
    assert recent["current"] == pytest.approx(75.0, rel=1e-12)
    assert recent["margin"] == 0.3
    assert old["historical"] == pytest.approx(75.0, rel=1e-12) and old["current"] is None
    assert said["current"] == pytest.approx(12.0, rel=1e-12)  # 40 × 0.3
    none = answer["no_margin"]
    # the demo models learned margins from costs: the overall margin, as the CLV applies it
    assert none["value"]["margin"] == none["clv"]["margin"]
    assert 0.0 < none["value"]["margin"] < 1.0
    assert none["value"]["historical"] == pytest.approx(250.0 * none["clv"]["margin"])


def test_value_is_in_the_response_schema(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert set(schema["ValueOut"]["properties"]) == {"historical", "current", "potential", "margin"}
    assert "value" in schema["CustomerScore"]["properties"]


def test_fast_and_pandas_paths_give_the_same_value(trained_store):
    store = ModelStore(Settings(mlflow_tracking_uri=trained_store["uri"], reload_interval=0))
    store.start_loading()
    assert store.wait(120), store.error
    try:
        customers = [CustomerIn.model_validate(c) for c in _customers()]
        day = date(2025, 12, 31)
        pandas = score_customers(store, customers, day, RequestNotes(fast=False))
        column_wise = score_customers(store, customers, day, RequestNotes())
    finally:
        store.stop()
    assert [c["value"] for c in pandas["customers"]] == [
        c["value"] for c in column_wise["customers"]
    ]


def test_a_revenue_12m_above_the_total_is_refused(client):
    summary = {**OLD, "total_revenue": 30.0, "revenue_12m": 40.0}
    body = client.post(
        "/v1/customers/score",
        json={"as_of": AS_OF, "customers": [{"customer_id": "x", "summary": summary}]},
    )
    assert body.status_code == 422
    assert "revenue_12m (40.0) cannot exceed total_revenue (30.0)" in body.text
