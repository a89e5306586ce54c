"""Dependencies shared by the routers (``Annotated`` aliases)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.config import Settings
from service.errors import ServiceUnavailable
from service.model_store import ModelStore
from service.security import Principal, require_admin_key, require_api_key


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> ModelStore:
    return request.app.state.store


def get_ready_store(request: Request) -> ModelStore:
    """The model store, or 503 while the models are not all loaded."""
    store: ModelStore = request.app.state.store
    if not store.ready:
        raise ServiceUnavailable(store.error or "models are loading")
    return store


SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelStoreDep = Annotated[ModelStore, Depends(get_store)]
ReadyStoreDep = Annotated[ModelStore, Depends(get_ready_store)]


# API keys (service/security.py). Scoring routers are included with
# ``dependencies=[ScoringAuth]``; admin routes use ``dependencies=[AdminAuth]`` (or take
# ``principal: AdminDep`` to know who called).
ScoringAuth = Depends(require_api_key)
AdminAuth = Depends(require_admin_key)
ScoringDep = Annotated[Principal, Depends(require_api_key)]
AdminDep = Annotated[Principal, Depends(require_admin_key)]
