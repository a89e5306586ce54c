"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service import errors
from service.config import Settings
from service.model_store import ModelStore
from service.routers import customers, health, models_info, segments

log = logging.getLogger("cvm.service")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; models load in the background when it starts (see ``/health/ready``)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        if settings.load_on_startup:
            log.info("loading models @%s from %s", settings.model_alias, settings.tracking_uri)
            app.state.store.start_loading()
        yield

    app = FastAPI(
        title="Customer value management",
        version="0.1.0",
        description=(
            "Segments, churn risk and lifetime value per customer, from models trained offline "
            "and versioned in MLflow. Monetary values are in the currency of the training data; "
            "durations in days."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = ModelStore(settings)
    errors.install(app)
    app.include_router(health.router)
    app.include_router(models_info.router)
    app.include_router(customers.router)
    app.include_router(segments.router)
    return app
