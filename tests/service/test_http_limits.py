"""Request heads and slow clients against the HTTP protocol ``cvm serve`` runs
(service/http_protocol.py), on a real uvicorn server in this process (issue: hardening)."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
import uvicorn

from service.app import create_app
from service.config import Settings
from service.http_protocol import protocol_class
from tests.e2e.server import free_port


@contextlib.contextmanager
def serving(**settings) -> Iterator[int]:
    """A uvicorn server with the service's protocol on 127.0.0.1; yields its port."""
    config = Settings(load_on_startup=False, access_log=False, **settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host="127.0.0.1",
            port=port,
            http=protocol_class(config),
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def read_response(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection (or ``timeout``)."""
    sock.settimeout(timeout)
    out = b""
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while chunk := sock.recv(65536):
            out += chunk
    return out


def split(raw: bytes) -> tuple[int, dict[str, str], dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, orjson.loads(body)


def error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "details": []}}


class HealthProbe:
    """``GET /health/live`` every 20 ms in a thread, recording each latency (s)."""

    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/health/live"
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=60) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                assert client.get(self.url).status_code == 200
                self.latencies.append(time.perf_counter() - started)
                self._stop.wait(0.02)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)


@pytest.fixture(scope="module")
def port():
    with serving() as port:
        yield port


def test_a_huge_header_is_431_at_once_and_the_service_stays_responsive(port):
    """One 100 MB header used to stall the event loop for 15 s: now the connection is
    answered 431 after the first 64 KiB, while /health/live keeps answering quickly."""
    sock = socket.create_connection(("127.0.0.1", port))
    sent = 0
    answer = b""
    piece = b"a" * 65536
    with HealthProbe(port) as probe:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            while sent < 100 * 1024 * 1024 and not answer:
                sock.sendall(piece)
                sent += len(piece)
                if select.select([sock], [], [], 0)[0]:
                    answer = sock.recv(65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer += read_response(sock)
        time.sleep(0.2)
    sock.close()
    status, headers, body = split(answer)
    assert status == 431
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert body == error(
        "headers_too_large", "the request's headers are larger than the limit of 65,536 bytes"
    )
    assert sent < 16 * 1024 * 1024, f"{sent:,} bytes were read before the answer"
    # the stall was 15 s; the bound leaves room for this process's own threads and a busy box
    assert probe.latencies and max(probe.latencies) < 2.0, max(probe.latencies)


def test_too_many_headers_is_431_and_a_head_under_the_limits_is_served(port):
    many = "".join(f"X-H{i}: {i}\r\n" for i in range(101))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(f"GET /health/live HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode())
        status, _, body = split(read_response(sock))
    assert status == 431
    assert body == error("headers_too_large", "the request has 102 headers; the limit is 100")
    # 60 KiB of headers (in one read) and 99 headers are within the limits
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        assert client.get("/health/live", headers={"X-Big": "a" * 60_000}).status_code == 200
        headers = {f"X-H{i}": str(i) for i in range(95)}
        assert client.get("/health/live", headers=headers).status_code == 200


def test_a_large_head_in_one_read_is_measured_exactly():
    """A head that arrives in one read is not counted as it arrives: it is measured when
    complete."""
    with (
        serving(max_header_bytes=2048) as port,
        socket.create_connection(("127.0.0.1", port)) as sock,
    ):
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n")
        status, _, body = split(read_response(sock))
        assert status == 431
        assert body["error"]["message"].endswith("limit of 2,048 bytes")
        # the same size of body is not head: a POST with a 3,000-byte body in the same read
        payload = b'{"customers": [], "pad": "' + b"a" * 3000 + b'"}'
        with socket.create_connection(("127.0.0.1", port)) as post:
            post.sendall(
                b"POST /v1/customers/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload
            )
            assert split(read_response(post))[0] in (422, 503)  # an answer of the app


def test_a_body_that_stops_arriving_is_408_after_the_body_timeout():
    """Content-Length 1000 and one byte sent used to hold the connection for good."""
    with (
        serving(body_timeout=0.5) as port,
        socket.create_connection(("127.0.0.1", port)) as sock,
    ):
        started = time.monotonic()
        sock.sendall(
            b"POST /v1/customers/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        raw = read_response(sock, timeout=10)
        took = time.monotonic() - started
    status, headers, body = split(raw)
    assert status == 408 and headers["connection"] == "close"
    assert body == error(
        "request_timeout",
        "the request body stopped arriving: nothing received for 0.5 s; "
        "send the whole body without pauses",
    )
    assert 0.4 < took < 3, took


def test_a_slow_body_keeps_going_while_it_arrives_and_idle_connections_close():
    with serving(body_timeout=0.6, header_timeout=0.6) as port:
        body = orjson.dumps({"customers": []})
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(
                b"POST /v1/customers/score HTTP/1.1\r\nHost: x\r\nContent-Type: "
                b"application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
            )
            for byte in body:  # 1.6 s in all, never 0.6 s without a byte
                time.sleep(0.1)
                sock.sendall(bytes([byte]))
            status, _, _ = split(read_response(sock))
        assert status in (422, 503)  # the app's answer (no models loaded here)
        # a head that trickles in is given CVM_HEADER_TIMEOUT in all
        with socket.create_connection(("127.0.0.1", port)) as sock:
            started = time.monotonic()
            sock.sendall(b"GET /health/live HTTP/1.1\r\n")
            status, _, body = split(read_response(sock))
            assert status == 408 and time.monotonic() - started < 3
            assert body == error(
                "request_timeout",
                "the request's headers did not arrive within 0.6 s; send the whole request at once",
            )
        # a connection that sends nothing is closed
        with socket.create_connection(("127.0.0.1", port)) as sock:
            started = time.monotonic()
            assert read_response(sock, timeout=5) == b""
            assert time.monotonic() - started < 3
