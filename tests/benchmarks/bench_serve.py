"""Serving benchmark (``make bench-serve``): this service against ``mlflow models serve``.

In one run, on this machine: both servers serve the same registered churn model
(``models:/cvm-churn@champion`` of the store in ``MLFLOW_TRACKING_URI`` / ``CVM_HOME``), one
worker each, on 127.0.0.1; both are driven with the same request bodies by the same load
generator for a fixed time per scenario:

- a single row, 1 connection;
- a single row, 8 connections;
- a 1,000-row batch, 1 connection;
- for this service alone (MLflow's server has neither): one NDJSON request of 100,000 rows
  (rows/s and memory), and the four customer-view routes (``/v1/customers/score``,
  ``/v1/churn``, ``/v1/segments``, ``/v1/segments/audience``) with one customer (req/s,
  p50/p99, CPU per request) and with 1,000 customers of about 10 purchases (customers/s);
- ``cvm serve`` with 1 and then 2 workers (8 connections, driven by ``wrk``: the in-process
  generator would need a core of its own): one row to ``/invocations`` and one customer to
  ``/v1/customers/score``; 2 workers should give ≥ 1.6× one worker's req/s.

It prints requests/s, p50/p99 latency, rows/s, the server's CPU time per request and the
ratios, then checks issue 8's targets (single-row throughput ≥ 10×, batch rows/s ≥ 2.5×, our
single-row p99 ≤ 10 ms), issue 18's (the customer view: 400 req/s, p50 2.5 ms, p99 10 ms for one
customer on /v1/customers/score, 400 req/s on /v1/churn and /v1/segments, 20,000 customers/s
in 1,000-customer requests) and that both servers return the same predictions for the same rows.

The load generator is a closed-loop HTTP/1.1 keep-alive client on raw asyncio streams (a few
tens of microseconds per request, far below either server), in this process, so that nothing
but Python is needed. Options: ``--seconds`` per scenario (default 10), ``--warmup``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MODEL = "cvm-churn"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the load generator -----------------------------------------------------------------------
@dataclass
class Result:
    requests: int
    errors: int
    seconds: float
    latencies: np.ndarray
    cpu_seconds: float
    rows_per_request: int
    percentiles: dict[float, float] | None = None  # ms, when the generator reports them (wrk)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def rows_per_second(self) -> float:
        return self.rps * self.rows_per_request

    def pct(self, q: float) -> float:
        if self.percentiles is not None:
            return self.percentiles.get(q, math.nan)
        return float(np.percentile(self.latencies, q) * 1e3) if len(self.latencies) else math.nan

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_seconds / max(self.requests, 1) * 1e3


def _request(port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")
_CHUNKED = re.compile(rb"(?i)\r\ntransfer-encoding:\s*chunked")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    match = _LENGTH.search(head)
    if match:
        return status, await reader.readexactly(int(match.group(1)))
    if _CHUNKED.search(head):
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return status, b"".join(parts)
            parts.append(chunk[:-2])
    return status, b""


async def _connection(port: int, request: bytes, until: float, out: list[float]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    errors = 0
    clock = time.perf_counter
    try:
        while True:
            started = clock()
            if started >= until:
                break
            writer.write(request)
            status, _ = await _read_response(reader)
            out.append(clock() - started)
            if status != 200:
                errors += 1
    finally:
        writer.close()
    return errors


async def _drive(port: int, request: bytes, connections: int, seconds: float) -> tuple:
    until = time.perf_counter() + seconds
    latencies: list[float] = []
    started = time.perf_counter()
    errors = await asyncio.gather(
        *(_connection(port, request, until, latencies) for _ in range(connections))
    )
    return latencies, sum(errors), time.perf_counter() - started


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, IndexError):
            pass
    return total / CLK_TCK


def run(
    server: Server,
    path: str,
    body: bytes,
    connections: int,
    seconds: float,
    warmup: float,
    rows: int,
) -> Result:
    request = _request(server.port, path, body)
    asyncio.run(_drive(server.port, request, connections, warmup))
    cpu_before = _cpu_seconds(server.pids())
    latencies, errors, elapsed = asyncio.run(_drive(server.port, request, connections, seconds))
    cpu = _cpu_seconds(server.pids()) - cpu_before
    return Result(len(latencies), errors, elapsed, np.array(latencies), cpu, rows)


def stream(server: Server, path: str, body: bytes, rows: int) -> tuple[float, int, float, float]:
    """POST one NDJSON body; (seconds, answer lines, CPU seconds, peak RSS MB while it ran)."""

    async def go() -> tuple[int, float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: application/x-ndjson\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        writer.write(head + body)
        await writer.drain()
        status, answer = await _read_response(reader)
        writer.close()
        if status != 200:
            raise RuntimeError(f"stream answered {status}: {answer[:300]!r}")
        return answer.count(b"\n"), server.rss_mb()

    cpu_before = _cpu_seconds(server.pids())
    started = time.perf_counter()
    lines, rss = asyncio.run(go())
    return time.perf_counter() - started, lines, _cpu_seconds(server.pids()) - cpu_before, rss


# --- the servers ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            child = int(stat.parent.name)
            out += [child, *_children(child)]
    return out


class Server:
    def __init__(self, name: str, command: list[str], env: dict[str, str], ready: str, log: Path):
        self.name = name
        self.port = free_port()
        self.command = [c.replace("{port}", str(self.port)) for c in command]
        self.env = env
        self.ready_url = f"http://127.0.0.1:{self.port}{ready}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def pids(self) -> list[int]:
        assert self.process is not None
        return [self.process.pid, *_children(self.process.pid)]

    def start(self, timeout: float = 180) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.ready_url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(
            f"{self.name} not ready in {timeout:.0f} s:\n{self.log.read_text()[-3000:]}"
        )

    def rss_mb(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def post(port: int, path: str, body: bytes) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


# --- payloads ---------------------------------------------------------------------------------
def payloads(tracking_uri: str) -> tuple[bytes, bytes, int]:
    """(single-row body, 1,000-row body, version) from the served churn model's input example."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri, tracking_uri)
    version = client.get_model_version_by_alias(MODEL, "champion")
    model = mlflow.pyfunc.load_model(client.get_model_version_download_uri(MODEL, version.version))
    example = model.input_example.reset_index(drop=True)
    rng = np.random.default_rng(8)
    frame = example.iloc[np.arange(1000) % len(example)].reset_index(drop=True)
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_float_dtype(values) and not (values.dropna() % 1 == 0).all():
            frame[column] = values * rng.uniform(0.8, 1.2, len(frame))

    def body(rows: pd.DataFrame) -> bytes:
        data = [
            [None if isinstance(v, float) and math.isnan(v) else v for v in row]
            for row in rows.astype(object).itertuples(index=False)
        ]
        return orjson.dumps({"dataframe_split": {"columns": list(rows.columns), "data": data}})

    return body(frame.head(1)), body(frame), int(version.version)


def ensure_models(env: dict[str, str]) -> None:
    subprocess.run(
        [str(BIN / "cvm"), "train", "--demo", "--if-missing"], env=env, check=True, cwd=ROOT
    )


# --- several workers ----------------------------------------------------------------------------
WORKER_CONNECTIONS = 8  # enough to keep two workers busy


_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _wrk_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _WRK_UNITS[match.group(2)]


def run_wrk(
    server: Server, path: str, body: bytes, connections: int, seconds: float, warmup: float
) -> Result:
    """The same closed-loop load as :func:`run`, generated by ``wrk`` (C, one thread: a few
    microseconds per request), so that the generator does not take the core a second worker
    needs."""
    folder = Path(tempfile.mkdtemp(prefix="cvm-wrk-"))
    (folder / "body.json").write_bytes(body)
    script = folder / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'local f = io.open("{folder / "body.json"}", "rb")\n'
        "wrk.body = f:read('*all')\nf:close()\n"
    )
    url = f"http://127.0.0.1:{server.port}{path}"

    def wrk(duration: float) -> str:
        command = ["wrk", "-t1", f"-c{connections}", f"-d{max(duration, 1):.0f}s", "--latency"]
        return subprocess.run(
            [*command, "-s", str(script), url], capture_output=True, text=True, check=True
        ).stdout

    wrk(warmup)
    cpu_before = _cpu_seconds(server.pids())
    out = wrk(seconds)
    cpu = _cpu_seconds(server.pids()) - cpu_before
    done = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    if not done:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    requests, elapsed = int(done.group(1)), _wrk_ms(done.group(2) + done.group(3)) / 1e3
    percentiles = {
        float(q): _wrk_ms(v) for q, v in re.findall(r"^\s+(\d+)%\s+(\S+)$", out, re.MULTILINE)
    }
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return Result(requests, errors, elapsed, np.array([]), cpu, 1, percentiles)


def worker_scaling(
    env: dict[str, str], logs: Path, bodies: dict[str, bytes], seconds: float, warmup: float
) -> tuple[dict[str, tuple[Result, Result]], list[tuple[str, bool]]]:
    """``cvm serve`` with 1 and then 2 workers, on the same routes and bodies, 8 connections,
    driven by ``wrk``: {route: (1 worker, 2 workers)} and the checks (2 workers ≥ 1.6× one
    worker). Without ``wrk`` on PATH: nothing measured, and a check that says what to install
    (the in-process generator needs a core of its own at these rates)."""
    if shutil.which("wrk") is None:
        return {}, [("worker scaling: wrk is not installed (apt-get install wrk)", False)]
    out: dict[str, list[Result]] = {route: [] for route in bodies}
    for workers in (1, 2):
        server = Server(
            f"cvm-{workers}w",
            [str(BIN / "cvm"), "serve", "--host", "127.0.0.1", "--port", "{port}"]
            + ["--workers", str(workers)],
            {**env, "CVM_RELOAD_INTERVAL": "0", "CVM_ACCESS_LOG": "false"},
            "/health/ready",
            logs / f"cvm-{workers}w.log",
        )
        server.start()
        try:
            if workers > 1:  # every worker has loaded the models
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{server.port}/v1/models"
                    ) as answer:
                        if sum(w["ready"] for w in json.loads(answer.read())["workers"]) == 2:
                            break
                    time.sleep(0.3)
            for route, body in bodies.items():
                out[route].append(run_wrk(server, route, body, WORKER_CONNECTIONS, seconds, warmup))
        finally:
            server.stop()
    pairs = {route: (one, two) for route, (one, two) in out.items()}
    checks = [
        (
            f"2 workers ≥ 1.6× one worker on {route} "
            f"({two.rps / one.rps:.2f}×, {WORKER_CONNECTIONS} conns)",
            two.rps / one.rps >= 1.6 and one.errors + two.errors == 0,
        )
        for route, (one, two) in pairs.items()
    ]
    return pairs, checks


def print_scaling(pairs: dict[str, tuple[Result, Result]]) -> None:
    header = f"{'route (1 row / 1 customer)':<38} {'workers':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms/req':>10}"
    print()
    print(header)
    print("-" * len(header))
    for route, results in pairs.items():
        for workers, r in enumerate(results, start=1):
            print(
                f"{route:<38} {workers:>7} {r.rps:>9,.0f} {r.pct(50):>8.2f} {r.pct(99):>8.2f} "
                f"{r.cpu_ms_per_request:>10.2f}"
            )
        print(f"{'':<38} {'ratio':>7} {results[1].rps / results[0].rps:>8.2f}x")


# --- the customer view -----------------------------------------------------------------------
VIEW_ROUTES = ("/v1/customers/score", "/v1/churn", "/v1/segments", "/v1/segments/audience")
# The README's first customer: 3 purchases, 2 attributes.
README_CUSTOMER = {
    "customer_id": "C0001",
    "transactions": [
        {"timestamp": "2025-01-15T10:00:00", "amount": 120.0, "cost": 80.0, "channel": "store"},
        {"timestamp": "2025-06-02T18:30:00", "amount": 95.5, "channel": "online"},
        {"timestamp": "2025-11-20T12:00:00", "amount": 130.0, "channel": "store"},
    ],
    "attributes": {"region": "north", "age": 41},
}


def view_customers(n: int, purchases: int = 10, seed: int = 18) -> list[dict]:
    """``n`` customers with about ``purchases`` purchases each over 2025 (costs on most,
    two channels) and two attributes."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        days = np.sort(rng.integers(0, 365, int(rng.integers(purchases - 3, purchases + 4))))
        tx = [
            {
                "timestamp": f"{np.datetime64('2025-01-01') + int(d)}T{int(rng.integers(8, 20)):02d}:00:00",
                "amount": round(float(rng.uniform(5, 200)), 2),
                **({"cost": round(float(rng.uniform(2, 120)), 2)} if rng.random() < 0.8 else {}),
                "channel": "store" if rng.random() < 0.6 else "online",
            }
            for d in days
        ]
        attributes = {
            "region": str(rng.choice(["north", "south", "east", "west"])),
            "age": int(rng.integers(18, 80)),
        }
        out.append({"customer_id": f"C{i:05d}", "transactions": tx, "attributes": attributes})
    return out


def view_body(route: str, customers: list[dict]) -> bytes:
    body: dict = {"as_of": "2025-12-31", "customers": customers}
    if route.endswith("/audience"):
        body.update(scheme="churn_risk", label="high")
    return orjson.dumps(body)


def customer_view_runs(
    server: Server, seconds: float, warmup: float
) -> dict[tuple[str, str], Result]:
    """Each customer-view route with the README's first customer, and with 1,000 customers
    of about 10 purchases each; one connection."""
    batch = view_customers(1000)
    results = {}
    for route in VIEW_ROUTES:
        for label, customers in (("1 customer", [README_CUSTOMER]), ("1,000 customers", batch)):
            results[(route, label)] = run(
                server, route, view_body(route, customers), 1, seconds, warmup, len(customers)
            )
    return results


def print_customer_view(results: dict[tuple[str, str], Result]) -> list[tuple[str, bool]]:
    """The customer-view table, and issue 18's checks."""
    print()
    header = f"{'customer view, 1 conn':<24} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'cpu ms/req':>10} {'customers/s (1,000 per request)':>32}"
    print(header)
    print("-" * len(header))
    for route in VIEW_ROUTES:
        one, many = results[(route, "1 customer")], results[(route, "1,000 customers")]
        print(
            f"{route:<24} {one.rps:>7,.0f} {one.pct(50):>7.2f} {one.pct(99):>7.2f} "
            f"{one.cpu_ms_per_request:>10.2f} {many.rows_per_second:>32,.0f}"
        )
    score = results[("/v1/customers/score", "1 customer")]
    batch = results[("/v1/customers/score", "1,000 customers")].rows_per_second
    return [
        (
            f"/v1/customers/score, 1 customer: >= 400 req/s ({score.rps:,.0f}), p50 <= 2.5 ms "
            f"({score.pct(50):.2f}), p99 <= 10 ms ({score.pct(99):.2f})",
            score.rps >= 400 and score.pct(50) <= 2.5 and score.pct(99) <= 10,
        ),
        *(
            (
                f"{route}, 1 customer: >= 400 req/s ({results[(route, '1 customer')].rps:,.0f})",
                results[(route, "1 customer")].rps >= 400,
            )
            for route in ("/v1/churn", "/v1/segments")
        ),
        (
            f"/v1/customers/score, 1,000-customer batches: >= 20,000 customers/s ({batch:,.0f})",
            batch >= 20_000,
        ),
    ]


# --- main -------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 10)))
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args()

    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.setdefault("CVM_HOME", str(ROOT / ".cvm"))
    env.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{Path(env['CVM_HOME']).resolve()}/mlflow.db")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    uri = env["MLFLOW_TRACKING_URI"]
    ensure_models(env)
    single, thousand, version = payloads(uri)
    print(
        f"model {MODEL} v{version} from {uri}; {args.seconds:.0f} s per scenario, "
        f"{os.cpu_count()} CPUs, load generator in-process (asyncio)"
    )

    logs = Path(tempfile.mkdtemp(prefix="cvm-bench-serve-"))
    ours = Server(
        "cvm",
        [str(BIN / "cvm"), "serve", "--host", "127.0.0.1", "--port", "{port}"],
        {**env, "CVM_RELOAD_INTERVAL": "0"},
        "/health/ready",
        logs / "cvm.log",
    )
    reference = Server(
        "mlflow",
        [
            str(BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            f"models:/{MODEL}@champion",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            "{port}",
            "-w",
            "1",
        ],
        env,
        "/ping",
        logs / "mlflow.log",
    )
    routes = {ours.name: f"/v1/models/{MODEL}/invocations", reference.name: "/invocations"}
    scenarios = [
        ("1 row, 1 conn", single, 1, 1),
        ("1 row, 8 conns", single, 8, 1),
        ("1000 rows, 1 conn", thousand, 1, 1000),
    ]
    results: dict[tuple[str, str], Result] = {}
    memory: dict[str, tuple[float, float]] = {}
    try:
        for server in (reference, ours):
            started = time.perf_counter()
            server.start()
            print(
                f"{server.name}: ready in {time.perf_counter() - started:.1f} s on port {server.port}"
            )
        same = True
        for label, body in (("1 row", single), ("1,000 rows", thousand)):
            # one row takes the compiled small-batch path, 1,000 rows the booster's own
            a = post(ours.port, routes["cvm"], body)["predictions"]
            b = post(reference.port, routes["mlflow"], body)["predictions"]
            same = same and a == b
            diff = max(
                abs(x["churn_probability"] - y["churn_probability"])
                for x, y in zip(a, b, strict=True)
            )
            print(
                f"predictions on the same {label}: {'identical' if a == b else 'DIFFERENT'} "
                f"(max |Δp| = {diff:.3g})"
            )
        for server in (reference, ours):
            rss0 = server.rss_mb()
            for label, body, connections, rows in scenarios:
                results[(server.name, label)] = run(
                    server, routes[server.name], body, connections, args.seconds, args.warmup, rows
                )
            memory[server.name] = (rss0, server.rss_mb())
        records = orjson.loads(thousand)["dataframe_split"]
        lines = b"".join(
            orjson.dumps(dict(zip(records["columns"], row, strict=True))) + b"\n"
            for row in records["data"]
        )
        stream_rows = 100_000
        rss_before = ours.rss_mb()
        streamed = stream(ours, routes["cvm"], lines * (stream_rows // 1000), stream_rows)
        views = customer_view_runs(ours, args.seconds, args.warmup)
    finally:
        for server in (ours, reference):
            server.stop()
    scaling, scaling_checks = worker_scaling(
        env,
        logs,
        {
            f"/v1/models/{MODEL}/invocations": single,
            "/v1/customers/score": view_body("/v1/customers/score", [README_CUSTOMER]),
        },
        args.seconds,
        args.warmup,
    )

    print()
    header = f"{'scenario':<19} {'server':<7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'rows/s':>11} {'cpu ms/req':>10} {'errors':>6}"
    print(header)
    print("-" * len(header))
    for label, *_ in scenarios:
        for name in ("mlflow", "cvm"):
            r = results[(name, label)]
            print(
                f"{label:<19} {name:<7} {r.rps:>9,.0f} {r.pct(50):>8.2f} {r.pct(99):>8.2f} "
                f"{r.rows_per_second:>11,.0f} {r.cpu_ms_per_request:>10.2f} {r.errors:>6}"
            )
        ours_r, ref_r = results[("cvm", label)], results[("mlflow", label)]
        print(
            f"{'':<19} {'ratio':<7} {ours_r.rps / ref_r.rps:>8.1f}x "
            f"{ref_r.pct(50) / ours_r.pct(50):>7.1f}x {ref_r.pct(99) / ours_r.pct(99):>7.1f}x "
            f"{ours_r.rows_per_second / ref_r.rows_per_second:>10.1f}x "
            f"{ref_r.cpu_ms_per_request / max(ours_r.cpu_ms_per_request, 1e-9):>9.1f}x"
        )
    for name, (before, after) in memory.items():
        print(f"{name}: RSS {before:,.0f} MB before the load, {after:,.0f} MB after")
    seconds, answered, cpu, rss_after = streamed
    print(
        f"cvm NDJSON stream of {stream_rows:,} rows in one request: {seconds:.1f} s, "
        f"{answered / seconds:,.0f} rows/s "
        f"({answered / seconds / results[('mlflow', '1000 rows, 1 conn')].rows_per_second:.1f}x "
        f"mlflow's 1,000-row batches), {answered:,} lines back, RSS {rss_before:,.0f} → "
        f"{rss_after:,.0f} MB"
    )

    single_ratio = min(
        results[("cvm", s)].rps / results[("mlflow", s)].rps
        for s in ("1 row, 1 conn", "1 row, 8 conns")
    )
    batch_ratio = (
        results[("cvm", "1000 rows, 1 conn")].rows_per_second
        / results[("mlflow", "1000 rows, 1 conn")].rows_per_second
    )
    p99 = max(results[("cvm", s)].pct(99) for s in ("1 row, 1 conn", "1 row, 8 conns"))
    errors = sum(r.errors for r in results.values())
    checks = [
        (
            f"single-row throughput ≥ 10× mlflow (worst of 1 and 8 conns: {single_ratio:.1f}×)",
            single_ratio >= 10,
        ),
        (f"1,000-row batch rows/s ≥ 2.5× mlflow ({batch_ratio:.1f}×)", batch_ratio >= 2.5),
        (f"single-row p99 ≤ 10 ms ({p99:.2f} ms)", p99 <= 10),
        ("predictions identical on the same rows", same),
        (
            f"no failed request ({errors + sum(r.errors for r in views.values())})",
            errors + sum(r.errors for r in views.values()) == 0,
        ),
        (f"every streamed row answered ({answered:,})", answered == stream_rows),
        *print_customer_view(views),
    ]
    print_scaling(scaling)
    checks += scaling_checks
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    print(f"(server logs in {logs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
