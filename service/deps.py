"""Dependencies shared by the routers (``Annotated`` aliases)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from service.errors import ServiceUnavailable
from service.model_store import ModelStore
from service.schemas import ErrorResponse
from service.security import API_KEY_HEADER, require_api_key


# async: FastAPI runs a plain ``def`` dependency in its worker threads, which scoring may keep
# busy; these only read an attribute.
async def get_store(request: Request) -> ModelStore:
    return request.app.state.store


async def get_ready_store(request: Request) -> ModelStore:
    return ready_store(request)


def ready_store(request: Request) -> ModelStore:
    """The model store, or 503 while the models are not all loaded."""
    store: ModelStore = request.app.state.store
    if not store.ready:
        raise ServiceUnavailable(store.error or "models are loading")
    return store


ModelStoreDep = Annotated[ModelStore, Depends(get_store)]
ReadyStoreDep = Annotated[ModelStore, Depends(get_ready_store)]

# API keys (service/security.py): the scoring routers are included with
# ``dependencies=[ScoringAuth], responses=SCORING_RESPONSES``; the admin router has its own
# admin-key dependency and ADMIN_RESPONSES. /invocations declares its own (invocations_openapi).
ScoringAuth = Depends(require_api_key)

_UNAUTHORIZED: dict[str, Any] = {
    "model": ErrorResponse,
    "description": f"no valid API key in {API_KEY_HEADER} (when keys are configured)",
    "headers": {
        "WWW-Authenticate": {
            "description": f'ApiKey header="{API_KEY_HEADER}"',
            "schema": {"type": "string"},
        }
    },
}
SCORING_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _UNAUTHORIZED,
    413: {"model": ErrorResponse, "description": "body over CVM_MAX_BODY_BYTES"},
}
ADMIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _UNAUTHORIZED,
    403: {
        "model": ErrorResponse,
        "description": "a scoring key, not an admin key; or admin routes disabled "
        "(CVM_API_KEYS set, CVM_ADMIN_KEYS not)",
    },
}
