"""MLflow-compatible scoring: ``POST /v1/models/{name}/invocations``.

Accepts the bodies ``mlflow models serve`` accepts (JSON, and ``text/csv``:
:mod:`service.mlflow_csv`) and answers in its shape, so a caller can switch servers by
changing the URL. The model is the served version of the registered model
``name`` (``cvm-segmentation``, ``cvm-churn``, ``cvm-clv``, and ``cvm-uplift`` when the
registry has it: the churn features in, ``uplift_<offer>`` per offer out). This module is the route: key,
model and media type; the body is parsed and validated by :mod:`service.mlflow_payload`
against the version's input schema (compiled by the model store when it loaded the version),
scored by :mod:`service.mlflow_scoring`, streamed by :mod:`service.streaming` when it is
NDJSON, and documented by :mod:`service.invocations_openapi`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from models.exceptions import InvalidInputError
from models.families import OPTIONAL_FAMILIES
from service import mlflow_scoring, observability, streaming
from service.config import REGISTERED_NAMES
from service.errors import ServiceUnavailable
from service.input_schema import InputSchema
from service.invocations_openapi import ROUTE
from service.mlflow_csv import CSV
from service.mlflow_payload import fail, quoted
from service.security import API_KEY_HEADER, get_guard

log = logging.getLogger("cvm.invocations")

router = APIRouter(prefix="/v1/models", tags=["models"])

FAMILY_OF = {name: family for family, name in REGISTERED_NAMES.items()}
# Small bodies for a model with a column-wise fast path (churn: about 30 rows in 8 KiB, under
# 1 ms) are scored on the event loop, with no thread hand-off; everything else in a worker
# thread, so that health checks and other requests are not held up behind it (a 200-row churn
# body takes 14 ms, one segmentation row 5 ms: on the loop, /health/live waited for them).
INLINE_BODY_BYTES = 8 * 1024
INLINE_FAMILIES = frozenset({"churn"})
# The media types of whole bodies, and their parsers' names (mlflow_scoring.PARSERS).
BODY_MEDIA = {"application/json": "json", CSV: "csv"}


@router.post("/{name}/invocations", **ROUTE)
async def invocations(request: Request) -> Response:
    # The hot path: no FastAPI dependencies or parameter models (they cost more than scoring
    # a row); the key is checked here and the path parameter is documented in ROUTE.
    principal = get_guard(request).check_scoring(request.headers.get(API_KEY_HEADER))
    request.state.principal = principal
    name = request.path_params["name"]
    family = FAMILY_OF.get(name)
    if family is None:
        raise StarletteHTTPException(
            404, f"no model {name!r} is served here; served: {quoted(FAMILY_OF)}"
        )
    content_type = request.headers.get("content-type", "application/json")
    media, _, parameters = content_type.partition(";")
    media = media.strip().lower()
    stream = media in streaming.NDJSON_TYPES
    if (media not in BODY_MEDIA and not stream) or (
        parameters and "utf-8" not in parameters.lower().replace(" ", "")
    ):
        raise StarletteHTTPException(
            415,
            "send application/json or text/csv (UTF-8), or application/x-ndjson to stream; "
            f"got {content_type[:100]!r}",
        )
    store = request.app.state.store
    loaded = store.models.get(family)  # one version for the whole request, even mid-reload
    if loaded is None:
        if store.ready and family in OPTIONAL_FAMILIES and family not in store.errors:
            # an optional family the registry does not hold
            raise StarletteHTTPException(
                404,
                f"no model {name!r} is served here: the registry has no version of it "
                "(it is trained from campaign history: cvm train --campaigns FILE)",
            )
        raise ServiceUnavailable(store.error or "models are loading")
    schema = loaded.input_schema
    if schema is None:  # the store logged why when it loaded the version
        raise ServiceUnavailable(f"the input schema of {name} is unavailable")
    observability.tag_model(request, name, loaded.version)
    headers = {"X-Model-Name": name, "X-Model-Version": loaded.version}
    if stream:
        return await _stream(request, name, family, loaded, schema, headers)
    raw = await request.body()
    max_rows = store.settings.max_batch
    started = time.perf_counter()
    if len(raw) <= INLINE_BODY_BYTES and family in INLINE_FAMILIES and loaded.fast_path:
        content, rows = mlflow_scoring.score_body(
            raw, family, loaded, schema, max_rows, BODY_MEDIA[media]
        )
    else:  # in a worker thread, once a scoring slot is free (service/concurrency.py)
        content, rows = await request.app.state.slots.run(
            mlflow_scoring.score_body,
            raw,
            family,
            loaded,
            schema,
            max_rows,
            BODY_MEDIA[media],
            size=len(raw),
        )
    observability.record_rows(name, loaded.version, rows)
    log.debug(
        "%s v%s scored %d rows in %.2f ms",
        name,
        loaded.version,
        rows,
        (time.perf_counter() - started) * 1e3,
    )
    return Response(content, media_type="application/json", headers=headers)


async def _stream(
    request: Request, name: str, family: str, loaded: Any, schema: InputSchema, headers: dict
) -> streaming.NDJSONStream:
    """NDJSON in and out (service/streaming.py): the body is spooled as it arrives, the first
    chunk is scored here (so its errors are a normal 422), the response scores the rest."""
    file = await streaming.spool(request.stream())
    try:
        chunks = streaming.row_chunks(streaming.read_file(file))
        first = await anext(chunks, None)
        if first is None:
            fail(("rows",), "no rows: send at least one JSON record per line", "too_short")
        max_rows = request.app.state.settings.max_stream_rows
        if len(first) > max_rows:
            raise InvalidInputError(
                f"the stream has more than {max_rows:,} rows (CVM_MAX_STREAM_ROWS)", field="rows"
            )

        def score(lines: list[bytes], offset: int) -> tuple[bytes, int]:
            return mlflow_scoring.score_lines(lines, offset, family, loaded, schema)

        def on_rows(n: int) -> None:
            observability.record_rows(name, loaded.version, n)

        slots = request.app.state.slots
        body, n = await slots.run(score, first, 0)  # 503 if no slot frees in time

        async def run(lines: list[bytes], offset: int) -> tuple[bytes, int]:
            # once the 200 is sent, each chunk waits its turn: no 503 mid-stream
            return await slots.run(score, lines, offset, wait=False)

        on_rows(n)
    except BaseException:
        file.close()
        raise
    return streaming.NDJSONStream(body, n, chunks, run, max_rows, on_rows, headers, file)
