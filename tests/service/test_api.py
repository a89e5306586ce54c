"""The HTTP API against models trained into a temporary MLflow store."""

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from tests.conftest import purchases


def _customer(demo_data, index=0):
    transactions, customers, _ = demo_data
    cid = customers["customer_id"].iloc[index]
    attributes = customers.iloc[index][
        ["region", "age", "acquisition_channel", "complaints"]
    ].to_dict()
    return {
        "customer_id": cid,
        "transactions": purchases(transactions, cid, "cost", "channel"),
        "attributes": {k: (v.item() if hasattr(v, "item") else v) for k, v in attributes.items()},
    }


def test_health_and_models(client, trained_store):
    assert client.get("/health/live").json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "models": {"segmentation": "1", "churn": "1", "clv": "1"},
    }
    body = client.get("/v1/models").json()
    assert body["ready"] is True
    by_family = {m["family"]: m for m in body["models"]}
    assert set(by_family) == {"segmentation", "churn", "clv"}
    churn = by_family["churn"]
    assert churn["name"] == "cvm-churn" and churn["version"] == "1" and churn["alias"] == "champion"
    assert churn["run_id"] == trained_store["registered"]["churn"]["run_id"]
    expected_auc = trained_store["result"].metrics["churn_roc_auc"]
    assert churn["metrics"]["churn_roc_auc"] == pytest.approx(expected_auc)
    assert churn["as_of"] == "2025-12-31"
    assert body["warnings"] == []  # every served version was trained as of one date


def test_models_warn_when_served_versions_have_different_as_of_dates(client, caplog):
    """After a partial promotion the families describe customers at different dates."""
    from dataclasses import replace

    store = client.app.state.store
    served = store.models
    try:
        store.models = {**served, "clv": replace(served["clv"], tags={"as_of": "2025-09-30"})}
        warnings = client.get("/v1/models").json()["warnings"]
        assert len(warnings) == 1
        assert (
            "different dates (churn 2025-12-31, clv 2025-09-30, segmentation 2025-12-31)"
            in (warnings[0])
        )
    finally:
        store.models = served


def test_admin_tolerances_take_numbers_or_percentages(client):
    bad = client.post(
        "/v1/admin/promote", json={"family": "clv", "tolerances": {"clv_holdout_mae": "5 pc"}}
    )
    assert bad.status_code == 422
    assert "percentage of the champion's value ('5%')" in bad.text


def test_score_demo_customer_from_transactions_matches_training(client, demo_data, trained_store):
    customer = _customer(demo_data)
    response = client.post(
        "/v1/customers/score", json={"as_of": "2025-12-31", "customers": [customer]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["as_of"] == "2025-12-31"
    assert body["model_versions"] == {"segmentation": "1", "churn": "1", "clv": "1"}
    (scored,) = body["customers"]
    assert scored["customer_id"] == customer["customer_id"]
    assert set(scored) == {
        "customer_id",
        "segments",
        "ahp_value_index",
        "churn",
        "clv",
        "value",
        "value_at_risk",
        "recommended_action",
        "notes",
    }
    assert isinstance(scored["notes"], list)
    assert set(scored["clv"]) >= {
        "expected_purchases",
        "probability_alive",
        "expected_spend",
        "clv",
        "clv_lower",
        "clv_upper",
    }
    # The service computes what the trained models compute offline (same feature function).
    from models.churn.features import churn_features
    from models.customer_view import segmentation_input
    from models.features import summarize

    transactions, customers, _ = demo_data
    models = trained_store["result"].models
    summary = summarize(transactions, "2025-12-31").loc[[customer["customer_id"]]]
    offline_clv = models["clv"].predict(summary).iloc[0]
    assert scored["clv"]["clv"] == pytest.approx(offline_clv["clv"], rel=1e-9)
    assert scored["clv"]["probability_alive"] == pytest.approx(
        offline_clv["probability_alive"], rel=1e-9
    )
    table = segmentation_input(summary, models["clv"].predict(summary))
    rfm = models["segmentation"].predict(table).iloc[0]
    assert scored["segments"]["rfm"]["label"] == rfm["rfm_segment"]
    assert scored["segments"]["rfm"]["code"] == rfm["rfm_code"]
    assert scored["segments"]["value_matrix"]["label"] == rfm["value_type"]
    assert scored["segments"]["behaviour"]["label"] == str(rfm["cluster"])
    assert scored["segments"]["lifecycle"]["label"] == rfm["lifecycle_stage"]
    assert scored["segments"]["nine_grid"]["strategy"] == rfm["nine_grid_strategy"]
    assert 0 <= scored["ahp_value_index"] <= 100
    assert scored["ahp_value_index"] == pytest.approx(rfm["ahp_value_index"], rel=1e-12)
    churn = models["churn"]
    rows = transactions[transactions["customer_id"] == customer["customer_id"]][
        ["customer_id", "timestamp", "amount", "cost", "channel"]
    ]
    attributes = pd.DataFrame([{"customer_id": customer["customer_id"], **customer["attributes"]}])
    features = churn_features(rows, pd.Timestamp("2025-12-31"), attributes).reindex(
        columns=list(churn.feature_names_in_)
    )
    assert scored["churn"]["probability"] == pytest.approx(
        churn.predict_proba(features)[0, 1], rel=1e-9
    )
    assert scored["value_at_risk"] == pytest.approx(
        scored["churn"]["probability"] * max(scored["clv"]["clv"], 0)
    )


def test_score_summary_customer_and_batch_order(client):
    customers = [
        {
            "customer_id": "s1",
            "summary": {"frequency": 6, "recency": 300, "T": 310, "monetary_value": 80.0},
        },
        {
            "customer_id": "s0",
            "summary": {"frequency": 0, "recency": 0, "T": 400, "monetary_value": 0},
        },
    ]
    body = client.post(
        "/v1/customers/score", json={"as_of": "2025-12-31", "customers": customers}
    ).json()
    assert [c["customer_id"] for c in body["customers"]] == ["s1", "s0"]
    active, lapsed = body["customers"]
    assert active["clv"]["expected_purchases"] > lapsed["clv"]["expected_purchases"]
    assert 0 < lapsed["clv"]["probability_alive"] <= 1
    assert active["segments"]["rfm"]["r_score"] > lapsed["segments"]["rfm"]["r_score"]


@pytest.mark.parametrize(
    ("payload", "status", "path"),
    [
        ({"customers": []}, 422, "customers"),
        ({"customers": [{"customer_id": "a"}]}, 422, "customers.0"),
        (
            {
                "customers": [
                    {
                        "customer_id": "a",
                        "summary": {"frequency": 1, "recency": 50, "T": 10, "monetary_value": 5},
                    }
                ]
            },
            422,
            "customers.0.summary",
        ),
        (
            {
                "customers": [
                    {"customer_id": "a", "transactions": [{"timestamp": "not a date", "amount": 5}]}
                ]
            },
            422,
            "customers.0.transactions.0.timestamp",
        ),
        (
            {
                "customers": [
                    {
                        "customer_id": "a",
                        "transactions": [{"timestamp": "2025-01-01", "amount": -5}],
                    }
                ]
            },
            422,
            "customers.0.transactions.0.amount",
        ),
        (
            {
                "as_of": "2024-01-01",
                "customers": [
                    {"customer_id": "a", "transactions": [{"timestamp": "2025-01-01", "amount": 5}]}
                ],
            },
            422,
            "customers.0.transactions",
        ),
        (
            {
                "customers": [
                    {
                        "customer_id": "a",
                        "summary": {"frequency": 0, "recency": 0, "T": 1, "monetary_value": 0},
                    },
                    {
                        "customer_id": "a",
                        "summary": {"frequency": 0, "recency": 0, "T": 1, "monetary_value": 0},
                    },
                ]
            },
            422,
            "customers.1.customer_id",
        ),
    ],
)
def test_bad_input_names_the_field(client, payload, status, path):
    response = client.post("/v1/customers/score", json=payload)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["details"][0]["path"] == path
    assert "Traceback" not in response.text


def test_malformed_json_and_unknown_route(client):
    response = client.post(
        "/v1/customers/score", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"
    assert client.get("/nope").json()["error"]["code"] == "not_found"


def test_not_ready_without_models(tmp_path):
    settings = Settings(mlflow_tracking_uri=f"sqlite:///{tmp_path}/empty.db")
    app = create_app(settings)
    with TestClient(app) as c:
        app.state.store.wait(120)
        ready = c.get("/health/ready")
        assert ready.status_code == 503
        assert "train first" in ready.json()["error"]["message"]
        response = c.post(
            "/v1/customers/score",
            json={
                "customers": [
                    {
                        "customer_id": "a",
                        "summary": {"frequency": 0, "recency": 0, "T": 1, "monetary_value": 0},
                    }
                ]
            },
        )
        assert response.status_code == 503 and response.json()["error"]["code"] == "not_ready"
        assert c.get("/v1/models").json()["ready"] is False


def test_openapi_documents_examples_and_units(client):
    spec = client.get("/openapi.json").json()
    assert "/v1/customers/score" in spec["paths"]
    schemas = spec["components"]["schemas"]
    assert "currency" in schemas["CLVOut"]["properties"]["clv"]["description"]
    assert schemas["ScoreRequest"]["examples"]


def test_dates_outside_the_supported_range_name_the_field(client):
    payload = {
        "as_of": "0001-01-01",
        "customers": [
            {"customer_id": "a", "transactions": [{"timestamp": "2025-01-01", "amount": 5}]}
        ],
    }
    response = client.post("/v1/customers/score", json=payload)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == "as_of"
    payload = {
        "customers": [
            {
                "customer_id": "a",
                "transactions": [{"timestamp": "0082-01-01T00:00:00", "amount": 5}],
            }
        ]
    }
    response = client.post("/v1/customers/score", json=payload)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == "customers.0.transactions.0.timestamp"


def _forty_customers(demo_data) -> dict:
    transactions, _, _ = demo_data
    ids = transactions["customer_id"].unique()[:40]
    customers = [{"customer_id": cid, "transactions": purchases(transactions, cid)} for cid in ids]
    return {"as_of": "2025-12-31", "customers": customers}


def test_drift_is_silent_below_its_minimum_sample(client, demo_data):
    """40 customers are far below CVM_DRIFT_MIN_ROWS (500): no PSI, no retrain, and the
    report says so (six customers used to raise retrain: true with PSI 3-8)."""
    assert client.post("/v1/customers/score", json=_forty_customers(demo_data)).status_code == 200
    models = {m["family"]: m for m in client.get("/v1/models").json()["models"]}
    drift = models["clv"]["drift"]
    assert drift["rows"] >= 40 and drift["min_rows"] == 500
    assert drift["status"] == f"not enough data yet: {drift['rows']} of 500 customers scored"
    assert drift["psi"] == {} and drift["retrain"] is False
    assert 'cvm_feature_psi{family="clv"' not in client.get("/metrics").text


def test_drift_psi_in_models_and_metrics(trained_store, demo_data):
    settings = Settings(
        mlflow_tracking_uri=trained_store["uri"], reload_interval=0, drift_min_rows=40
    )
    app = create_app(settings)
    with TestClient(app) as client:
        assert app.state.store.wait(120), app.state.store.error
        answer = client.post("/v1/customers/score", json=_forty_customers(demo_data))
        assert answer.status_code == 200
        models = {m["family"]: m for m in client.get("/v1/models").json()["models"]}
        drift = models["clv"]["drift"]
        assert drift["rows"] == 40 and drift["threshold"] == 0.2
        assert drift["min_rows"] == 40 and drift["status"] == "ok"
        assert set(drift["psi"]) >= {"frequency", "recency", "T", "monetary_value"}
        metrics = client.get("/metrics").text
        assert 'cvm_feature_psi{family="clv"' in metrics
