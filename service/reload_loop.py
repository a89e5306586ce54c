"""The model store's loader thread: the first load, a reload every ``CVM_RELOAD_INTERVAL``
seconds, and reloads asked by requests (``POST /v1/admin/...``).

A request never runs a reload nor waits on the reload lock: it asks for one
(:meth:`ReloadLoop.request_reload`, a ticket) and polls :meth:`ReloadLoop.reload_outcome`
without blocking, so any number of admin calls queued behind a slow reload hold no worker
thread. Reloads asked while one runs are answered together by the next one.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

log = logging.getLogger("cvm.models")


class ReloadLoop:
    """Runs ``refresh`` (returning ``{family: "old -> new"}``) in one background thread."""

    def __init__(self, refresh: Callable[[], dict[str, str]], interval: float):
        self._refresh = refresh
        self._interval = interval or None  # 0: only when asked
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.first_load = threading.Event()
        self._tickets = threading.Lock()
        self._asked = 0  # reloads asked for
        self._answered = 0  # the last ticket a finished reload answered
        self._runs = 0  # reloads finished
        self._finished: deque[tuple[int, dict[str, str]]] = deque(maxlen=64)

    def start(self) -> None:
        """Start the thread; a second start (the app's lifespan run twice) keeps the one
        running."""
        self._stop.clear()
        if self.running:
            return
        self._thread = threading.Thread(target=self._run, name="model-loader", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def request_reload(self) -> tuple[int, int] | None:
        """Ask for a reload now: a ticket for :meth:`reload_outcome` (None when the thread
        is not running: the caller reloads itself)."""
        if not self.running:
            return None
        with self._tickets:
            self._asked += 1
            ticket = (self._asked, self._runs)
        self._wake.set()
        return ticket

    def reload_outcome(self, ticket: tuple[int, int]) -> dict[str, str] | None:
        """None until a reload started after the ticket was asked has finished; then what the
        reloads finished since the ticket changed. Never blocks. LookupError when the thread
        stopped before answering it (the caller reloads itself)."""
        asked, runs = ticket
        with self._tickets:
            if self._answered < asked:
                if not self.running:
                    raise LookupError("the loader thread stopped")
                return None
            changes: dict[str, str] = {}
            for run, made in self._finished:
                if run > runs:
                    changes.update(made)
            return changes

    def _run(self) -> None:
        self._cycle()
        self.first_load.set()
        while True:
            self._wake.wait(self._interval)
            if self._stop.is_set():
                return
            self._cycle()

    def _cycle(self) -> None:
        """One reload, answering every ticket asked before it started."""
        self._wake.clear()
        with self._tickets:
            asked = self._asked
        try:
            changes = self._refresh()
        except Exception:  # the loader thread must outlive any reload
            log.exception("reload failed; the loaded versions keep serving")
            changes = {}
        with self._tickets:
            self._runs += 1
            self._finished.append((self._runs, changes))
            self._answered = max(self._answered, asked)
