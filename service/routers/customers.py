"""The whole customer view: segments, churn, CLV, value at risk, recommended action."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from models.exceptions import InvalidInputError
from service.deps import ReadyStoreDep
from service.model_store import ModelStore
from service.schemas import ErrorResponse, ScoreRequest, ScoreResponse
from service.scoring import score_customers

router = APIRouter(prefix="/v1/customers", tags=["customers"])


def check_batch(body: ScoreRequest, store: ModelStore) -> None:
    """422 when a request holds more customers than ``CVM_MAX_BATCH``."""
    if len(body.customers) > store.settings.max_batch:
        raise InvalidInputError(
            f"{len(body.customers)} customers in one request; the limit is {store.settings.max_batch}",
            field="customers",
        )


@router.post(
    "/score",
    response_model=ScoreResponse,
    summary="Score customers (a single customer is a list of one)",
    responses={
        422: {"model": ErrorResponse, "description": "invalid input; the field is named"},
        503: {"model": ErrorResponse, "description": "models not loaded yet"},
    },
)
def score(body: ScoreRequest, store: ReadyStoreDep) -> dict:
    check_batch(body, store)
    as_of = body.as_of or datetime.now(UTC).date()
    return {"as_of": as_of, **score_customers(store, body.customers, as_of)}
