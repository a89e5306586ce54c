"""Progress of long jobs (training, retraining, batch scoring) on stderr.

- On a terminal: a live line per running stage, redrawn a few times a second, with a bar, the
  percentage and an estimate of the time left (from the stage's own pace), and the job's
  messages printed above it.
- Elsewhere (CI, cron, a log file): plain lines only, each stamped with the time since the
  start; a stage that runs for more than a few seconds also reports 25 %, 50 % and 75 % with
  the time left, so a log shows that a long job is alive and when it should end.
- Quiet: nothing but errors (which the CLI writes itself).

A :class:`Progress` is called like ``print`` for a line, and :meth:`Progress.stage` gives a
stage to advance. Code that takes a plain ``Callable[[str], None]`` keeps working: use
:func:`stage_of` to get a stage from either.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

Say = Callable[[str], None]
MILESTONES = (0.25, 0.5, 0.75)
QUIET_SECONDS = 5.0  # plain mode: a stage shorter than this reports no milestones
BAR_WIDTH = 24


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Stage:
    """One step of a job, advanced towards ``total`` (None: unknown, elapsed time only)."""

    def __init__(self, owner: Progress | None, name: str, total: float | None):
        self.owner = owner
        self.name = name
        self.total = float(total) if total else None
        self.done = 0.0
        self.started = time.perf_counter()
        self._reported = 0  # milestones reported in plain mode

    def advance(self, amount: float = 1.0) -> None:
        self.update(self.done + amount)

    def update(self, done: float) -> None:
        self.done = done if self.total is None else min(float(done), self.total)
        if self.owner is not None:
            self.owner._advanced(self)

    @property
    def fraction(self) -> float | None:
        return None if not self.total else self.done / self.total

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def left(self) -> float | None:
        """Seconds left at the pace so far (None before any progress)."""
        fraction = self.fraction
        if fraction is None or fraction <= 0:
            return None
        return self.elapsed() * (1 - fraction) / fraction

    def line(self) -> str:
        """``churn holdout [#####-----]  50 %  12 s, about 12 s left``."""
        fraction = self.fraction
        elapsed = duration(self.elapsed())
        if fraction is None:
            return f"{self.name} ... {elapsed}"
        filled = int(round(BAR_WIDTH * fraction))
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        left = self.left()
        eta = f", about {duration(left)} left" if left is not None else ", estimating"
        return f"{self.name} [{bar}] {100 * fraction:3.0f} %  {elapsed}{eta}"


class Progress:
    """Where a job's progress goes: ``live`` (a terminal), ``plain`` lines, or ``quiet``."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        mode: str = "auto",
        interval: float = 0.25,
    ):
        self.stream = stream if stream is not None else sys.stderr
        if mode == "auto":
            isatty = getattr(self.stream, "isatty", lambda: False)
            mode = "live" if isatty() else "plain"
        if mode not in ("live", "plain", "quiet"):
            raise ValueError(f"progress mode {mode!r}: use live, plain or quiet")
        self.mode = mode
        self.interval = interval
        self.started = time.perf_counter()
        self._stages: list[Stage] = []
        self._lock = threading.Lock()
        self._drawn = False
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        # (stage, seconds, peak RSS in bytes so far) of each stage that ended, in order
        self.finished: list[tuple[str, float, int]] = []

    # --- lines --------------------------------------------------------------------------------
    def __call__(self, message: str) -> None:
        """A line of the job's output (above the live line on a terminal)."""
        if self.mode == "quiet":
            return
        with self._lock:
            self._clear()
            self.stream.write(f"{message}\n")
            self._draw()
            self.stream.flush()

    def stamped(self, message: str) -> None:
        """A line stamped with the time since the job started: ``[  12.3s] message``."""
        self(f"[{time.perf_counter() - self.started:6.1f}s] {message}")

    # --- stages -------------------------------------------------------------------------------
    @contextmanager
    def stage(self, name: str, total: float | None = None) -> Iterator[Stage]:
        """A stage of the job, shown while it runs (``total``: its units of work)."""
        stage = Stage(self, name, total)
        with self._lock:
            self._stages.append(stage)
            self._start_ticker()
        try:
            yield stage
        finally:
            self.finished.append((name, stage.elapsed(), peak_rss()))
            with self._lock:
                self._clear()
                self._stages.remove(stage)
                self._draw()
                self.stream.flush()

    def _advanced(self, stage: Stage) -> None:
        if self.mode != "plain" or stage.fraction is None:
            return
        if stage.elapsed() < QUIET_SECONDS:
            while stage._reported < len(MILESTONES) and (
                stage.fraction >= MILESTONES[stage._reported]
            ):
                stage._reported += 1  # early milestones of a short stage: not worth a line
            return
        reached = [m for m in MILESTONES[stage._reported :] if stage.fraction >= m]
        if not reached:
            return
        stage._reported += len(reached)
        left = stage.left()
        eta = f", about {duration(left)} left" if left is not None else ""
        self.stamped(f"{stage.name}: {100 * reached[-1]:.0f} %{eta}")

    # --- the live line (terminal only) --------------------------------------------------------
    def _start_ticker(self) -> None:
        if self.mode != "live" or self._ticker is not None:
            return
        self._ticker = threading.Thread(target=self._tick, name="cvm-progress", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                self._clear()
                self._draw()
                self.stream.flush()

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self._drawn = False

    def _draw(self) -> None:
        if self.mode != "live" or not self._stages:
            return
        self.stream.write(" | ".join(s.line() for s in self._stages)[:200])
        self._drawn = True

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop redrawing and clear the live line (also at the end of a ``with`` block)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=1)
            self._ticker = None
        with self._lock:
            self._clear()
            self.stream.flush()


def peak_rss() -> int:
    """The process's peak resident memory so far, in bytes (0 where unknown)."""
    try:
        import resource
    except ImportError:  # not on this platform
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # macOS: bytes; Linux: KiB


@contextmanager
def stage_of(progress: Any, name: str, total: float | None = None) -> Iterator[Stage]:
    """``progress.stage(name, total)`` for a :class:`Progress`; a stage that shows nothing for
    a plain callable (``print``, a test's ``lambda m: None``)."""
    stage_method = getattr(progress, "stage", None)
    if stage_method is None:
        yield Stage(None, name, total)
        return
    with stage_method(name, total) as stage:
        yield stage


__all__ = ["Progress", "Stage", "duration", "peak_rss", "stage_of"]
