"""Request limits and process tuning for serving.

- :class:`BodyLimitMiddleware`: a body larger than ``CVM_MAX_BODY_BYTES`` gets 413 from its
  ``Content-Length`` alone, before any byte of it is read or parsed; a body without a length
  (chunked) is counted as it arrives. NDJSON streams to ``/invocations`` are exempt: they are
  read and scored a chunk at a time, and ``CVM_MAX_STREAM_ROWS`` bounds them.
- Native threads: BLAS/OpenMP pools are capped (``CVM_BLAS_THREADS``, default 1): on small
  inputs extra threads only contend with each other and with the event loop. The environment
  defaults are set when this module is imported (before the service imports numpy or
  scikit-learn, which read them once), and :func:`cap_native_threads` applies the cap to
  libraries already loaded.
"""

from __future__ import annotations

import logging
import os
import sys

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.streaming import is_ndjson

log = logging.getLogger("cvm.service")

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def set_thread_environment(threads: int | str) -> None:
    """Default the BLAS/OpenMP thread variables (an explicit setting wins)."""
    for name in _THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))


set_thread_environment(os.environ.get("CVM_BLAS_THREADS", "1"))


# Python hands the GIL between threads every 5 ms by default: the event loop, waking for a
# health check while scoring threads compute, waited up to 5 ms at each of its steps (about
# 20 ms per request). 1 ms keeps it responsive; the scoring threads lose almost nothing.
GIL_SWITCH_SECONDS = 0.001


def shorten_gil_slices(seconds: float = GIL_SWITCH_SECONDS) -> None:
    """How long a thread may hold the GIL while another waits for it (``sys.setswitchinterval``)."""
    sys.setswitchinterval(seconds)


def cap_native_threads(threads: int) -> None:
    """Limit the BLAS/OpenMP pools of the libraries loaded in this process."""
    set_thread_environment(threads)
    try:
        from threadpoolctl import threadpool_limits  # optional: only to cap the pools

        threadpool_limits(limits=threads)
    except Exception as exc:  # threadpoolctl is a scikit-learn dependency; never fatal
        log.warning("could not cap native threads: %s", exc)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _is_stream(scope: Scope) -> bool:
    if not scope.get("path", "").endswith("/invocations"):
        return False
    for key, value in scope.get("headers", ()):
        if key == b"content-type":
            return is_ndjson(value.decode("latin-1"))
    return False


class BodyLimitMiddleware:
    """413 for bodies over ``max_body_bytes`` (see the module docstring)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    def _message(self) -> str:
        return f"the request body is larger than the limit of {self.max_body_bytes:,} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _is_stream(scope):  # NDJSON is read chunk by chunk: CVM_MAX_STREAM_ROWS bounds it
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None:
            if length > self.max_body_bytes:
                from service.errors import error_response

                response = error_response(413, "payload_too_large", self._message())
                response.headers["Connection"] = "close"
                await response(scope, receive, send)
                return
            # The server delivers no more than Content-Length: nothing to count.
            await self.app(scope, receive, send)
            return

        received = 0
        limit = self.max_body_bytes

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise StarletteHTTPException(413, self._message())
            return message

        await self.app(scope, counted_receive, send)


__all__ = [
    "BodyLimitMiddleware",
    "cap_native_threads",
    "set_thread_environment",
    "shorten_gil_slices",
]
