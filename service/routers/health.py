"""Liveness and readiness. Both are ``async`` and take no dependencies: they run on the event
loop at once, never in the worker threads that scoring keeps busy."""

from __future__ import annotations

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
    store = request.app.state.store
    if store.ready:
        versions = {f: m.version for f, m in store.models.items()}
        return JSONResponse({"status": "ready", "models": versions})
    return error_response(503, "not_ready", store.error or "models are loading")
