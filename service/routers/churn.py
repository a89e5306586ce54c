"""Churn risk with reasons, churn type and early-warning alerts."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from service.deps import ReadyStoreDep
from service.routers.customers import check_batch
from service.schemas import ChurnResponse, ErrorResponse, ScoreRequest
from service.scoring import churn_customers

router = APIRouter(prefix="/v1/churn", tags=["churn"])


@router.post(
    "",
    response_model=ChurnResponse,
    summary="Churn probability, risk band, top reasons, churn type and alerts per customer",
    responses={422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)
def churn(body: ScoreRequest, store: ReadyStoreDep) -> dict:
    check_batch(body, store)
    as_of = body.as_of or datetime.now(UTC).date()
    return {"as_of": as_of, **churn_customers(store, body.customers, as_of)}
