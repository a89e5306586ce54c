"""The service and the optional uplift family: ready without it, served (and reloaded, and
promoted) when the registry has cvm-uplift, its load errors reported like the others'."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
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
        assert list(predictions[0]) == [f"uplift_{o}" for o in OFFERS]
        got = np.array([[p[f"uplift_{o}"] for o in OFFERS] for p in predictions])
        np.testing.assert_allclose(got, result.models["uplift"].predict(example), rtol=1e-12)


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
