"""Churn risk with reasons, churn type and early-warning alerts."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from service import request_body
from service.model_store import ModelStore
from service.routers.customers import BUSY, score_request
from service.schemas import ChurnResponse, ErrorResponse, ScoreRequest
from service.scoring import churn_customers

router = APIRouter(prefix="/v1/churn", tags=["churn"])


@router.post(
    "",
    response_model=ChurnResponse,
    summary="Churn probability, risk band, top reasons, churn type and alerts per customer",
    responses={422: {"model": ErrorResponse}, 503: BUSY},
    openapi_extra=request_body.body_doc(ScoreRequest),
)
async def churn(request: Request) -> Response:
    return await score_request(request, ScoreRequest, _churn)


def _churn(store: ModelStore, body: ScoreRequest, as_of: date) -> dict[str, Any]:
    return {"as_of": as_of, **churn_customers(store, body.customers, as_of)}
