"""The real server process: start on a free local port, wait for readiness, score over HTTP."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(trained_store):
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": trained_store["uri"],
        "CVM_HOME": trained_store["home"],
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "training", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"server exited early:\n{process.stdout.read()}")
            try:
                if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail("server not ready within 120 s")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def test_score_demo_customer_over_http(server, demo_data):
    transactions, customers, _ = demo_data
    cid = customers["customer_id"].iloc[3]
    rows = transactions[transactions["customer_id"] == cid]
    payload = {
        "as_of": "2025-12-31",
        "customers": [
            {
                "customer_id": cid,
                "transactions": [
                    {"timestamp": t.isoformat(), "amount": float(a)}
                    for t, a in zip(rows["timestamp"], rows["amount"], strict=True)
                ],
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
