"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from starlette.responses import Response

from models.redact import redact
from service import api_docs, errors, limits, observability, request_body, security, workers
from service.concurrency import ScoringSlots
from service.config import Settings
from service.deps import SCORING_RESPONSES, ScoringAuth
from service.model_store import ModelStore
from service.routers import (
    admin,
    campaigns,
    churn,
    customers,
    health,
    invocations,
    models_info,
    reports,
    segments,
)
from service.schemas import AudienceRequest, ScoreRequest

log = logging.getLogger("cvm.service")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; models load in the background when it starts (see ``/health/ready``)."""
    settings = settings or Settings()
    guard = security.Guard.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        observability.configure_logging(settings.log_format, settings.log_level)
        limits.cap_native_threads(settings.blas_threads)
        limits.shorten_gil_slices()
        security.log_startup_warnings(guard)
        if settings.load_on_startup:
            where = redact(settings.tracking_uri)
            log.info("loading models @%s from %s", settings.model_alias, where)
            app.state.store.start_loading()
        yield
        app.state.store.stop()
        workers.mark_dead()

    app = FastAPI(
        title="Customer value management",
        version="0.1.0",
        description=(
            "Segments, churn risk and lifetime value per customer, from models trained offline "
            "and versioned in MLflow. Monetary values are in the currency of the training data; "
            "durations in days."
        ),
        lifespan=lifespan,
        docs_url=None,  # served from the package's own assets, no CDN (service/api_docs.py)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = ModelStore(settings)
    app.state.guard = guard
    app.state.slots = ScoringSlots(settings.max_concurrent, settings.queue_timeout)
    app.state.metrics_registry = observability.app_registry(app.state.store)
    errors.install(app)
    # Middleware: the last added runs first (outermost).
    app.add_middleware(limits.BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=security.parse_keys(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", security.API_KEY_HEADER, "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(observability.ObservabilityMiddleware, access_log=settings.access_log)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        return observability.metrics_response(request)

    # the hot route first: requests are matched against the routes in order
    app.include_router(invocations.router)  # checks the scoring key itself (no dependencies)
    app.include_router(health.router)
    for scoring in (models_info, customers, segments, churn, campaigns, reports):
        app.include_router(scoring.router, dependencies=[ScoringAuth], responses=SCORING_RESPONSES)
    app.include_router(admin.router)  # its own admin-key dependency
    api_docs.install(app)
    _document_request_bodies(app)
    return app


def _document_request_bodies(app: FastAPI) -> None:
    """The customer-view routes read their bodies themselves (service/request_body.py): their
    models go into the OpenAPI document's components as FastAPI would have put them."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            request_body.add_schemas(
                generate(),
                [ScoreRequest, AudienceRequest, campaigns.PlanRequest, reports.ChurnReportRequest],
            )
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
