"""The whole customer view: segments, churn, CLV, value at risk, recommended action."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from models.exceptions import InvalidInputError
from service import fast_request, request_body
from service.deps import ready_store
from service.fast_scoring import NeedsReference
from service.model_store import ModelStore
from service.schemas import AudienceRequest, ErrorResponse, ScoreRequest, ScoreResponse
from service.scoring import RequestNotes, model_as_of, score_customers, stale_default_warning
from service.security import API_KEY_HEADER, get_guard

router = APIRouter(prefix="/v1/customers", tags=["customers"])

BUSY = {"model": ErrorResponse, "description": "models not loaded yet, or too busy (Retry-After)"}


def check_batch(body: ScoreRequest, store: ModelStore) -> None:
    """422 when a request holds more customers than ``CVM_MAX_BATCH``."""
    if len(body.customers) > store.settings.max_batch:
        raise InvalidInputError(
            f"{len(body.customers)} customers in one request; the limit is {store.settings.max_batch}",
            field="customers",
        )


# A route's answer from the store, the parsed body, the as-of date and the request's notes
# (its options, and the warnings the answer carries).
Work = Callable[[ModelStore, Any, date, RequestNotes], dict[str, Any]]


def resolve_as_of(store: ModelStore, given: date | str | None) -> date:
    """The request's as_of: the date given, ``"model"`` (:func:`model_as_of`), or today (UTC)."""
    if given == "model":
        return model_as_of(store.snapshot())
    if isinstance(given, date):
        return given
    return datetime.now(UTC).date()


# Bodies up to this size whose requests the fast path answers (one customer takes about 1 ms)
# are scored on the event loop, with no thread hand-off and no scoring slot, as small churn
# invocations are (service/routers/invocations.py); everything else in a worker thread once a
# scoring slot is free, so that health checks and other requests never wait behind it.
INLINE_BODY_BYTES = 8 * 1024


def _answer(store: ModelStore, body: Any, work: Work, notes: RequestNotes) -> bytes:
    """The JSON answer of a parsed request (``ScoreRequest`` or ``fast_request.FastRequest``)."""
    check_batch(body, store)
    as_of = resolve_as_of(store, body.as_of)
    answer = work(store, body, as_of, notes)
    if body.as_of is None:
        stale_default_warning(as_of, notes)
    answer["warnings"] = notes.warnings
    return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)


def _fast_answer(
    store: ModelStore, model: type[ScoreRequest], work: Work, raw: bytes, content_type: str | None
) -> bytes | None:
    """The answer of a well-formed request read by orjson (service/fast_request.py) and
    scored on the fast path; None when pydantic and the pandas path must answer (always for
    a body model with fields of its own, e.g. a campaign plan's offers: the fast reader knows
    only the customer-view requests)."""
    if model is not ScoreRequest and model is not AudienceRequest:
        return None
    body = fast_request.parse(raw, content_type, audience=model is AudienceRequest)
    if body is None:
        return None
    notes = RequestNotes(keep_duplicates=body.keep_duplicates, fast_only=True)
    try:
        return _answer(store, body, work, notes)
    except NeedsReference:
        return None


def _reference_answer(
    store: ModelStore, model: type[ScoreRequest], work: Work, raw: bytes, content_type: str | None
) -> bytes:
    """The answer of a request parsed by pydantic (its 422s name the fields)."""
    body = request_body.parse(model, raw, content_type)
    notes = RequestNotes(keep_duplicates=body.keep_duplicates)
    return _answer(store, body, work, notes)


async def score_request(request: Request, model: type[ScoreRequest], work: Work) -> Response:
    """The customer-view routes' common path, with no FastAPI machinery (see
    :class:`RawRoute`): the scoring key is checked here, the body read (on the event loop, as
    bytes; 413 comes before 503), then parsed, checked, scored and written as JSON: on the
    event loop for a small body the fast path answers, else in a worker thread once a scoring
    slot is free (service/concurrency.py). ``work(store, body, as_of, notes)`` is the answer;
    ``notes.warnings`` are added to it."""
    request.state.principal = get_guard(request).check_scoring(request.headers.get(API_KEY_HEADER))
    raw = await request.body()
    store = ready_store(request)
    content_type = request.headers.get("content-type")
    small = len(raw) <= INLINE_BODY_BYTES
    if small:
        content = _fast_answer(store, model, work, raw, content_type)
        if content is not None:
            return Response(content, media_type="application/json")

    def job() -> bytes:
        found = None if small else _fast_answer(store, model, work, raw, content_type)
        return (
            found if found is not None else _reference_answer(store, model, work, raw, content_type)
        )

    content = await request.app.state.slots.run(job, size=len(raw))
    return Response(content, media_type="application/json")


class RawRoute(APIRoute):
    """A route documented by FastAPI (body, answer, responses, the router's key dependency)
    whose endpoint takes the request as it is: no dependency solving, body model or answer
    validation on the hot path (they cost more than scoring one customer). The endpoint
    checks the key itself (:func:`score_request`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint  # type: ignore[return-value]


def scoring_route(
    router: APIRouter,
    path: str,
    body: type[ScoreRequest],
    response_model: type,
    summary: str,
) -> Callable[[Work], Work]:
    """Declare a customer-view route whose answer is ``work(store, body, as_of)``: the body
    is read and scored through :func:`score_request`; the route is named after ``work``."""

    def register(work: Work) -> Work:
        async def route(request: Request) -> Response:
            return await score_request(request, body, work)

        router.add_api_route(
            path,
            route,
            methods=["POST"],
            name=work.__name__,
            response_model=response_model,
            summary=summary,
            responses={
                422: {"model": ErrorResponse, "description": "invalid input; the field is named"},
                503: BUSY,
            },
            openapi_extra=request_body.body_doc(body),
            route_class_override=RawRoute,
        )
        return work

    return register


@scoring_route(
    router,
    "/score",
    ScoreRequest,
    ScoreResponse,
    "Score customers (a single customer is a list of one)",
)
def score(
    store: ModelStore, body: ScoreRequest, as_of: date, notes: RequestNotes
) -> dict[str, Any]:
    return {"as_of": as_of, **score_customers(store, body.customers, as_of, notes)}
