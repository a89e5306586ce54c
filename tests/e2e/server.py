"""Start the real ``cvm serve`` process on a free local port for a test, and stop it after."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float = 90.0, every: float = 0.3) -> object:
    """Poll ``predicate`` until it returns something true; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout:.0f} s")


@contextlib.contextmanager
def running_server(
    env: dict[str, str], log_file: Path, timeout: float = 300.0, args: tuple[str, ...] = ()
) -> Iterator[str]:
    """Yield the base URL of a ready server (bound to 127.0.0.1); terminate it on exit.
    ``args``: more ``cvm serve`` options (``("--workers", "2")``)."""
    with running_process(env, log_file, timeout, args) as (base, _):
        yield base


@contextlib.contextmanager
def running_process(
    env: dict[str, str], log_file: Path, timeout: float = 300.0, args: tuple[str, ...] = ()
) -> Iterator[tuple[str, subprocess.Popen]]:
    """As :func:`running_server`, also giving the server process (for its memory)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(log_file, "w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "training",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *args,
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"server exited early:\n{log_file.read_text()[-3000:]}")
            try:
                return httpx.get(f"{base}/health/ready", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        try:
            try:
                wait_for(ready, timeout=timeout)
            except AssertionError:
                pytest.fail(f"server not ready in {timeout:.0f} s:\n{log_file.read_text()[-3000:]}")
            yield base, process
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
