"""The whole customer view: segments, churn, CLV, value at risk, recommended action."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from models.exceptions import InvalidInputError
from service import request_body
from service.deps import ready_store
from service.model_store import ModelStore
from service.schemas import ErrorResponse, ScoreRequest, ScoreResponse
from service.scoring import RequestNotes, model_as_of, score_customers, stale_default_warning

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


async def score_request(request: Request, model: type[ScoreRequest], work: Work) -> Response:
    """The customer-view routes' common path: the body is read here (on the event loop, as
    bytes; 413 comes before 503), then parsed, checked, scored and written as JSON in a worker
    thread once a scoring slot is free (service/concurrency.py).
    ``work(store, body, as_of, notes)`` is the answer; ``notes.warnings`` are added to it."""
    raw = await request.body()
    store = ready_store(request)
    content_type = request.headers.get("content-type")

    def job() -> bytes:
        body = request_body.parse(model, raw, content_type)
        check_batch(body, store)
        as_of = resolve_as_of(store, body.as_of)
        notes = RequestNotes(keep_duplicates=body.keep_duplicates)
        answer = work(store, body, as_of, notes)
        if body.as_of is None:
            stale_default_warning(as_of, notes)
        answer["warnings"] = notes.warnings
        return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)

    content = await request.app.state.slots.run(job, size=len(raw))
    return Response(content, media_type="application/json")


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

        router.post(
            path,
            name=work.__name__,
            response_model=response_model,
            summary=summary,
            responses={
                422: {"model": ErrorResponse, "description": "invalid input; the field is named"},
                503: BUSY,
            },
            openapi_extra=request_body.body_doc(body),
        )(route)
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
