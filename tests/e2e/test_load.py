"""A bounded load test: a real server on 127.0.0.1 driven at saturation loses no request and
keeps its memory flat.

``CVM_LOAD_SECONDS`` sets the duration (default 60 s, as issue 8 asks).
The mix: single-row and 200-row MLflow invocations of each model, and whole-view scores.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.e2e.server import running_process

SECONDS = float(os.environ.get("CVM_LOAD_SECONDS", "60"))
CONNECTIONS = 4
pytestmark = pytest.mark.e2e


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def server(trained_store, tmp_path_factory):
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": trained_store["uri"],
        "CVM_HOME": trained_store["home"],
        "CVM_RELOAD_INTERVAL": "0",
        "CVM_ACCESS_LOG": "false",
    }
    log = tmp_path_factory.mktemp("load") / "server.log"
    with running_process(env, log, timeout=120) as (base, process):
        yield int(base.rsplit(":", 1)[1]), process


def requests(port: int, trained_store) -> list[bytes]:
    """Raw HTTP/1.1 requests: each model's input example (1 and 200 rows), a whole-view score."""
    import mlflow

    client = mlflow.MlflowClient(trained_store["uri"], trained_store["uri"])
    out = []
    for family in ("segmentation", "churn", "clv"):
        uri = client.get_model_version_download_uri(f"cvm-{family}", "1")
        example = mlflow.pyfunc.load_model(uri).input_example.reset_index(drop=True)
        rows = [
            [None if v != v else v for v in row]  # NaN → null
            for row in example.astype(object).itertuples(index=False)
        ]
        for n in (1, 200):
            data = [rows[i % len(rows)] for i in range(n)]
            body = {"dataframe_split": {"columns": list(example.columns), "data": data}}
            out.append((f"/v1/models/cvm-{family}/invocations", orjson.dumps(body)))
    summary = {"frequency": 3, "recency": 100, "T": 200, "monetary_value": 40.0}
    customers = [{"customer_id": str(i), "summary": summary} for i in range(5)]
    out.append(("/v1/customers/score", orjson.dumps({"customers": customers})))
    return [
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for path, body in out
    ]


_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


async def _connection(port, mix, until, statuses):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
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


async def _drive(port, mix, seconds):
    statuses: list[int] = []
    until = time.monotonic() + seconds
    await asyncio.gather(*(_connection(port, mix, until, statuses) for _ in range(CONNECTIONS)))
    return statuses


def test_saturation_loses_no_request_and_memory_stays_flat(server, trained_store):
    port, process = server
    mix = requests(port, trained_store)
    warm = asyncio.run(_drive(port, mix, max(3.0, SECONDS * 0.2)))
    assert set(warm) == {200}
    before = rss_kb(process.pid)
    statuses = asyncio.run(_drive(port, mix, SECONDS))
    after = rss_kb(process.pid)
    failed = [s for s in statuses if s != 200]
    assert len(statuses) > 50 * SECONDS / 20, f"only {len(statuses)} requests in {SECONDS} s"
    assert not failed, f"{len(failed)} of {len(statuses)} requests failed: {set(failed)}"
    growth = (after - before) / before
    print(f"{len(statuses)} requests in {SECONDS:.0f} s; RSS {before // 1024} → {after // 1024} MB")
    assert growth < 0.10, f"RSS grew {growth:.1%} ({before} → {after} kB)"
    assert process.poll() is None


def test_ndjson_stream_of_200k_rows_in_bounded_memory(server, trained_store):
    """200,000 rows in (chunked upload) and out (streamed lines): every row answered, and the
    server's memory does not grow with the stream (it holds one chunk at a time)."""
    import mlflow

    port, process = server
    client = mlflow.MlflowClient(trained_store["uri"], trained_store["uri"])
    uri = client.get_model_version_download_uri("cvm-churn", "1")
    example = mlflow.pyfunc.load_model(uri).input_example.reset_index(drop=True)
    lines = [
        orjson.dumps({k: (None if v != v else v) for k, v in row.items()}) + b"\n"
        for row in example.astype(object).to_dict(orient="records")
    ]
    total = int(os.environ.get("CVM_STREAM_ROWS", "200000"))
    block = b"".join(lines[i % len(lines)] for i in range(1000))

    def body():
        for _ in range(total // 1000):
            yield block

    before = rss_kb(process.pid)
    peak = before
    answered = 0
    errors = []
    started = time.monotonic()
    with httpx.stream(
        "POST",
        f"http://127.0.0.1:{port}/v1/models/cvm-churn/invocations",
        content=body(),
        headers={"content-type": "application/x-ndjson"},
        timeout=300,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line:
                continue
            record = orjson.loads(line)
            if "error" in record:
                errors.append(record)
            answered += 1
            if answered % 20_000 == 0:
                peak = max(peak, rss_kb(process.pid))
    seconds = time.monotonic() - started
    size_mb = len(block) * (total // 1000) / 1e6
    print(
        f"streamed {total:,} rows ({size_mb:.0f} MB) in {seconds:.1f} s; "
        f"RSS {before // 1024} → peak {peak // 1024} MB"
    )
    assert not errors, errors[:1]
    assert answered == total
    growth = (peak - before) / before
    assert growth < 0.10, f"RSS grew {growth:.1%} while streaming {size_mb:.0f} MB"
