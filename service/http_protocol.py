"""Connection limits of ``cvm serve``: uvicorn's httptools protocol with bounded request heads
and timeouts for slow clients, answered in the one error shape.

uvicorn's own HTTP/1.1 protocol accepts a request head of any size (its parser concatenates a
header value piece by piece: a 100 MB header stalled the event loop for 15 s) and waits
forever for a body that stops arriving. This subclass, which ``cvm serve`` runs:

- answers 431 (``headers_too_large``) and closes the connection when the request line and
  headers exceed ``CVM_MAX_HEADER_BYTES`` or there are more than ``CVM_MAX_HEADERS`` headers.
  The size is checked as the head arrives (at most one socket read past the limit is parsed)
  and exactly once it is complete;
- answers 408 (``request_timeout``) and closes the connection when a request's head is not
  complete ``CVM_HEADER_TIMEOUT`` seconds after it began, or its body stops arriving for
  ``CVM_BODY_TIMEOUT`` seconds; the application sees the client as gone. A new connection
  that sends nothing is closed after ``CVM_HEADER_TIMEOUT``.

Requests within the limits cost nothing more: the checks run once per socket read, and the
timers are set only while a head or a body is incomplete after a read.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from service import observability

log = logging.getLogger("cvm.service")


LINGER_SECONDS = 1.0  # a refused connection is closed this long after the answer


class _Refused(Exception):
    """Raised in a parser callback to stop parsing a request that is answered with an error."""


def error_bytes(status: int, code: str, message: str, default_headers: Any = ()) -> bytes:
    """A complete HTTP/1.1 error response in the one error shape, closing the connection."""
    body = orjson.dumps({"error": {"code": code, "message": message, "details": []}})
    head = [STATUS_LINE[status]]
    for name, value in default_headers:
        head += [name, b": ", value, b"\r\n"]
    head += [
        b"content-type: application/json\r\n",
        b"content-length: %d\r\n" % len(body),
        b"connection: close\r\n\r\n",
    ]
    return b"".join(head) + body


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """See the module docstring; the limits are class attributes (:func:`protocol_class`)."""

    max_header_bytes = 64 * 1024
    max_headers = 100
    header_timeout = 10.0
    body_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_open = False  # a request head has begun and is not complete
        self._in_body = False  # its head is complete, its body is not
        self._head_bytes = 0  # bytes of earlier reads that were all head
        self._read = 0  # bytes of the read being parsed
        self._ended_in_read = False  # a request ended in the read being parsed
        self._refusal: tuple[int, str, str] | None = None
        self._refused = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None

    # --- connection -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:  # the answer is sent: what else arrives is dropped unread
            return
        self._unset_keepalive_if_required()
        self._read = len(data)
        self._ended_in_read = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse(*self._refusal)
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._head_open:
            if not self._ended_in_read:  # the whole read is head (a pipelined one: not known)
                self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes:
                self._refuse(*self._too_large())
                return
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)
        elif self._in_body:  # an idle timer: it starts again with every read
            if self._body_timer is not None:
                self._body_timer.cancel()
            self._body_timer = self.loop.call_later(self.body_timeout, self._body_timed_out)

    # --- parser callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_open = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._head_open = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if len(self.headers) > self.max_headers:
            self._refusal = (
                431,
                "headers_too_large",
                f"the request has {len(self.headers):,} headers; the limit is {self.max_headers:,}",
            )
            raise _Refused
        if self._head_bytes + self._read > self.max_header_bytes and (
            self._head_size() > self.max_header_bytes
        ):
            self._refusal = self._too_large()
            raise _Refused
        super().on_headers_complete()
        self._in_body = True

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_body = False
        self._ended_in_read = True
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    # --- limits ---------------------------------------------------------------------------
    def _head_size(self) -> int:
        """Bytes of the complete head: request line and headers (with their separators)."""
        return len(self.url) + 14 + sum(len(k) + len(v) + 4 for k, v in self.headers)

    def _too_large(self) -> tuple[int, str, str]:
        return (
            431,
            "headers_too_large",
            f"the request's headers are larger than the limit of {self.max_header_bytes:,} bytes",
        )

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if not self._head_open:  # a connection that sent nothing: close it quietly
            self.transport.close()
            return
        self._refuse(
            408,
            "request_timeout",
            f"the request's headers did not arrive within {self.header_timeout:g} s; "
            "send the whole request at once",
        )

    def _body_timed_out(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None:
            return
        if self.flow.read_paused:  # the server is not reading (the body waits to be read)
            self._body_timer = self.loop.call_later(self.body_timeout, self._body_timed_out)
            return
        if cycle.response_started:  # the answer is on its way (or sent): only close
            self.transport.close()
            return
        message = (
            f"the request body stopped arriving: nothing received for {self.body_timeout:g} s; "
            "send the whole body without pauses"
        )
        cycle.scope["state"]["cvm_status"] = 408  # the access log's status for this request
        self._refuse(408, "request_timeout", message)
        # The application waiting for the body sees the client gone; its answer goes nowhere.
        cycle.disconnected = True
        cycle.message_event.set()

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer ``status`` in the one error shape and close the connection."""
        self._refusal = None
        self._cancel_timers()
        observability.record_error(status, code)
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown client"
        log.warning("%d %s from %s: %s", status, code, client, message)
        if self.transport.is_closing():
            return
        self.transport.write(error_bytes(status, code, message, self.server_state.default_headers))
        # A lingering close: the client still sending (a huge header) gets to read the answer
        # instead of a reset; what it sends meanwhile is dropped, and the connection closes
        # after a second.
        self._refused = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None


class ServeProtocol(LimitedHttpToolsProtocol):
    """The protocol ``cvm serve`` names to uvicorn (``service.http_protocol:ServeProtocol``):
    its limits are read from the environment (:class:`service.config.Settings`) once."""

    _configured = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if not ServeProtocol._configured:
            from service.config import Settings

            settings = Settings()
            ServeProtocol.max_header_bytes = settings.max_header_bytes
            ServeProtocol.max_headers = settings.max_headers
            ServeProtocol.header_timeout = settings.header_timeout
            ServeProtocol.body_timeout = settings.body_timeout
            ServeProtocol._configured = True
        super().__init__(*args, **kwargs)


def protocol_class(settings: Any) -> type[LimitedHttpToolsProtocol]:
    """The protocol with the limits of ``settings`` (:class:`service.config.Settings`)."""
    return type(
        "LimitedHttpToolsProtocol",
        (LimitedHttpToolsProtocol,),
        {
            "max_header_bytes": settings.max_header_bytes,
            "max_headers": settings.max_headers,
            "header_timeout": settings.header_timeout,
            "body_timeout": settings.body_timeout,
        },
    )


__all__ = ["LimitedHttpToolsProtocol", "ServeProtocol", "error_bytes", "protocol_class"]
