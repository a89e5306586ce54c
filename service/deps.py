"""Dependencies shared by the routers (``Annotated`` aliases)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.errors import ServiceUnavailable
from service.model_store import ModelStore
from service.security import require_api_key


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
# ``dependencies=[ScoringAuth]``; the admin router has its own admin-key dependency.
ScoringAuth = Depends(require_api_key)
