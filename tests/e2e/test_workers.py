"""``cvm serve --workers 2``: /metrics adds up both workers, a reload asked of one worker reaches
every worker, and requests in flight finish when the server is stopped."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.e2e.server import running_process, wait_for
from tests.service.store_copies import copy_store, register_again

pytestmark = pytest.mark.e2e
CUSTOMER = {
    "customer_id": "w-1",
    "summary": {"frequency": 3, "recency": 200, "T": 300, "monetary_value": 50.0},
}


@pytest.fixture(scope="module")
def served(trained_store, tmp_path_factory):
    """Two workers on a copy of the session's store; reloads only when asked (interval 0)."""
    folder = tmp_path_factory.mktemp("workers")
    uri = copy_store(trained_store["uri"], folder)
    run_dir = folder / "run"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "CVM_RELOAD_INTERVAL": "0",
        "CVM_RUN_DIR": str(run_dir),
        "CVM_LOG_LEVEL": "WARNING",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with running_process(env, folder / "server.log", args=("--workers", "2")) as (base, process):
        wait_for(lambda: len(_workers(base)) == 2, timeout=60)
        yield {"base": base, "uri": uri, "run_dir": run_dir, "process": process}


def _workers(base: str) -> list[dict]:
    return httpx.get(f"{base}/v1/models", timeout=10).json()["workers"] or []


def _per_worker(metrics: Path, route: str) -> dict[str, float]:
    """The requests counted for ``route`` (status 200) in each worker's own counter file."""
    out = {}
    for path in sorted(metrics.glob("counter_*.db")):
        total = 0.0
        for metric in MultiProcessCollector.merge([str(path)]):
            for sample in metric.samples:
                if sample.name == "cvm_http_requests_total" and sample.labels["route"] == route:
                    total += sample.value if sample.labels["status"] == "200" else 0.0
        out[path.stem.removeprefix("counter_")] = total
    return out


def _scraped(base: str, route: str) -> float:
    total = 0.0
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        counted = line.startswith("cvm_http_requests_total{") and f'route="{route}"' in line
        if counted and 'status="200"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_add_up_the_counts_of_both_workers(served):
    base, route = served["base"], "/v1/segments"
    sent = 0
    # each request on a new connection: the kernel hands connections to either worker
    while sent < 400:
        response = httpx.post(f"{base}{route}", json={"customers": [CUSTOMER]}, timeout=10)
        assert response.status_code == 200, response.text
        sent += 1
        counts = _per_worker(served["run_dir"] / "metrics", route)
        if sent >= 20 and len(counts) == 2 and all(counts.values()):
            break
    # a request is counted just after its answer has gone out: let the last one land
    deadline = time.monotonic() + 10
    counts = _per_worker(served["run_dir"] / "metrics", route)
    while sum(counts.values()) < sent and time.monotonic() < deadline:
        time.sleep(0.05)
        counts = _per_worker(served["run_dir"] / "metrics", route)
    assert len(counts) == 2 and all(value > 0 for value in counts.values()), counts
    assert sum(counts.values()) == sent
    assert _scraped(base, route) == sent  # any worker's /metrics: the sum of both
    body = httpx.get(f"{base}/metrics", timeout=10).text
    assert "cvm_http_requests_in_flight" in body
    assert "cvm_model_info{" in body  # what the answering worker serves


def test_a_reload_asked_of_one_worker_reaches_every_worker(served):
    base = served["base"]
    assert {w["versions"]["churn"] for w in _workers(base)} == {"1"}
    version = register_again(served["uri"], "churn")  # @champion moves to a new version
    time.sleep(1.0)
    # interval 0: no worker looks at the registry by itself
    assert {w["versions"]["churn"] for w in _workers(base)} == {"1"}

    answer = httpx.post(f"{base}/v1/admin/reload", timeout=90).json()
    assert "pending" not in answer
    assert answer["versions"]["churn"] == version
    assert len(answer["workers"]) == 2
    assert {w["versions"]["churn"] for w in answer["workers"]} == {version}
    assert len({w["signal"] for w in answer["workers"]}) == 1  # both answered the same ask
    seen = set()
    for _ in range(40):  # new connections: both workers answer
        response = httpx.post(f"{base}/v1/churn", json={"customers": [CUSTOMER]}, timeout=10)
        assert response.status_code == 200, response.text
        seen.add(response.json()["model_version"])
    assert seen == {version}


def test_requests_in_flight_finish_when_the_server_stops(served):
    """SIGTERM while a request's body is still arriving: the answer is a full 200, then the
    server exits by itself."""
    base, process = served["base"], served["process"]
    port = int(base.rsplit(":", 1)[1])
    body = orjson.dumps({"customers": [CUSTOMER]})
    head = (
        f"POST /v1/churn HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head + body[:10])  # the request has begun, its body has not arrived
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        time.sleep(1.0)  # the server is stopping: no new connection is accepted any more
        refused = threading.Event()

        def try_new() -> None:
            try:
                httpx.get(f"{base}/health/live", timeout=2)
            except httpx.TransportError:
                refused.set()

        try_new()
        connection.sendall(body[10:])
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert orjson.loads(answer.split(b"\r\n\r\n", 1)[1])["customers"][0]["customer_id"] == "w-1"
    assert refused.is_set()
    assert process.wait(timeout=40) == 0


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 1 << 30
