"""Segment labels for marketing tools: one customer's labels, and the catalogue of labels."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from models import playbook as pb
from service.deps import ReadyStoreDep
from service.routers.customers import check_batch
from service.schemas import CatalogueResponse, ErrorResponse, ScoreRequest, SegmentsResponse
from service.scoring import segment_customers

router = APIRouter(prefix="/v1/segments", tags=["segments"])


@router.post(
    "",
    response_model=SegmentsResponse,
    summary="Every scheme's label for each customer (a single customer is a list of one)",
    responses={422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)
def segment(body: ScoreRequest, store: ReadyStoreDep) -> dict:
    check_batch(body, store)
    as_of = body.as_of or datetime.now(UTC).date()
    return {"as_of": as_of, **segment_customers(store, body.customers, as_of)}


@router.get(
    "",
    response_model=CatalogueResponse,
    summary="The schemes and their labels, with descriptions, actions and sizes at training time",
    responses={503: {"model": ErrorResponse}},
)
def catalogue(store: ReadyStoreDep) -> dict:
    loaded = store.get("segmentation")
    book = pb.load_playbook(store.settings.playbook)
    return {"model_version": loaded.version, "schemes": loaded.estimator.catalogue(book)}
