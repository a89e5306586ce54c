"""What is served: name, version, alias, run id, key metrics."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import ModelStoreDep
from service.schemas import ModelsResponse

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models", response_model=ModelsResponse, summary="The served model versions")
def list_models(store: ModelStoreDep) -> dict:
    return {
        "ready": store.ready,
        "error": store.error,
        "errors": dict(store.errors),
        "reload_interval_seconds": store.settings.reload_interval,
        "models": [m.describe() for m in store.snapshot().values()],
        "warnings": [w for w in (store.as_of_warning(),) if w],
        "workers": store.group.workers() if store.group is not None else None,
    }
