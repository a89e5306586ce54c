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
