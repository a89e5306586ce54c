"""Segment labels for marketing tools: customers' labels, audiences, and the catalogue."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter

from models import playbook as pb
from models.churn.risk import churn_risk_scheme
from service.deps import ReadyStoreDep
from service.model_store import ModelStore
from service.routers.customers import scoring_route
from service.schemas import (
    AudienceRequest,
    AudienceResponse,
    CatalogueResponse,
    ErrorResponse,
    ScoreRequest,
    SegmentsResponse,
)
from service.scoring import RequestNotes, audience_customers, segment_customers

router = APIRouter(prefix="/v1/segments", tags=["segments"])


@scoring_route(
    router,
    "",
    ScoreRequest,
    SegmentsResponse,
    "Every scheme's label for each customer (a single customer is a list of one)",
)
def segment(
    store: ModelStore, body: ScoreRequest, as_of: date, notes: RequestNotes
) -> dict[str, Any]:
    return {"as_of": as_of, **segment_customers(store, body.customers, as_of, notes)}


@router.get(
    "",
    response_model=CatalogueResponse,
    summary="The schemes and their labels, with descriptions, actions and sizes at training time",
    responses={503: {"model": ErrorResponse}},
)
def catalogue(store: ReadyStoreDep) -> dict:
    loaded = store.snapshot()
    book = pb.load_playbook(store.settings.playbook)
    schemes = loaded["segmentation"].estimator.catalogue(book)
    return {
        "model_version": loaded["segmentation"].version,
        "schemes": {**schemes, "churn_risk": churn_risk_scheme(loaded["churn"].estimator)},
    }


@scoring_route(
    router,
    "/audience",
    AudienceRequest,
    AudienceResponse,
    "The customers of the request with one label (an audience), highest CLV first",
)
def audience(
    store: ModelStore, body: AudienceRequest, as_of: date, notes: RequestNotes
) -> dict[str, Any]:
    result = audience_customers(store, body.customers, as_of, body.scheme, body.label, notes)
    return {"as_of": as_of, "scheme": body.scheme, "label": body.label, **result}
