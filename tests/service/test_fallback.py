"""A champion that does not load: the service says which version it serves instead and why,
a new replica falls back to the previous champion, and promotion refuses such a version."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from tests.service.store_copies import broken_copy, copy_store, register_again, registry

ALL_ONE = {"segmentation": "1", "churn": "1", "clv": "1"}
SCORE = {
    "customers": [
        {
            "customer_id": "a",
            "summary": {"frequency": 2, "recency": 30, "T": 90, "monetary_value": 20.0},
        }
    ]
}


@pytest.fixture
def live(trained_store, tmp_path):
    return copy_store(trained_store["uri"], tmp_path / "live")


def described(client: TestClient, family: str) -> dict:
    return next(m for m in client.get("/v1/models").json()["models"] if m["family"] == family)


def metric(client: TestClient, sample: str, **labels: str) -> float:
    """The value of one sample of /metrics (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in client.get("/metrics").text.splitlines():
        match = re.fullmatch(rf"{sample}\{{(.*)\}} (\S+)", line)
        if match and sorted(match.group(1).split(",")) == sorted(wanted.split(",")):
            return float(match.group(2))
    return 0.0


def test_a_champion_that_fails_to_load_is_shown_as_not_served(live, tmp_path):
    app = create_app(Settings(mlflow_tracking_uri=live, reload_interval=0))
    with TestClient(app) as client:
        assert app.state.store.wait(120), app.state.store.error
        broken = register_again(live, "clv", source=broken_copy(live, "clv", tmp_path / "b"))
        assert broken == "2"

        body = client.post("/v1/admin/reload").json()
        assert body["changed"] == {} and body["versions"] == ALL_ONE
        error = body["errors"]["clv"]
        clv = described(client, "clv")
        assert (clv["version"], clv["alias"], clv["fallback"]) == ("1", None, True)
        assert clv["alias_target"] == {"alias": "champion", "version": "2", "error": error}
        assert metric(client, "cvm_model_loads_total", family="clv", version="2", outcome="error")
        assert metric(client, "cvm_model_fallback", family="clv", version="1", instead_of="2")
        assert metric(client, "cvm_model_info", family="clv", name="cvm-clv", version="1", alias="")
        ready = client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "models": ALL_ONE,
            "fallback": {"clv": {"version": "1", "instead_of": "2"}},
            "errors": {"clv": error},
        }
        assert described(client, "churn")["alias"] == "champion"  # the others are unchanged

        registry(live).set_registered_model_alias("cvm-clv", "champion", "1")  # repaired
        assert client.post("/v1/admin/reload").json()["errors"] == {}
        clv = described(client, "clv")
        assert (clv["alias"], clv["fallback"], clv["alias_target"]) == ("champion", False, None)
        assert client.get("/health/ready").json() == {"status": "ready", "models": ALL_ONE}
        assert metric(client, "cvm_model_fallback", family="clv", version="1", instead_of="2") == 0


def test_a_new_replica_with_a_broken_champion_serves_the_previous_champion(live, tmp_path, caplog):
    register_again(live, "churn", source=broken_copy(live, "churn", tmp_path / "b"))
    app = create_app(Settings(mlflow_tracking_uri=live, reload_interval=0))
    with caplog.at_level(logging.ERROR, logger="cvm.models"), TestClient(app) as client:
        assert app.state.store.wait(120), app.state.store.error  # ready, not 503 forever
        ready = client.get("/health/ready")
        assert ready.status_code == 200
        body = ready.json()
        assert body["models"] == ALL_ONE
        assert body["fallback"] == {"churn": {"version": "1", "instead_of": "2"}}
        assert set(body["errors"]) == {"churn"}
        churn = described(client, "churn")
        assert (churn["version"], churn["alias"], churn["fallback"]) == ("1", None, True)
        assert churn["alias_target"]["version"] == "2"
        assert churn["alias_target"]["error"] == body["errors"]["churn"]
        assert metric(client, "cvm_model_fallback", family="churn", version="1", instead_of="2")
        scored = client.post("/v1/customers/score", json=SCORE)
        assert scored.status_code == 200
        assert scored.json()["model_versions"] == ALL_ONE
    loud = [r.getMessage() for r in caplog.records if "FALLBACK" in r.getMessage()]
    assert loud and all(r.levelno == logging.ERROR for r in caplog.records if "FALLBACK" in r.msg)
    assert loud[0].startswith(
        "loading churn v2 failed; FALLBACK: serving v1 in its place until @champion loads: "
    )


def test_a_broken_champion_without_a_previous_one_leaves_the_replica_not_ready(live, tmp_path):
    register_again(
        live, "clv", source=broken_copy(live, "clv", tmp_path / "b"), previous_champion=False
    )
    app = create_app(Settings(mlflow_tracking_uri=live, reload_interval=0))
    with TestClient(app) as client:
        assert app.state.store.wait(120) is False
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["error"]["message"].startswith("clv: ")


def test_the_admin_api_refuses_to_promote_a_version_that_does_not_load(live, tmp_path):
    broken = register_again(
        live, "clv", alias="challenger", source=broken_copy(live, "clv", tmp_path / "b")
    )
    app = create_app(Settings(mlflow_tracking_uri=live, reload_interval=0))
    with TestClient(app) as client:
        assert app.state.store.wait(120), app.state.store.error
        refused = client.post("/v1/admin/promote", json={"family": "clv", "force": True})
        assert refused.status_code == 409
        error = refused.json()["error"]
        assert error["code"] == "registry_conflict"
        assert error["message"].startswith(
            f"cvm-clv v{broken} was not promoted: it does not load and score its input example ("
        )
        assert error["message"].endswith(
            "). @champion stays on v1. Register a version that loads (cvm retrain); to promote "
            "it anyway, skip the check (cvm promote --skip-load-check, or "
            '"skip_load_check": true)'
        )
        client_ = registry(live)
        assert str(client_.get_model_version_by_alias("cvm-clv", "champion").version) == "1"
        assert str(client_.get_model_version_by_alias("cvm-clv", "challenger").version) == broken

        forced = client.post(
            "/v1/admin/promote", json={"family": "clv", "force": True, "skip_load_check": True}
        )
        assert forced.status_code == 200, forced.text
        assert forced.json()["served"]["versions"]["clv"] == "1"  # the service falls back
        assert described(client, "clv")["alias_target"]["version"] == broken
