"""Several worker processes of one ``cvm serve``, kept in step through a shared folder.

``cvm serve --workers N`` (``CVM_WORKERS``) starts N uvicorn worker processes on one port and
gives them a run folder (``CVM_RUN_DIR``; a temporary folder removed when the server stops).
Each worker loads the models and hot-reloads them on its own; the folder adds what one
process cannot see:

- ``reload``: a signal file. ``POST /v1/admin/reload`` (and an admin promotion or rollback) on
  any worker rewrites it; every worker watches it (a ``stat`` every
  :data:`WATCH_SECONDS`) and checks the registry at once when it changes.
- ``worker-<pid>.json``: what each worker serves, written after each of its reloads: versions,
  errors, time, and the latest signal the reload answered. The worker that was asked waits
  until every live worker has answered its signal, then says what each one serves
  (``/v1/models`` shows it too).
- ``metrics/``: prometheus-client's multiprocess folder (``PROMETHEUS_MULTIPROC_DIR``), so that
  ``/metrics`` on any worker adds up the counters and histograms of all of them.

Without a run folder (one worker, or the app built in-process) none of this runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("cvm.service")

RUN_DIR_ENV = "CVM_RUN_DIR"
WATCH_SECONDS = 0.2
SIGNAL_FILE = "reload"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process with this pid
        return True
    return True


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


class WorkerGroup:
    """This worker's view of the run folder (see the module docstring)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.pid = os.getpid()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen = self.signal()

    @classmethod
    def from_env(cls) -> WorkerGroup | None:
        folder = os.environ.get(RUN_DIR_ENV)
        return cls(Path(folder)) if folder else None

    # --- the reload signal ------------------------------------------------------------------
    def signal(self) -> int:
        """The latest reload signal (nanoseconds since the epoch; 0 when none was given)."""
        try:
            return int((self.folder / SIGNAL_FILE).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def announce(self) -> int:
        """Ask every worker to check the registry now; returns the signal to wait for."""
        value = max(time.time_ns(), self.signal() + 1)
        _write_atomic(self.folder / SIGNAL_FILE, f"{value} {self.pid}\n".encode())
        return value

    def watch(self, on_signal: Callable[[], Any]) -> None:
        """Call ``on_signal`` (in a thread) whenever another worker announces a reload."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._seen = self.signal()

        def run() -> None:
            while not self._stop.wait(WATCH_SECONDS):
                current = self.signal()
                if current != self._seen:
                    self._seen = current
                    on_signal()

        self._thread = threading.Thread(target=run, name="reload-signal", daemon=True)
        self._thread.start()

    def seen(self, value: int) -> None:
        """This worker already reloads for signal ``value`` (its own announcement)."""
        self._seen = max(self._seen, value)

    # --- what each worker serves ------------------------------------------------------------
    def publish(self, status: dict[str, Any]) -> None:
        try:
            _write_atomic(
                self.folder / f"worker-{self.pid}.json",
                orjson.dumps({"pid": self.pid, **status}),
            )
        except OSError as exc:  # the folder went away: serving goes on
            log.warning("cannot write this worker's status in %s: %s", self.folder, exc)

    def workers(self) -> list[dict[str, Any]]:
        """Every live worker's latest status, by pid."""
        out = []
        for path in sorted(self.folder.glob("worker-*.json")):
            try:
                status = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue  # being replaced, or gone
            if _alive(int(status.get("pid", 0))):
                out.append(status)
        return out

    def answered(self, value: int) -> bool:
        """Whether every live worker finished a reload started after signal ``value``."""
        return all(w.get("signal", 0) >= value for w in self.workers())

    def stop(self) -> None:
        """Stop watching and leave the group (this worker's status is removed)."""
        self._stop.set()
        with contextlib.suppress(OSError):
            (self.folder / f"worker-{self.pid}.json").unlink()


def metrics_dir() -> str | None:
    """prometheus-client's multiprocess folder, when this process is one of several workers."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def mark_dead() -> None:
    """At a worker's exit: its live gauges (requests in flight) stop counting."""
    if metrics_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())
