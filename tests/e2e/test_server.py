"""The real server process: start on a free local port, wait for readiness, score over HTTP."""

import os

import httpx
import pytest

from tests.conftest import purchases
from tests.e2e.server import running_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(trained_store, tmp_path_factory):
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": trained_store["uri"],
        "CVM_HOME": trained_store["home"],
    }
    with running_server(env, tmp_path_factory.mktemp("server") / "server.log") as base:
        yield base


def test_score_demo_customer_over_http(server, demo_data):
    transactions, customers, _ = demo_data
    cid = customers["customer_id"].iloc[3]
    payload = {
        "as_of": "2025-12-31",
        "customers": [
            {
                "customer_id": cid,
                "transactions": purchases(transactions, cid),
                "attributes": {"region": customers["region"].iloc[3]},
            }
        ],
    }
    response = httpx.post(f"{server}/v1/customers/score", json=payload, timeout=30)
    assert response.status_code == 200, response.text
    scored = response.json()["customers"][0]
    assert scored["customer_id"] == cid
    for key in (
        "expected_purchases",
        "probability_alive",
        "expected_spend",
        "clv",
        "clv_lower",
        "clv_upper",
    ):
        assert isinstance(scored["clv"][key], float)
    assert 0 <= scored["churn"]["probability"] <= 1
    assert scored["segments"]["rfm"]["label"]
    assert scored["recommended_action"]["action"]
    models = httpx.get(f"{server}/v1/models", timeout=10).json()
    assert {m["name"] for m in models["models"]} == {"cvm-segmentation", "cvm-churn", "cvm-clv"}
