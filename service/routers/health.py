"""Liveness and readiness. Both are ``async`` and take no dependencies: they run on the event
loop at once, never in the worker threads that scoring keeps busy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from service.errors import error_response
from service.responses import JSONResponse

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", summary="The process is up")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="All models are loaded (503 until then)",
    responses={503: {"description": "models not loaded yet, or loading failed"}},
)
async def ready(request: Request) -> JSONResponse:
    """200 while every family has a version in memory, even if the latest reload failed (the
    registry unreadable, a version that does not load): those versions still answer. Then
    ``errors`` says what failed and ``fallback`` which families serve a version other than
    their alias target."""
    store = request.app.state.store
    models = store.snapshot()
    if not store.ready:
        return error_response(503, "not_ready", store.error or "models are loading")
    body: dict[str, Any] = {"status": "ready", "models": {f: m.version for f, m in models.items()}}
    fallback = {
        f: {"version": m.version, "instead_of": m.alias_target["version"]}
        for f, m in models.items()
        if m.alias_target is not None
    }
    if fallback:
        body["fallback"] = fallback
    errors = store.errors
    if errors:
        body["errors"] = dict(errors)
    return JSONResponse(body)
