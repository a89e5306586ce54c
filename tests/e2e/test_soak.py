"""Soak test (issue: hardening): a real ``cvm serve`` on 127.0.0.1 driven at saturation with
large and small requests mixed. Acceptance: no 5xx (no other failure either), ``/health/live``
p99 under 100 ms in every 10-second window, and the server's memory back within 10 % of its
start after the load.

``CVM_SOAK_SECONDS`` sets the duration: 60 s by default, 20 s when ``CI`` is set, so that the
whole suite stays under 10 minutes on the CI machine (the 60-second run is the acceptance run:
``CVM_SOAK_SECONDS=60 pytest tests/e2e/test_soak.py``).

The mix: three connections of small requests (one row per model, 200 rows per model, a
five-customer view; tests/e2e/test_load.py), two of large ones (10,000 churn rows as
``dataframe_split``, about 2.7 MB; the whole view of every demo customer with their purchases,
about 3 MB), and one NDJSON stream of 20,000 churn rows after another. A process of its own
asks ``/health/live`` every 50 ms on a connection of its own.

The same server also shows, for real, the protocol limits and the stream disconnect of the
issue: a 1 MB header gets 431, a stalled body 408, and a stream whose client leaves after its
first line is not scored to the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest

from tests.conftest import purchases
from tests.e2e.server import running_process
from tests.e2e.test_load import requests as small_requests
from tests.e2e.test_load import rss_kb

SECONDS = float(os.environ.get("CVM_SOAK_SECONDS", "20" if os.environ.get("CI") else "60"))
WINDOW = 10.0  # seconds: the health p99 is checked in each window of the run
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


@pytest.fixture(scope="module")
def server(trained_store, tmp_path_factory):
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": trained_store["uri"],
        "CVM_HOME": trained_store["home"],
        "CVM_RELOAD_INTERVAL": "0",
        "CVM_ACCESS_LOG": "false",
        "CVM_BODY_TIMEOUT": "2",
    }
    log = tmp_path_factory.mktemp("soak") / "server.log"
    with running_process(env, log, timeout=120) as (base, process):
        yield int(base.rsplit(":", 1)[1]), process, log


def _example(trained_store, family: str):
    import mlflow

    client = mlflow.MlflowClient(trained_store["uri"], trained_store["uri"])
    uri = client.get_model_version_download_uri(f"cvm-{family}", "1")
    return mlflow.pyfunc.load_model(uri).input_example.reset_index(drop=True)


def _rows(frame) -> list[list]:
    return [
        [None if v != v else v for v in row] for row in frame.astype(object).itertuples(index=False)
    ]


def _post(port: int, path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def large_requests(port: int, trained_store, demo_data) -> list[bytes]:
    example = _example(trained_store, "churn")
    rows = _rows(example)
    split = {"columns": list(example.columns), "data": [rows[i % len(rows)] for i in range(10_000)]}
    transactions, _, _ = demo_data
    ids = transactions["customer_id"].unique()
    customers = [{"customer_id": cid, "transactions": purchases(transactions, cid)} for cid in ids]
    view = {"as_of": "2025-12-31", "customers": customers}
    return [
        _post(port, "/v1/models/cvm-churn/invocations", orjson.dumps({"dataframe_split": split})),
        _post(port, "/v1/customers/score", orjson.dumps(view)),
    ]


def ndjson_body(trained_store, n: int) -> bytes:
    example = _example(trained_store, "churn")
    lines = [
        orjson.dumps({k: (None if v != v else v) for k, v in row.items()}) + b"\n"
        for row in example.astype(object).to_dict(orient="records")
    ]
    return b"".join(lines[i % len(lines)] for i in range(n))


async def _requests(port, mix, until, statuses):
    """Requests of ``mix`` in turn on one keep-alive connection until ``until``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**24)
    i = 0
    try:
        while time.monotonic() < until:
            writer.write(mix[i % len(mix)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(int(_LENGTH.search(head).group(1)))
            statuses.append(int(head[9:12]))
    finally:
        writer.close()


async def _streams(port, body, rows, until, statuses):
    """NDJSON streams one after another; a stream counts as 200 only if every row came back."""
    url = f"http://127.0.0.1:{port}/v1/models/cvm-churn/invocations"
    headers = {"content-type": "application/x-ndjson"}
    async with httpx.AsyncClient(timeout=120) as client:
        while time.monotonic() < until:
            async with client.stream("POST", url, content=body, headers=headers) as response:
                lines, tail = 0, b""
                async for part in response.aiter_bytes():
                    lines += part.count(b"\n")
                    tail = (tail + part)[-4096:]
            complete = lines == rows and b'"error"' not in tail.rsplit(b"\n", 2)[-2]
            statuses.append(response.status_code if complete else 599)


async def _drive(port, small, large, stream, seconds):
    statuses: list[int] = []
    until = time.monotonic() + seconds
    await asyncio.gather(
        *(_requests(port, small[k::3], until, statuses) for k in range(3)),
        *(_requests(port, large[k:] + large[:k], until, statuses) for k in range(2)),
        _streams(port, stream, stream.count(b"\n"), until, statuses),
    )
    return statuses


# The health probe runs in a process of its own, so that the load generator's work in this
# process does not show up in its timings: GET /health/live every 50 ms on one connection,
# printing [start, latency, status] triples as JSON when done.
PROBE = r"""
import json, re, socket, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
length = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")
request = b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
samples = []
sock = socket.create_connection(("127.0.0.1", port))
until = time.monotonic() + seconds
while time.monotonic() < until:
    started = time.monotonic()
    sock.sendall(request)
    answer = b""
    while True:
        head, found, body = answer.partition(b"\r\n\r\n")
        size = length.search(head + b"\r\n")
        if found and size and len(body) >= int(size.group(1)):
            break
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit("the server closed the health connection")
        answer += chunk
    samples.append([started, time.monotonic() - started, int(answer[9:12])])
    time.sleep(0.05)
print(json.dumps(samples))
"""


def start_probe(port: int, seconds: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", PROBE, str(port), str(seconds)], stdout=subprocess.PIPE
    )


def test_soak_large_and_small_requests_at_saturation(server, trained_store, demo_data):
    port, process, _ = server
    small = small_requests(port, trained_store)
    large = large_requests(port, trained_store, demo_data)
    stream = ndjson_body(trained_store, 20_000)
    warm = asyncio.run(_drive(port, small, large, stream, max(10.0, SECONDS * 0.2)))
    assert set(warm) == {200}, sorted(set(warm))
    time.sleep(1.5)  # memory handed back after the warm-up's large requests
    before = rss_kb(process.pid)
    probe = start_probe(port, SECONDS)
    statuses = asyncio.run(_drive(port, small, large, stream, SECONDS))
    samples = orjson.loads(probe.communicate(timeout=60)[0])
    time.sleep(1.5)
    after = rss_kb(process.pid)

    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    latencies = np.array([latency for _, latency, _ in samples])
    started = samples[0][0]
    windows: dict[int, list[float]] = {}
    for at, latency, _ in samples:
        windows.setdefault(int((at - started) // WINDOW), []).append(latency)
    p99 = {w: float(np.percentile(v, 99)) for w, v in sorted(windows.items()) if len(v) >= 20}
    print(
        f"{len(statuses)} requests in {SECONDS:.0f} s {counts}; /health/live p50 "
        f"{np.percentile(latencies, 50) * 1e3:.1f} ms, p99 by {WINDOW:.0f} s window "
        f"{[round(v * 1e3, 1) for v in p99.values()]} ms, max {latencies.max() * 1e3:.0f} ms; "
        f"RSS {before // 1024} -> {after // 1024} MB"
    )
    assert not [s for s in statuses if s >= 500], counts
    assert set(statuses) == {200}, counts
    assert len(statuses) > 20 * SECONDS / 20, f"only {len(statuses)} requests in {SECONDS} s"
    assert {status for _, _, status in samples} == {200}
    assert len(samples) > SECONDS * 5, "the health probe was starved"
    slow = {w: round(v * 1e3) for w, v in p99.items() if v >= 0.1}
    assert not slow, f"/health/live p99 over 100 ms in windows (ms): {slow}"
    growth = (after - before) / before
    assert abs(growth) < 0.10, f"RSS {before} -> {after} kB ({growth:+.1%}) after the load"
    assert process.poll() is None


def _raw(port: int, data: bytes, read_timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        sock.settimeout(read_timeout)
        out = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                out += chunk
        return out


def test_cvm_serve_bounds_heads_and_times_out_stalled_bodies(server):
    port, _, _ = server
    big = _raw(port, b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000)
    assert big.startswith(b"HTTP/1.1 431 ")
    assert orjson.loads(big.partition(b"\r\n\r\n")[2])["error"]["code"] == "headers_too_large"
    started = time.monotonic()
    stalled = _raw(
        port,
        b"POST /v1/customers/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{",
    )
    assert stalled.startswith(b"HTTP/1.1 408 "), stalled[:200]
    assert 1.5 < time.monotonic() - started < 6


def _metric(port: int, line_start: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)
    )


def test_a_stream_whose_client_leaves_is_not_scored_to_the_end(server, trained_store):
    port, _, log = server
    body = ndjson_body(trained_store, 200_000)
    rows_before = _metric(port, 'cvm_rows_scored_total{model="cvm-churn"')
    gone_before = _metric(port, 'cvm_http_errors_total{code="client_closed_request"')
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /v1/models/cvm-churn/invocations HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-ndjson\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")  # the first predictions
    time.sleep(2)
    scored = _metric(port, 'cvm_rows_scored_total{model="cvm-churn"') - rows_before
    assert 0 < scored < 50_000, f"{scored:,.0f} of 200,000 rows scored for a client gone"
    assert _metric(port, 'cvm_http_errors_total{code="client_closed_request"') == gone_before + 1
    assert "stream ended by the client" in Path(log).read_text()
