"""Scoring work, bounded: at most ``CVM_MAX_CONCURRENT`` requests are scored at once, each in a
worker thread, so that the event loop (and with it ``/health/live`` and small requests) never
waits behind them, and memory is bounded by a few requests' worth.

- :class:`ScoringSlots`: a request waits for a free slot up to ``CVM_QUEUE_TIMEOUT`` seconds,
  then gets 503 (``busy``) with ``Retry-After``. Bodies are read before a slot is taken (a
  slow client holds no slot), and the slot is released as soon as the answer is computed.
- Large requests (a body of :data:`LARGE_BODY_BYTES` or more): the cyclic garbage collector is
  paused while any is scored (its full passes over their objects held the event loop for
  100-200 ms at a time), and shortly after the last one :func:`release_memory` collects and
  returns the freed heap pages to the system (``malloc_trim``), so that memory comes back
  down after a burst.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import anyio

from service.errors import ServiceBusy

log = logging.getLogger("cvm.service")

T = TypeVar("T")
LARGE_BODY_BYTES = 1024 * 1024  # after a body this large, memory is handed back
RELEASE_DELAY = 0.5  # seconds after the last large request, when its answer has gone out


def _malloc_trim() -> Callable[[], Any] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim  # glibc only
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)  # ctypes releases the GIL for the call


_TRIM = _malloc_trim()


def release_memory() -> None:
    """After large requests: collect their cyclic garbage, and return the freed heap pages to
    the system (``malloc_trim``, glibc; elsewhere the allocator keeps them for reuse)."""
    gc.collect()
    if _TRIM is not None:
        _TRIM()


class ScoringSlots:
    """At most ``limit`` scoring jobs at once (see the module docstring)."""

    def __init__(self, limit: int, wait: float):
        self.limit = limit
        self.wait = wait
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._large = 0  # large requests under way
        self._gc_was_enabled = True

    def _slots(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:  # one per event loop
            self._semaphore, self._loop = asyncio.Semaphore(self.limit), loop
        return self._semaphore

    async def acquire(self, wait: bool = True) -> None:
        """A slot; with ``wait``, ServiceBusy (503) after ``CVM_QUEUE_TIMEOUT`` seconds."""
        slots = self._slots()
        if not slots.locked():
            await slots.acquire()  # free: taken at once
        elif not wait:
            await slots.acquire()
        else:
            try:
                await asyncio.wait_for(slots.acquire(), self.wait)
            except TimeoutError:
                raise ServiceBusy(
                    f"the service is busy scoring other requests (all {self.limit} scoring "
                    "slots stayed taken); retry in a moment"
                ) from None

    def release(self) -> None:
        self._slots().release()

    async def run(self, fn: Callable[..., T], *args: Any, size: int = 0, wait: bool = True) -> T:
        """``fn(*args)`` in a worker thread once a slot is free; ``size`` is the request's body
        (see :meth:`_large_started`)."""
        large = size >= LARGE_BODY_BYTES
        await self.acquire(wait)
        if large:
            self._large_started()
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        finally:
            self.release()
            if large and self._large_ended():
                # once the answer is sent and the request's body and answer are freed
                asyncio.get_running_loop().call_later(RELEASE_DELAY, self._release)

    def _release(self) -> None:
        if not self._large:  # else the next large request to end does it
            asyncio.get_running_loop().run_in_executor(None, release_memory)

    def _large_started(self) -> None:
        """While large requests are scored, the cyclic garbage collector is off: they make
        millions of objects, and each full collection over them held every thread (the
        event loop too) for 100-200 ms. Reference counting still frees their memory; cycles
        wait until the last one ends."""
        if not self._large:
            self._gc_was_enabled = gc.isenabled()
            gc.disable()
        self._large += 1

    def _large_ended(self) -> bool:
        """True when it was the last large request under way (the collector is back on)."""
        self._large -= 1
        if self._large:
            return False
        if self._gc_was_enabled:
            gc.enable()
        return True

    @property
    def busy(self) -> int:
        """Slots taken now."""
        if self._semaphore is None:
            return 0
        return self.limit - self._semaphore._value


__all__ = ["LARGE_BODY_BYTES", "ScoringSlots", "release_memory"]
