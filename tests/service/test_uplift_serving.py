"""The service and the optional uplift family: ready without it, served (and reloaded, and
promoted) when the registry has cvm-uplift, its load errors reported like the others'."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from tests.conftest import purchases
from tests.service.store_copies import copy_store, register_again, registry

OFFERS = ["discount", "reminder", "voucher"]


def app_on(uri: str, **settings):
    return create_app(Settings(mlflow_tracking_uri=uri, reload_interval=0, **settings))


@pytest.fixture(scope="module")
def uplift_client(uplift_store):
    app = app_on(uplift_store["uri"])
    with TestClient(app) as c:
        assert app.state.store.wait(120), app.state.store.error
        yield c


def rows(frame):
    return [
        [None if isinstance(v, float) and math.isnan(v) else v for v in row]
        for row in frame.astype(object).itertuples(index=False)
    ]


def test_ready_without_an_uplift_model(client):
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert set(body["models"]) == {"segmentation", "churn", "clv"}
    assert "errors" not in body  # a registry that never saw campaigns is no error
    models = client.get("/v1/models").json()
    assert models["errors"] == {} and models["ready"]
    assert {m["family"] for m in models["models"]} == {"segmentation", "churn", "clv"}
    answer = client.post(
        "/v1/models/cvm-uplift/invocations",
        json={"dataframe_split": {"columns": ["frequency"], "data": [[1.0]]}},
    )
    assert answer.status_code == 404  # not a server error: the registry has no uplift model
    assert "cvm train --campaigns" in answer.json()["error"]["message"]


def test_uplift_served_when_registered(uplift_client, uplift_store):
    ready = uplift_client.get("/health/ready").json()
    assert ready["models"] == {"segmentation": "1", "churn": "1", "clv": "1", "uplift": "1"}
    models = {m["family"]: m for m in uplift_client.get("/v1/models").json()["models"]}
    uplift = models["uplift"]
    assert uplift["name"] == "cvm-uplift" and uplift["alias"] == "champion"
    assert uplift["metrics"]["uplift_qini"] == pytest.approx(
        uplift_store["result"].metrics["uplift_qini"]
    )
    # the same input columns as cvm-churn
    assert uplift["signature"] == models["churn"]["signature"]
    # customer views name the versions that computed them: not the uplift model
    answer = uplift_client.post(
        "/v1/customers/score",
        json={
            "customers": [
                {
                    "customer_id": "x",
                    "summary": {
                        "frequency": 2,
                        "recency": 30,
                        "T": 90,
                        "monetary_value": 20.0,
                    },
                }
            ]
        },
    )
    assert answer.status_code == 200, answer.text
    assert set(answer.json()["model_versions"]) == {"segmentation", "churn", "clv"}


@pytest.mark.parametrize("name", ["cvm-uplift", "cvm-churn"])
def test_churn_feature_rows_post_to_uplift_invocations(uplift_client, uplift_store, name):
    result = uplift_store["result"]
    example = result.input_examples["churn"]
    body = {"dataframe_split": {"columns": list(example.columns), "data": rows(example)}}
    answer = uplift_client.post(f"/v1/models/{name}/invocations", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Model-Name"] == name
    predictions = answer.json()["predictions"]
    assert len(predictions) == len(example)
    if name == "cvm-uplift":
        columns = [f"uplift_{o}" for o in OFFERS] + [f"spend_uplift_{o}" for o in OFFERS]
        assert list(predictions[0]) == columns
        got = np.array([[p[c] for c in columns] for p in predictions])
        expected = result.models["uplift"].predict_frame(example)[columns].to_numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_uplift_invocations_as_records(uplift_client, uplift_store):
    example = uplift_store["result"].input_examples["churn"]
    records = [dict(zip(example.columns, row, strict=True)) for row in rows(example)]
    answer = uplift_client.post(
        "/v1/models/cvm-uplift/invocations", json={"dataframe_records": records}
    )
    assert answer.status_code == 200, answer.text
    missing = uplift_client.post(
        "/v1/models/cvm-uplift/invocations",
        json={"dataframe_records": [{k: v for k, v in records[0].items() if k != "frequency"}]},
    )
    assert missing.status_code == 422
    assert "frequency" in missing.text


def _posted(uplift_data, n=40):
    transactions, customers, _, _ = uplift_data
    out = []
    for index in range(n):
        cid = customers["customer_id"].iloc[index]
        attributes = customers.iloc[index][
            ["region", "age", "acquisition_channel", "complaints", "signup_date"]
        ].to_dict()
        attributes["signup_date"] = str(attributes["signup_date"])[:10]
        out.append(
            {
                "customer_id": cid,
                "transactions": purchases(transactions, cid, "cost", "channel"),
                "attributes": {
                    k: (v.item() if hasattr(v, "item") else v) for k, v in attributes.items()
                },
            }
        )
    return out


def test_the_plan_route_uses_the_served_uplift_model(uplift_client, uplift_store, uplift_data):
    """With cvm-uplift served, POST /v1/campaigns/plan takes each offer's uplift from it: every
    contact's expected save is the lower confidence bound of the model's estimate from that
    customer's churn features (as /v1/churn/score builds them), estimate − 1 × its bootstrap
    standard error (with ``uplift_z`` 0: the estimate), the versions name the uplift model and
    the plan is not assumption-based; an offer the model never saw is a 422 naming it."""
    from models.churn.features import churn_features

    transactions, customers, _, _ = uplift_data
    posted = _posted(uplift_data)
    body = {
        "as_of": "2025-12-31",
        "customers": posted,
        "offers": [{"id": "reminder", "cost": 1.0}, {"id": "discount", "cost": 6.0}],
        "budget": 40.0,
    }
    answer = uplift_client.post("/v1/campaigns/plan", json=body)
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert plan["model_versions"] == {"segmentation": "1", "churn": "1", "clv": "1", "uplift": "1"}
    summary = plan["summary"]
    assert summary["assumption_based"] is False and summary["save_rates"] is None
    assert 0 < summary["customers_contacted"] < len(posted)
    assert summary["expected_spend"] <= 40.0 + 1e-9
    model = uplift_store["result"].models["uplift"]
    ids = [c["customer_id"] for c in posted]
    tx = transactions[transactions["customer_id"].isin(ids)]
    attributes = customers[customers["customer_id"].isin(ids)][
        ["customer_id", "region", "age", "acquisition_channel", "complaints", "signup_date"]
    ]
    features = churn_features(tx, pd.Timestamp("2025-12-31"), attributes).reindex(ids)
    rows = features.reindex(columns=list(model.feature_names_in_))
    effects, sd = model.predict(rows), model.predict_sd(rows)
    assert len(model.replicas_) == 8 and (sd > 0).all()
    assert summary["uplift_lower_bound"] == {"z": 1.0, "replicas": 8}
    column = {o: i for i, o in enumerate(model.offers_)}
    for contact in plan["contacts"]:
        row = ids.index(contact["customer_id"])
        expected = effects[row, column[contact["offer"]]] - sd[row, column[contact["offer"]]]
        assert contact["expected_save"] == pytest.approx(expected, rel=1e-9)
        assert expected > 0
    point = uplift_client.post("/v1/campaigns/plan", json={**body, "uplift_z": 0}).json()
    assert point["summary"]["uplift_lower_bound"] is None
    for contact in point["contacts"]:
        row = ids.index(contact["customer_id"])
        expected = effects[row, column[contact["offer"]]]
        assert contact["expected_save"] == pytest.approx(expected, rel=1e-9)
    assert point["summary"]["customers_contacted"] >= summary["customers_contacted"]
    # a customer-table field the request lacks is a missing value, as for the churn model
    without = [
        {**c, "attributes": {k: v for k, v in c["attributes"].items() if k != "signup_date"}}
        for c in posted
    ]
    lacking = uplift_client.post("/v1/campaigns/plan", json={**body, "customers": without})
    assert lacking.status_code == 200, lacking.text
    assert lacking.json()["summary"]["assumption_based"] is False
    unknown = uplift_client.post(
        "/v1/campaigns/plan", json={**body, "offers": [{"id": "sms", "cost": 1.0}]}
    )
    assert unknown.status_code == 422
    message = unknown.json()["error"]["message"]
    assert "sms" in message and "discount" in message


@pytest.fixture
def copied(uplift_store, tmp_path, monkeypatch):
    """A copy of the uplift store, MLflow's process-wide URI on it meanwhile (a new version
    of a logged model is resolved there)."""
    import mlflow

    from training import tracking

    uri = copy_store(uplift_store["uri"], tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield uri
    monkeypatch.undo()
    tracking.setup()


def test_hot_reload_and_admin_promote_of_uplift(copied):
    client = registry(copied)
    app = app_on(copied)
    with TestClient(app) as c:
        assert app.state.store.wait(120), app.state.store.error
        second = register_again(copied, "uplift", alias="challenger")
        assert second == "2"
        refused = c.post("/v1/admin/promote", json={"family": "uplift"})
        assert refused.status_code == 409  # no holdout comparison: run cvm retrain
        assert "cvm-uplift v2 has no holdout comparison" in refused.text
        promoted = c.post("/v1/admin/promote", json={"family": "uplift", "force": True})
        assert promoted.status_code == 200, promoted.text
        assert promoted.json()["served"]["versions"]["uplift"] == "2"
        back = c.post("/v1/admin/rollback", json={"family": "uplift", "reason": "test"})
        assert back.status_code == 200, back.text
        assert back.json()["served"]["versions"]["uplift"] == "1"
        # an alias moved in the registry is picked up by a reload
        client.set_registered_model_alias("cvm-uplift", "champion", second)
        reload = c.post("/v1/admin/reload").json()
        assert reload["changed"] == {"uplift": "1 -> 2"}
        assert reload["errors"] == {}


def test_uplift_load_errors_are_reported(copied):
    app = app_on(copied, uplift_model="9")
    with TestClient(app) as c:
        assert app.state.store.wait(120)  # the three required families: ready
        ready = c.get("/health/ready").json()
        assert "uplift" not in ready["models"]
        assert "cvm-uplift has no version 9" in ready["errors"]["uplift"]
        assert "cvm-uplift has no version 9" in c.get("/v1/models").json()["errors"]["uplift"]
