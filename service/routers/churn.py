"""Churn risk with reasons, churn type and early-warning alerts."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter

from service.model_store import ModelStore
from service.routers.customers import scoring_route
from service.schemas import ChurnResponse, ScoreRequest
from service.scoring import RequestNotes, churn_customers

router = APIRouter(prefix="/v1/churn", tags=["churn"])


@scoring_route(
    router,
    "",
    ScoreRequest,
    ChurnResponse,
    "Churn probability, risk band, top reasons, churn type and alerts per customer",
)
def churn(
    store: ModelStore, body: ScoreRequest, as_of: date, notes: RequestNotes
) -> dict[str, Any]:
    return {"as_of": as_of, **churn_customers(store, body.customers, as_of, notes)}
