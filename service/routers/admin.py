"""Admin: reload the served models now (admin key required when keys are configured)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from service.deps import ModelStoreDep
from service.security import require_admin_key

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin_key)])


@router.post("/reload", summary="Check the registry now and swap in moved aliases or pins")
async def reload(store: ModelStoreDep) -> dict:
    """Loads in a worker thread; requests keep being served by the current versions."""
    changes = await run_in_threadpool(store.refresh)
    return {
        "changed": changes,
        "versions": {f: m.version for f, m in store.snapshot().items()},
        "errors": dict(store.errors),
    }
