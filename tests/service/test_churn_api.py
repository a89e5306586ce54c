"""POST /v1/churn: probability, band, reasons with churn types, alerts."""

import pandas as pd
import pytest

from models.churn.features import churn_features
from tests.conftest import purchases

TYPES = {"product", "price", "service", "benefit", "management", "industry", "natural"}


def test_churn_with_reasons_types_and_alerts(client, demo_data, trained_store):
    transactions, customers, _ = demo_data
    cid = customers["customer_id"].iloc[5]
    rows = transactions[transactions["customer_id"] == cid]
    attributes = {
        "region": customers["region"].iloc[5],
        "complaints": int(customers["complaints"].iloc[5]),
    }
    payload = {
        "as_of": "2025-12-31",
        "customers": [
            {
                "customer_id": cid,
                "transactions": purchases(transactions, cid),
                "attributes": attributes,
            },
            {
                "customer_id": "lapsed",
                "summary": {"frequency": 5, "recency": 100, "T": 600, "monetary_value": 40.0},
            },
        ],
    }
    response = client.post("/v1/churn", json=payload)
    assert response.status_code == 200, response.text
    first, lapsed = response.json()["customers"]
    model = trained_store["result"].models["churn"]
    sent = rows[["customer_id", "timestamp", "amount"]]
    attribute_table = pd.DataFrame([{"customer_id": cid, **attributes}])
    features = churn_features(sent, pd.Timestamp("2025-12-31"), attribute_table)
    expected = model.predict_proba(features.reindex(columns=list(model.feature_names_in_)))[0, 1]
    assert first["probability"] == pytest.approx(expected, rel=1e-9)
    for body in (first, lapsed):
        assert len(body["reasons"]) == 3
        assert {r["type"] for r in body["reasons"]} <= TYPES
        assert body["churn_type"] == body["reasons"][0]["type"]
        assert body["risk_band"] in {"low", "medium", "high"}
    # 500 days without a purchase after buying every ~20 days: overdue.
    assert any("usual gap" in alert for alert in lapsed["alerts"])
    assert lapsed["probability"] > 0.5


def test_repeat_purchases_with_a_recency_of_zero_are_scored_everywhere(client):
    """A summary with repeat purchases but recency 0 (all on the first day): the usual gap is
    taken as one day (purchases count by day), so /v1/churn explains it (it was a 422 that
    blamed values too large) and gives the probability /v1/customers/score gives."""
    summary = {"frequency": 3, "recency": 0, "T": 100, "monetary_value": 20.0}
    body = {"as_of": "2025-12-31", "customers": [{"customer_id": "a", "summary": summary}]}
    churn = client.post("/v1/churn", json=body)
    assert churn.status_code == 200, churn.text
    view = client.post("/v1/customers/score", json=body)
    assert view.status_code == 200, view.text
    got = churn.json()["customers"][0]
    assert got["probability"] == view.json()["customers"][0]["churn"]["probability"]
    # the features behind it: a one-day gap, 100 days since the last purchase day
    from models.churn.features import churn_features_from_summary

    row = {"frequency": 3.0, "tenure_days": 100.0, "days_since_last": 100.0}  # as the view has it
    frame = pd.DataFrame([row], index=pd.Index(["a"], name="customer_id"))
    features = churn_features_from_summary(frame, None, pd.Timestamp("2025-12-31"))
    assert features.loc["a", "mean_gap_days"] == 1.0
    assert features.loc["a", "gap_ratio"] == 100.0
