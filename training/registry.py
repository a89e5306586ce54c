"""Registry lifecycle: champion/challenger aliases, promotion gate, rollback, alias history.

Every alias move is recorded on the model version it points to, as tags:
``event.<UTC time>-<random>.<action>`` = "<action> by <user>: <reason>" (one key per event:
see :func:`event_key`), plus ``previous_champion`` on a new champion (what ``rollback``
returns to).

Shared by the CLI and the service's admin routes, so it imports MLflow's client and the pure
gate only: never the training pipeline, tracking or plotting (a test checks that the serving
process does not load them).
"""

from __future__ import annotations

import getpass
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import mlflow
from mlflow import MlflowClient

from models.exceptions import RegistryError
from models.families import CHALLENGER, CHAMPION, FAMILIES, REGISTERED_NAMES
from training import config
from training.gate import GateResult, gate


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _client(tracking_uri: str | None) -> MlflowClient:
    """A client on ``tracking_uri``, or on the configured store (``MLFLOW_TRACKING_URI`` or
    the SQLite file under ``CVM_HOME``) when None; no global MLflow state is changed."""
    uri = tracking_uri or config.tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def record_event(
    client: MlflowClient,
    name: str,
    version: str,
    action: str,
    reason: str,
    actor: str | None = None,
) -> None:
    """Tag the version with who moved which alias, when and why (``actor``: default the
    operating-system user), under a key of its own (:func:`event_key`): no event overwrites
    another, even two moves in the same microsecond from two processes."""
    who = actor or _user()
    client.set_model_version_tag(
        name, version, event_key(action), f"{action} by {who}: {reason}"[:4900]
    )


def event_key(action: str) -> str:
    """``event.<UTC time to the microsecond>-<8 random hex>.<action>``: unique, sorts by time,
    ends with the action (readers match ``event.`` and ``.<action>``)."""
    now = datetime.now(UTC)
    return f"event.{now:%Y-%m-%dT%H:%M:%S.%fZ}-{secrets.token_hex(4)}.{action}"


def _version(client: MlflowClient, name: str, alias: str) -> Any | None:
    """The version ``name@alias``; None when the model or the alias does not exist (a registry
    that cannot be read raises: "no challenger" would be the wrong story)."""
    from models.registry_errors import is_missing

    try:
        return client.get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException as exc:
        if is_missing(exc):
            return None
        raise


def save_comparison(
    family: str,
    version: str,
    champion_version: str | None,
    champion: dict[str, float],
    challenger: dict[str, float],
) -> None:
    """Store the holdout comparison on the challenger version (read by :func:`promote`)."""
    client = _client(None)
    name = REGISTERED_NAMES[family]
    payload = {"champion_version": champion_version, "champion": champion, "challenger": challenger}
    client.set_model_version_tag(name, version, "gate_metrics", json.dumps(payload))


def check_loads(client: MlflowClient, name: str, version: str) -> None:
    """Load the version's pyfunc as the service does and score its input example; an
    exception naming the cause when it cannot (a broken or missing artifact, a version this
    code cannot read, an input example it does not score)."""
    import mlflow.pyfunc  # the pyfunc loader only; never the training pipeline

    from models import check_model_format

    try:
        check_model_format(name, version, client.get_model_version(name, version).tags)
        model = mlflow.pyfunc.load_model(client.get_model_version_download_uri(name, version))
        example = model.input_example
        if example is not None:
            scored = model.predict(example)
            if len(scored) != len(example):
                raise ValueError(f"it scored {len(scored)} rows for {len(example)}")
    except Exception as exc:
        raise _LoadError(f"{type(exc).__name__}: {exc}") from exc


class _LoadError(Exception):
    """The version does not load or score (the cause as text)."""


@dataclass
class PromotionOutcome:
    family: str
    promoted: bool
    from_version: str | None
    to_version: str | None
    gate: GateResult | None
    message: str


def promote(
    family: str,
    *,
    force: bool = False,
    tolerances: Mapping[str, object] | None = None,
    reason: str = "",
    tracking_uri: str | None = None,
    actor: str | None = None,
    skip_load_check: bool = False,
) -> PromotionOutcome:
    """Move ``champion`` to the challenger if it passes the gate (or ``force``) and loads.

    Before the alias moves, the challenger is loaded and scores its input example
    (:func:`check_loads`); ``force`` does not skip that, only ``skip_load_check`` does.
    ``tolerances``: per metric, a number (in the metric's units), ``"5%"`` (of the champion's
    value) or a :class:`training.gate.Tolerance`. ``tracking_uri``: the store (default: the
    configured one); ``actor``: who, for the alias history (default: the operating-system
    user)."""
    client = _client(tracking_uri)
    name = REGISTERED_NAMES[family]
    challenger = _version(client, name, CHALLENGER)
    if challenger is None:
        raise RegistryError(f"{name} has no @{CHALLENGER}: run cvm retrain first")
    champion = _version(client, name, CHAMPION)
    result: GateResult | None = None
    stored = challenger.tags.get("gate_metrics")
    if champion is not None and stored:
        metrics = json.loads(stored)
        if str(metrics.get("champion_version")) != str(champion.version):
            raise RegistryError(
                f"{name} v{challenger.version} was compared with v{metrics.get('champion_version')}, "
                f"but the champion is now v{champion.version}: run cvm retrain again"
            )
        result = gate(family, metrics["champion"], metrics["challenger"], tolerances)
    elif champion is not None and not force:
        raise RegistryError(
            f"{name} v{challenger.version} has no holdout comparison: run cvm retrain"
        )
    if result is not None and not result.passed and not force:
        return PromotionOutcome(
            family,
            False,
            champion.version if champion else None,
            challenger.version,
            result,
            f"refused: {result.message()}",
        )
    if not skip_load_check:
        _check_before_promotion(client, name, challenger.version, champion)
    why = reason or (
        "forced"
        if force and (result is None or not result.passed)
        else (result.message() if result else "first champion")
    )
    client.set_registered_model_alias(name, CHAMPION, challenger.version)
    client.delete_registered_model_alias(name, CHALLENGER)
    if champion is not None:
        client.set_model_version_tag(
            name, challenger.version, "previous_champion", champion.version
        )
        record_event(
            client,
            name,
            champion.version,
            "retired",
            f"replaced by v{challenger.version}",
            actor,
        )
    record_event(client, name, challenger.version, "promoted", why, actor)
    return PromotionOutcome(
        family,
        True,
        champion.version if champion else None,
        challenger.version,
        result,
        f"promoted v{challenger.version} to @{CHAMPION}"
        + (f" (was v{champion.version})" if champion else ""),
    )


def _check_before_promotion(
    client: MlflowClient, name: str, version: str, champion: Any | None
) -> None:
    try:
        check_loads(client, name, version)
    except _LoadError as exc:
        stays = f"@{CHAMPION} stays on v{champion.version}" if champion else f"@{CHAMPION} unset"
        raise RegistryError(
            f"{name} v{version} was not promoted: it does not load and score its input example "
            f"({exc}). {stays}. Register a version that loads (cvm retrain); to promote it "
            'anyway, skip the check (cvm promote --skip-load-check, or "skip_load_check": true)'
        ) from exc


def rollback(
    family: str, *, reason: str = "", tracking_uri: str | None = None, actor: str | None = None
) -> tuple[str, str]:
    """Point ``champion`` back at the previous champion; returns (from, to) versions
    (``tracking_uri`` and ``actor`` as in :func:`promote`)."""
    client = _client(tracking_uri)
    name = REGISTERED_NAMES[family]
    current = _version(client, name, CHAMPION)
    if current is None:
        raise RegistryError(f"{name} has no @{CHAMPION} to roll back")
    previous = current.tags.get("previous_champion")
    if not previous:
        raise RegistryError(f"{name} v{current.version} has no previous champion to roll back to")
    client.set_registered_model_alias(name, CHAMPION, previous)
    record_event(
        client,
        name,
        current.version,
        "rolled_back",
        reason or f"champion returned to v{previous}",
        actor,
    )
    record_event(
        client, name, previous, "restored", reason or f"rollback from v{current.version}", actor
    )
    return str(current.version), str(previous)


def champion_as_of(tracking_uri: str | None = None) -> dict[str, str | None]:
    """``{family: as_of}`` of each family's current champion (None: no champion, or a version
    without an ``as_of`` tag; an optional family only when it has a champion)."""
    client = _client(tracking_uri)
    out: dict[str, str | None] = {}
    for family, name in REGISTERED_NAMES.items():
        version = _version(client, name, CHAMPION)
        if version is not None or FAMILIES[family].required:
            out[family] = version.tags.get("as_of") if version is not None else None
    return out


def alias_versions() -> dict[str, dict[str, str | None]]:
    """``{family: {"champion": v, "challenger": v}}``; an optional family (uplift) only when
    it has either alias."""
    client = _client(None)
    out: dict[str, dict[str, str | None]] = {}
    for family, name in REGISTERED_NAMES.items():
        versions = {}
        for alias in (CHAMPION, CHALLENGER):
            version = _version(client, name, alias)
            versions[alias] = str(version.version) if version is not None else None
        if FAMILIES[family].required or any(versions.values()):
            out[family] = versions
    return out
