"""NDJSON streaming for ``POST /v1/models/{name}/invocations``: any number of rows, bounded memory.

A body sent as ``Content-Type: application/x-ndjson`` (also ``application/jsonl`` or
``application/jsonlines``) holds one JSON record per line, with the model's columns, as in
``dataframe_records``. The answer is NDJSON too: one prediction record per input record, in
order. The body is received into a temporary file as it arrives (in memory up to 8 MiB, then
on disk), then read back, scored and written :data:`CHUNK_ROWS` rows at a time, so the
service's memory does not grow with the stream. (It answers after the body is in: ordinary
HTTP/1.1 clients send the whole request before reading the response.) A stream may be sent
with chunked transfer encoding; ``CVM_MAX_BODY_BYTES`` does not apply to it,
``CVM_MAX_STREAM_ROWS`` does, and a line over 1 MiB is an error.

Errors:

- in the first chunk (bad JSON, an unknown or missing column, a value of the wrong type): the
  usual 422 with every bad value named by ``["body", "rows", <row>, <column>]``; rows count
  from 0 and blank lines are skipped;
- later, once the 200 and earlier predictions are on their way: the stream ends with one
  error line, ``{"error": {...same shape as an error response...}, "rows_scored": N}``.
  Rows before the bad chunk were scored and sent; none after it were. A client must check
  the last line (or count the lines: one per input row).

A client that disconnects mid-stream is noticed between chunks: scoring stops, and the request
is logged and counted as 499 (client closed request). A full disk while spooling is 507.
"""

from __future__ import annotations

import errno
import logging
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import orjson
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from models.exceptions import InvalidInputError
from service import observability
from service.errors import InsufficientStorage, error_payload

log = logging.getLogger("cvm.invocations")

NDJSON = "application/x-ndjson"
NDJSON_TYPES = frozenset(
    {NDJSON, "application/jsonl", "application/jsonlines", "application/x-jsonlines"}
)
CHUNK_ROWS = 2_000  # rows parsed, scored and written at a time
MAX_LINE_BYTES = 1024 * 1024  # one record; a longer line is an error, not a memory hog
SPOOL_MEMORY_BYTES = 8 * 1024 * 1024  # a streamed body beyond this waits on disk


def is_ndjson(content_type: str | None) -> bool:
    media = (content_type or "").partition(";")[0].strip().lower()
    return media in NDJSON_TYPES


async def row_chunks(
    body: AsyncIterator[bytes], rows: int = CHUNK_ROWS, max_line: int = MAX_LINE_BYTES
) -> AsyncIterator[list[bytes]]:
    """The non-blank lines of a streamed body, ``rows`` at a time (the last chunk shorter)."""
    pending = b""
    chunk: list[bytes] = []
    seen = 0  # rows before this chunk

    async for part in body:
        if not part:
            continue
        lines = (pending + part).split(b"\n")
        pending = lines.pop()
        for line in lines:
            if line.strip():
                if len(line) > max_line:
                    raise _too_long(seen + len(chunk), max_line)
                chunk.append(line)
                if len(chunk) >= rows:
                    seen += len(chunk)
                    yield chunk
                    chunk = []
        if len(pending) > max_line:
            raise _too_long(seen + len(chunk), max_line)
    if pending.strip():
        chunk.append(pending)
    if chunk:
        yield chunk


async def spool(body: AsyncIterator[bytes], max_line: int = MAX_LINE_BYTES) -> Any:
    """The whole request body in a temporary file (memory up to :data:`SPOOL_MEMORY_BYTES`,
    then disk), read as it arrives; a line growing past ``max_line`` stops it early.

    The answer starts only once the body is in: ordinary HTTP/1.1 clients send the whole
    request before they read the response, so answering while reading would fill the
    client's receive buffer and stall both sides."""
    file = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES, prefix="cvm-ndjson-")  # noqa: SIM115 (closed by the response)
    line = 0  # bytes of the line being received
    rows = 0
    try:
        async for part in body:
            _write(file, part)
            last = part.rfind(b"\n")
            if last < 0:
                line += len(part)
            else:
                rows += part.count(b"\n")
                if line + part.find(b"\n") > max_line:
                    raise _line_too_long(rows - part.count(b"\n") + 1, max_line)
                line = len(part) - last - 1
            if line > max_line:
                raise _line_too_long(rows + 1, max_line)
        file.seek(0)
        return file
    except BaseException:
        file.close()
        raise


_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def _write(file: Any, part: bytes) -> None:
    """A piece of the body into the spool; a full disk is the server's 507, not a 500."""
    try:
        file.write(part)
    except OSError as exc:
        if exc.errno not in _DISK_FULL:
            raise
        raise InsufficientStorage(
            "the server has no disk space left to receive this stream; try again later, "
            "or send the rows in smaller streams"
        ) from exc


async def read_file(file: Any, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    """A spooled body in pieces of ``size`` bytes."""
    while part := file.read(size):
        yield part


def _line_too_long(line: int, max_line: int) -> InvalidInputError:
    """While spooling, lines are counted as received (from 1, blank ones included)."""
    return InvalidInputError(
        f"line {line:,} of the body is longer than {max_line:,} bytes "
        "(send one JSON record per line)",
        field="body",
    )


def _too_long(row: int, max_line: int) -> InvalidInputError:
    return InvalidInputError(
        f"row {row} is longer than {max_line:,} bytes (send one JSON record per line)",
        field=f"rows.{row}",
    )


# (lines, first row) -> (ndjson, rows), scored in a worker thread
Scorer = Callable[[list[bytes], int], Awaitable[tuple[bytes, int]]]


class NDJSONStream(Response):
    """A response writing the first chunk's predictions, then scoring and writing the
    rest of the request stream chunk by chunk. The body is spooled before it starts, so it
    listens on ``receive`` for the client's disconnect only: a client gone mid-stream stops
    the scoring at the next chunk, and the request is logged and counted as 499 (the 200 was
    already sent)."""

    media_type = NDJSON

    def __init__(
        self,
        first: bytes,
        rows_done: int,
        chunks: AsyncIterator[list[bytes]],
        score: Scorer,
        max_rows: int,
        on_rows: Callable[[int], None],
        headers: dict[str, str],
        file: Any = None,
    ):
        self.first = first
        self.rows_done = rows_done
        self.chunks = chunks
        self.score = score
        self.max_rows = max_rows
        self.on_rows = on_rows
        self.extra_headers = headers
        self.file = file  # the spooled body, closed when the answer is complete
        self.status_code = 200
        self.background = None
        self.complete = False  # the last byte of the answer was sent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = anyio.Event()

        async def watch() -> None:
            # The body is in (spooled): the next message on ``receive`` is the disconnect.
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        failed: Exception | None = None
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(watch)
                try:
                    await self._send_all(send, gone)
                except Exception as exc:  # raised below as it is, not in an exception group
                    failed = exc
                tasks.cancel_scope.cancel()
        finally:
            if self.file is not None:
                self.file.close()
        if failed is not None:
            raise failed
        if gone.is_set() and not self.complete:
            # The 200 went out first; the access log and metrics count what happened.
            scope.setdefault("state", {})["cvm_status"] = 499
            observability.record_error(499, "client_closed_request")
            log.info("stream ended by the client after %d rows", self.rows_done)

    async def _send_all(self, send: Send, gone: anyio.Event) -> None:
        headers = [(b"content-type", self.media_type.encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in self.extra_headers.items()]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.first, "more_body": True})
        ended = b""
        try:
            async for lines in self.chunks:
                if gone.is_set():  # nobody reads the rest: stop scoring it
                    return
                if self.rows_done + len(lines) > self.max_rows:
                    raise InvalidInputError(
                        f"the stream has more than {self.max_rows:,} rows (CVM_MAX_STREAM_ROWS)",
                        field="body",
                    )
                body, n = await self.score(lines, self.rows_done)
                self.rows_done += n
                self.on_rows(n)
                await send({"type": "http.response.body", "body": body, "more_body": True})
        except ClientDisconnect:
            gone.set()
            return
        except Exception as exc:  # the status is sent: the error is the last line
            ended = self._error_line(exc)
        if gone.is_set():
            return
        await send({"type": "http.response.body", "body": ended, "more_body": False})
        self.complete = True

    def _error_line(self, exc: Exception) -> bytes:
        status, payload = error_payload(exc)
        observability.record_error(status, payload["error"]["code"])
        if status >= 500:
            log.error("stream failed after %d rows", self.rows_done, exc_info=exc)
        else:
            log.info("stream stopped after %d rows: %s", self.rows_done, payload)
        return orjson.dumps(
            {**payload, "rows_scored": self.rows_done}, option=orjson.OPT_APPEND_NEWLINE
        )


__all__ = [
    "CHUNK_ROWS",
    "NDJSON",
    "read_file",
    "spool",
    "NDJSONStream",
    "is_ndjson",
    "row_chunks",
]
