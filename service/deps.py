"""Dependencies shared by the routers (``Annotated`` aliases)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.errors import ServiceUnavailable
from service.model_store import ModelStore
from service.schemas import ErrorResponse
from service.security import require_api_key


def get_store(request: Request) -> ModelStore:
    return request.app.state.store


def get_ready_store(request: Request) -> ModelStore:
    """The model store, or 503 while the models are not all loaded."""
    store: ModelStore = request.app.state.store
    if not store.ready:
        raise ServiceUnavailable(store.error or "models are loading")
    return store


ModelStoreDep = Annotated[ModelStore, Depends(get_store)]
ReadyStoreDep = Annotated[ModelStore, Depends(get_ready_store)]

# API keys (service/security.py): the scoring routers are included with
# ``dependencies=[ScoringAuth]``; the admin router has its own admin-key dependency.
ScoringAuth = Depends(require_api_key)
# What every route behind the scoring key may also answer (documented on each route).
SCORING_RESPONSES: dict[int | str, dict] = {
    401: {"model": ErrorResponse, "description": "no valid API key in X-API-Key"},
    413: {"model": ErrorResponse, "description": "body over CVM_MAX_BODY_BYTES"},
}
