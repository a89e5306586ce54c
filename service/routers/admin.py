"""Admin: reload the served models now, and move the champion alias (promote, roll back).

Admin key required when keys are configured (a scoring key gets 403). Alias moves go through
the same gate and history as ``cvm promote`` / ``cvm rollback`` (training/registry.py), are
recorded as made by the admin API with the request id, and are served at once: the model store
is refreshed before the answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool

from models import registry_errors
from models.exceptions import CVMError
from models.families import FAMILIES
from service import observability
from service.deps import ADMIN_RESPONSES, ModelStoreDep
from service.errors import ServiceUnavailable, error_response
from service.model_store import ModelStore
from service.schemas import ErrorResponse
from service.security import require_admin_key

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin_key)],
    responses=ADMIN_RESPONSES,
)

# The model families (models.families), as the request schemas' enum.
Family = Literal[tuple(FAMILIES)]  # type: ignore[valid-type]


RELOAD_WAIT_SECONDS = 60.0


@router.post("/reload", summary="Check the registry now and swap in moved aliases or pins")
async def reload(store: ModelStoreDep) -> dict:
    """Loads in the background; requests keep being served by the current versions."""
    return _served(store, *await _reloaded(store))


async def _reloaded(store: ModelStore) -> tuple[dict[str, str], bool]:
    """Have the loader thread reload now and await it: (changes, finished in time). With
    several workers, every worker is asked too, and awaited (service/workers.py)."""
    deadline = time.monotonic() + RELOAD_WAIT_SECONDS
    group = store.group
    signal = group.announce() if group is not None else 0
    if group is not None:
        group.seen(signal)  # this worker reloads below: its watcher need not ask again
    changes, finished = await _own_reload(store, deadline)
    if group is not None:
        while not await run_in_threadpool(group.answered, signal):
            if time.monotonic() > deadline:
                return changes, False
            await asyncio.sleep(0.05)
    return changes, finished


async def _own_reload(store: ModelStore, deadline: float) -> tuple[dict[str, str], bool]:
    ticket = store.request_reload()
    if ticket is None:  # no loader thread (models not loaded at start-up): reload here
        return await run_in_threadpool(store.refresh), True
    try:
        while (changes := store.reload_outcome(ticket)) is None:
            if time.monotonic() > deadline:
                return {}, False
            await asyncio.sleep(0.02)
    except LookupError:  # the loader thread stopped (shutting down)
        return await run_in_threadpool(store.refresh), True
    return changes, True


def _served(store: ModelStore, changes: dict[str, str], finished: bool = True) -> dict[str, Any]:
    served: dict[str, Any] = {
        "changed": changes,
        "versions": {f: m.version for f, m in store.snapshot().items()},
        "errors": dict(store.errors),
    }
    if store.group is not None:
        served["workers"] = store.group.workers()
    if not finished:
        served["pending"] = True  # still loading: GET /v1/models shows when it is done
    return served


class PromoteRequest(BaseModel):
    family: Family = Field(  # type: ignore[valid-type]
        description="The model family whose challenger to promote."
    )
    force: bool = Field(default=False, description="Promote even if the gate refuses.")
    tolerances: dict[str, float | str] | None = Field(
        default=None,
        description="Per-metric tolerances of the gate: how much worse than the champion the "
        'challenger may be, a number in the metric\'s units ({"churn_roc_auc": 0.02}) or a '
        'percentage of the champion\'s value as text ({"clv_holdout_mae": "5%"}).',
    )
    reason: str = Field(default="", max_length=500, description="Why, for the alias history.")
    skip_load_check: bool = Field(
        default=False,
        description="Promote without first loading the challenger and scoring its input "
        "example (force does not skip that check).",
    )

    model_config = ConfigDict(extra="forbid")

    @field_validator("tolerances")
    @classmethod
    def _tolerances_parse(
        cls, value: dict[str, float | str] | None
    ) -> dict[str, float | str] | None:
        from training.gate import parse_tolerances  # pure: no MLflow, no training pipeline

        try:
            parse_tolerances(dict(value or {}))
        except CVMError as exc:
            raise ValueError(str(exc)) from None
        return value


class RollbackRequest(BaseModel):
    family: Family = Field(  # type: ignore[valid-type]
        description="The model family whose champion to roll back."
    )
    reason: str = Field(default="", max_length=500, description="Why, for the alias history.")

    model_config = ConfigDict(extra="forbid")


class AliasMove(BaseModel):
    family: str
    promoted: bool = Field(description="Whether @champion moved.")
    from_version: str | None = Field(description="The champion before.")
    to_version: str | None = Field(description="The version @champion points to now.")
    message: str
    gate: list[str] = Field(description="The gate's verdict per metric (empty when not run).")
    served: dict[str, Any] = Field(
        description="What the service serves after the move (as /reload)."
    )


T = TypeVar("T")


async def _in_registry(store: ModelStore, move: Callable[[], T]) -> T:
    """Run an alias move in a worker thread; a registry that cannot be reached, is locked or
    answers with an error is a 503 ``registry_unavailable`` saying so (never its password)."""
    try:
        return await run_in_threadpool(move)
    except CVMError:  # the move's own refusals (no challenger, ...): mapped in service/errors
        raise
    except Exception as exc:
        if not registry_errors.is_registry_problem(exc):
            raise
        uri = store.settings.tracking_uri
        message = f"nothing moved: {registry_errors.describe(exc, uri)}"
        raise ServiceUnavailable(message, code="registry_unavailable") from None


def _text(version: Any) -> str | None:
    return None if version is None else str(version)


def _actor(request: Request) -> str:
    principal = getattr(request.state, "principal", None)
    role = getattr(principal, "role", "anonymous")
    return f"admin API ({role} key, request {observability.request_id_var.get() or '-'})"


# A move that cannot be made (models.exceptions.RegistryError) is a 409 registry_conflict,
# mapped in service/errors.py.
_REFUSED = {"model": ErrorResponse, "description": "the gate refused, or nothing to move"}


async def _answer(
    store: ModelStore, family: str, old: Any, new: Any, message: str, gate: list[str]
) -> dict[str, Any]:
    """Serve the move now, then say what moved and what is served."""
    served = _served(store, *await _reloaded(store))
    return {
        "family": family,
        "promoted": True,
        "from_version": _text(old),
        "to_version": _text(new),
        "message": message,
        "gate": gate,
        "served": served,
    }


# What both alias moves answer.
_MOVE: dict[str, Any] = {
    "response_model": AliasMove,
    "responses": {
        409: _REFUSED,
        422: {"model": ErrorResponse},
        503: {
            "model": ErrorResponse,
            "description": "the registry cannot be reached, is locked or refused the service's "
            "credentials: nothing moved (registry_unavailable, with Retry-After)",
        },
    },
}


@router.post(
    "/promote", summary="Promote the family's @challenger to @champion through the gate", **_MOVE
)
async def promote(body: PromoteRequest, request: Request, store: ModelStoreDep) -> Any:
    from training import registry  # late: MLflow's client, needed only for alias moves

    outcome = await _in_registry(
        store,
        lambda: registry.promote(
            body.family,
            force=body.force,
            tolerances=body.tolerances,
            reason=body.reason,
            tracking_uri=store.settings.tracking_uri,
            actor=_actor(request),
            skip_load_check=body.skip_load_check,
        ),
    )
    gate = list(outcome.gate.reasons) if outcome.gate is not None else []
    if not outcome.promoted:
        details = [{"path": "family", "message": line} for line in gate]
        return error_response(409, "gate_refused", outcome.message, details)
    return await _answer(
        store, body.family, outcome.from_version, outcome.to_version, outcome.message, gate
    )


@router.post("/rollback", summary="Return the family's @champion to the previous champion", **_MOVE)
async def rollback(body: RollbackRequest, request: Request, store: ModelStoreDep) -> Any:
    from training import registry  # late: MLflow's client, needed only for alias moves

    old, new = await _in_registry(
        store,
        lambda: registry.rollback(
            body.family,
            reason=body.reason,
            tracking_uri=store.settings.tracking_uri,
            actor=_actor(request),
        ),
    )
    return await _answer(
        store, body.family, old, new, f"@champion moved back from v{old} to v{new}", []
    )
