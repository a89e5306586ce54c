"""Loads the served model versions from the MLflow registry and swaps in new ones live
(with ``service/sqlite_registry.py``, the only service modules that import mlflow).

- Models load in the background after start-up: liveness answers at once, readiness turns
  200 when the three required families are in memory. The optional uplift family
  (``cvm-uplift``, trained from campaign history) is loaded, reloaded and reported like the
  others when the registry has it; a registry without it is no error.
- Which version: a per-family pin (``CVM_CHURN_MODEL=7`` or ``models:/cvm-churn/7``) wins;
  otherwise the alias (``CVM_MODEL_ALIAS``, default ``champion``).
- Hot reload: every ``CVM_RELOAD_INTERVAL`` seconds (and on ``POST /v1/admin/reload``, which
  asks the loader thread and waits for it without holding a worker thread) the store checks
  the registry (a SQLite file: missing, locked or replaced, see ``service/sqlite_registry.py``)
  and resolves every family's target version; the changed ones are loaded, each checked by
  scoring its own input example, and then all are swapped in with one reference assignment.
  A request takes one snapshot of the dict, so it never mixes versions of two reloads.
- When loading or the check fails, the old version keeps serving, shown as a fallback: its
  ``alias`` is null and ``alias_target`` says which version the alias points to and why it
  is not served. A replica with nothing loaded yet falls back to the previous champion (the
  ``previous_champion`` tag of the broken champion). Errors are in ``/v1/models``, the
  fallbacks in ``/health/ready`` and the metrics, and logged at error level.
"""

from __future__ import annotations

import gc
import logging
import re
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from models import check_model_format, registry_errors
from models.churn.encoding import frame_columns
from models.drift import DriftMonitor
from models.families import CHAMPION, FAMILIES, REQUIRED_FAMILIES, mixed_as_of
from models.redact import redact
from service import observability
from service.config import REGISTERED_NAMES, Settings
from service.input_schema import InputSchema
from service.reload_loop import ReloadLoop
from service.sqlite_registry import RegistryFileError, SqliteRegistry, sqlite_file
from service.workers import WorkerGroup

log = logging.getLogger("cvm.models")


@dataclass
class LoadedModel:
    """One family's served version and its registry facts."""

    family: str
    name: str
    version: str
    alias: str | None
    run_id: str | None
    estimator: Any
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    drift: DriftMonitor | None = None
    loaded_at: float = field(default_factory=time.time)
    # The version's input columns, compiled once here: the invocations route validates with
    # them (None when the version has no usable signature: that route answers 503)
    input_schema: InputSchema | None = None
    # False when the estimator's column-wise fast path did not reproduce the pyfunc on the
    # version's input example: the route then scores through the DataFrame path
    fast_path: bool = True
    # Set while this version serves in place of the one its alias (or pin) points to, which
    # failed to load: {"alias", "version", "error"} (a fallback; None when it is the target)
    alias_target: dict[str, str | None] | None = None
    # When the version was registered (Unix time; None: unknown): ``"as_of": "model"`` adds
    # the time since then to the version's data date
    registered_at: float | None = None

    @property
    def fallback(self) -> bool:
        return self.alias_target is not None

    def describe_as_of(self) -> str | None:
        """The as-of date of the data this version was trained on."""
        return self.tags.get("as_of") or self.params.get("as_of")

    def describe(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "run_id": self.run_id,
            "metrics": {
                k: self.metrics[k] for k in FAMILIES[self.family].key_metrics if k in self.metrics
            },
            "as_of": self.describe_as_of(),
            "data_fingerprint": self.tags.get("data_fingerprint"),
            "git_commit": self.tags.get("git_commit"),
            "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at)),
            "drift": self.drift.report() if self.drift is not None else None,
            "fallback": self.fallback,
            "alias_target": self.alias_target,
            "signature": (
                [
                    {"name": c.name, "type": c.type, "required": c.required}
                    for c in self.input_schema.columns
                ]
                if self.input_schema is not None
                else None
            ),
        }


def _check_fast_path(name: str, version: Any, estimator: Any, example: Any, scored: Any) -> bool:
    """Prepare the estimator's column-wise fast path (``compile``) and check that it scores
    the version's input example exactly as the pyfunc did; False (logged) when it does not."""
    fast = getattr(estimator, "predict_proba_columns", None)
    if fast is None:
        return True  # nothing to check: the route uses the DataFrame path
    try:
        compile_ = getattr(estimator, "compile", None)
        if compile_ is not None:
            compile_()
            if getattr(estimator, "compiled_", True) is False:
                log.warning(
                    "%s v%s: trees not compiled (%s); small requests use the estimator itself",
                    name,
                    version,
                    getattr(estimator, "compile_error_", "unknown reason"),
                )
        if example is None or scored is None:
            return True
        got = np.asarray(fast(frame_columns(example), len(example)))[:, 1]
        expected = np.asarray(scored["churn_probability"], dtype=float)
        if np.array_equal(got, expected, equal_nan=True):
            return True
        reason = (
            "differs from the pyfunc on the input example "
            f"(max {float(np.nanmax(np.abs(got - expected))):.3g})"
        )
    except Exception as exc:  # a broken fast path must not stop the version from serving
        reason = f"failed: {type(exc).__name__}: {exc}"
    log.error("%s v%s: the fast path %s; using the DataFrame path", name, version, reason)
    disable = getattr(estimator, "disable_fast_path", None)
    if disable is not None:  # the customer view and churn reasons call the estimator too
        disable(reason)
    return False


def _registered_at(version: Any) -> float | None:
    """The version's creation time in seconds (MLflow keeps milliseconds), or None."""
    stamp = getattr(version, "creation_timestamp", None)
    return float(stamp) / 1000 if isinstance(stamp, int | float) and stamp > 0 else None


def _input_schema(name: str, version: Any, signature: Any) -> InputSchema | None:
    """The version's MLflow input signature compiled for validation; None (logged) when it
    has none or it cannot be served (the customer routes still use the version)."""
    if signature is None:
        log.warning("%s v%s has no input signature: /invocations answers 503", name, version)
        return None
    try:
        return InputSchema.from_mlflow(signature.to_dict())
    except Exception as exc:
        log.warning("%s v%s: no input schema for /invocations: %s", name, version, exc)
        return None


def scoring_versions(loaded: dict[str, LoadedModel]) -> dict[str, str]:
    """The versions behind a customer-view answer (``model_versions``): the required families
    only (the uplift model takes no part in it)."""
    return {f: m.version for f, m in loaded.items() if f in REQUIRED_FAMILIES}


class ModelStore:
    """The served models by family; ``ready`` when the required families are loaded."""

    def __init__(self, settings: Settings):
        self.settings = settings
        settings.registry_http_defaults()
        # Both dicts are replaced whole, never changed in place: readers take them lock-free
        self.models: dict[str, LoadedModel] = {}
        self.errors: dict[str, str] = {}
        self._refresh_lock = threading.Lock()
        self._loop = ReloadLoop(self.refresh, settings.reload_interval)
        # the other workers of this `cvm serve --workers N` (None: this process serves alone)
        self.group = WorkerGroup.from_env()
        path = sqlite_file(settings.tracking_uri)
        self._sqlite = (
            SqliteRegistry(settings.tracking_uri, path, settings.registry_timeout)
            if path is not None
            else None
        )

    # --- state ------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return all(f in self.models for f in REQUIRED_FAMILIES)

    @property
    def error(self) -> str | None:
        return "; ".join(f"{f}: {e}" for f, e in self.errors.items()) or None

    def get(self, family: str) -> LoadedModel:
        return self.models[family]

    def snapshot(self) -> dict[str, LoadedModel]:
        """The models a request uses from start to end, even if a reload swaps one meanwhile."""
        return dict(self.models)

    # --- background work (service/reload_loop.py) ------------------------------------------
    def start_loading(self) -> None:
        """Load now in a background thread, then reload every interval and when asked
        (also by another worker of the same server: service/workers.py)."""
        self._loop.start()
        if self.group is not None:
            self.group.watch(self._loop.request_reload)

    def stop(self) -> None:
        self._loop.stop()
        if self.group is not None:
            self.group.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the first load attempt finished; returns ``ready``."""
        self._loop.first_load.wait(timeout)
        return self.ready

    def request_reload(self) -> tuple[int, int] | None:
        return self._loop.request_reload()

    def reload_outcome(self, ticket: tuple[int, int]) -> dict[str, str] | None:
        return self._loop.reload_outcome(ticket)

    # --- loading -------------------------------------------------------------------------------
    def _client(self) -> Any:
        from mlflow import MlflowClient  # heavy: imported by the loader thread, not at start-up

        if self._sqlite is not None:
            self._sqlite.check()  # missing, locked or replaced: see service/sqlite_registry.py
        uri = self.settings.tracking_uri
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def _target(self, client: Any, family: str) -> tuple[Any, str | None]:
        """The model version to serve for ``family`` and the alias it came from (None if pinned)."""
        import mlflow  # heavy: imported by the loader thread, not at start-up

        name = REGISTERED_NAMES[family]
        pin = getattr(self.settings, f"{family}_model", None)
        if pin:
            match = re.fullmatch(rf"(?:models:/{re.escape(name)}/)?(\d+)", pin.strip())
            if not match:
                raise ValueError(
                    f"CVM_{family.upper()}_MODEL={pin!r}: use a version number or models:/{name}/N"
                )
            try:
                return client.get_model_version(name, match.group(1)), None
            except mlflow.exceptions.MlflowException as exc:
                if not registry_errors.is_missing(exc):
                    raise  # unreachable, locked, ...: described by registry_errors
                raise LookupError(
                    f"{name} has no version {match.group(1)} in the registry at "
                    f"{redact(self.settings.tracking_uri)}: check CVM_{family.upper()}_MODEL"
                ) from exc
        alias = self.settings.model_alias
        try:
            return client.get_model_version_by_alias(name, alias), alias
        except mlflow.exceptions.MlflowException as exc:
            if not registry_errors.is_missing(exc):
                raise  # unreachable, locked, ...: described by registry_errors
            raise LookupError(
                f"no '{name}@{alias}' in the registry at {redact(self.settings.tracking_uri)}: "
                "train first (cvm train --demo)"
            ) from exc

    def _load(self, client: Any, family: str, version: Any, alias: str | None) -> LoadedModel:
        """Load one version and check it by scoring its own input example."""
        import mlflow  # heavy: imported by the loader thread, not at start-up

        name = REGISTERED_NAMES[family]
        check_model_format(name, version.version, version.tags)
        source = client.get_model_version_download_uri(name, version.version)
        pyfunc = mlflow.pyfunc.load_model(source)
        example = pyfunc.input_example
        scored = None
        if example is not None:
            scored = pyfunc.predict(example)
            if len(scored) != len(example):
                raise ValueError(
                    f"{name} v{version.version} scored {len(scored)} rows for {len(example)}"
                )
        wrapper = pyfunc.unwrap_python_model()
        fast_path = _check_fast_path(name, version.version, wrapper.model, example, scored)
        input_schema = _input_schema(name, version.version, pyfunc.metadata.get_input_schema())
        metrics: dict[str, float] = {}
        params: dict[str, str] = {}
        if version.run_id:
            run = client.get_run(version.run_id)
            metrics, params = dict(run.data.metrics), dict(run.data.params)
        reference = getattr(wrapper, "drift_reference", None)
        return LoadedModel(
            family=family,
            name=name,
            version=str(version.version),
            alias=alias,
            run_id=version.run_id,
            estimator=wrapper.model,
            metrics=metrics,
            params=params,
            tags=dict(version.tags or {}),
            drift=DriftMonitor(reference, self.settings.drift_min_rows) if reference else None,
            input_schema=input_schema,
            fast_path=fast_path,
            registered_at=_registered_at(version),
        )

    def refresh(self) -> dict[str, str]:
        """Swap in every family whose target version changed; ``{family: "old -> new"}``.

        Every changed family is loaded first, then all are swapped in one assignment. Failures
        keep the old version serving (a fallback, :meth:`_stand_in`) and are kept in
        ``errors``; a registry that cannot be read stops the reload and keeps everything.
        With several workers, the outcome is published for the others (service/workers.py).
        """
        if self.group is None:
            return self._refresh()
        signal = self.group.signal()  # this reload answers every signal given before it
        try:
            return self._refresh()
        finally:
            self.group.publish(
                {
                    "signal": signal,
                    "reloaded_at": time.time(),
                    "ready": self.ready,
                    "versions": {f: m.version for f, m in self.models.items()},
                    "errors": dict(self.errors),
                }
            )

    def _refresh(self) -> dict[str, str]:
        with self._refresh_lock:
            try:
                client = self._client()
            except Exception as exc:  # an unreachable store must not stop the service
                message = (
                    redact(str(exc))
                    if isinstance(exc, RegistryFileError)
                    else registry_errors.describe(exc, self.settings.tracking_uri)
                )
                self.errors = {**self.errors, "registry": message}
                log.error("reading the registry failed, serving what is loaded: %s", message)
                return {}
            errors: dict[str, str] = {}
            targets = self._targets(client, errors)
            current = self.models
            updates: dict[str, LoadedModel] = {}
            for family, (version, alias) in targets.items():
                update = self._update(client, family, version, alias, current.get(family), errors)
                if update is not None:
                    updates[family] = update
            changes = {
                family: f"{current[family].version if family in current else 'none'} -> "
                f"{model.version}"
                for family, model in updates.items()
                if family not in current or current[family].version != model.version
            }
            self.models = {**current, **updates}  # one swap: every family together
            self.errors = errors
            if changes:
                warning = self.as_of_warning()
                if warning:
                    log.warning("%s", warning)
                gc.collect()
                gc.freeze()  # long-lived model objects out of the collector's way (p99 latency)
        return changes

    def as_of_warning(self) -> str | None:
        """A warning when the served versions were trained on data as of different dates."""
        return mixed_as_of({f: m.describe_as_of() for f, m in self.snapshot().items()})

    def _targets(self, client: Any, errors: dict[str, str]) -> dict[str, tuple[Any, str | None]]:
        """Every family's target version and alias, resolved before anything loads."""
        targets: dict[str, tuple[Any, str | None]] = {}
        unreadable = False  # a required family's look-up failed: the registry, not the model
        for family in REGISTERED_NAMES:  # the required families first
            absent_optional = self._absent_optional(family)
            if absent_optional and unreadable:
                continue  # already reported; one more look-up would only wait again
            try:
                targets[family] = self._target(client, family)
            except Exception as exc:  # reported, never raised: the old version keeps serving
                if absent_optional:
                    # e.g. no cvm-uplift (a registry that never saw campaign history); a
                    # registry that cannot be read is reported by the required families
                    continue
                unreadable |= not isinstance(exc, LookupError)
                errors[family] = registry_errors.describe(exc, self.settings.tracking_uri)
                current = self.models.get(family)
                log.error(
                    "loading %s failed, serving %s: %s",
                    family,
                    f"v{current.version}" if current else "nothing",
                    errors[family],
                )
                observability.record_model_load(family, "unknown", False)
        return targets

    def _absent_optional(self, family: str) -> bool:
        """An optional family (uplift) neither pinned nor served: its absence from the
        registry is not an error, nor is a failed look-up (the required families, looked up
        first, report a registry that cannot be read)."""
        return (
            not FAMILIES[family].required
            and not getattr(self.settings, f"{family}_model", None)
            and family not in self.models
        )

    def _update(
        self,
        client: Any,
        family: str,
        version: Any,
        alias: str | None,
        current: LoadedModel | None,
        errors: dict[str, str],
    ) -> LoadedModel | None:
        """What ``family`` serves after this reload (None: unchanged)."""
        target = str(version.version)
        if current is not None and current.version == target:
            if current.alias == alias and current.alias_target is None:
                return None
            return replace(current, alias=alias, alias_target=None)
        started = time.perf_counter()
        try:
            loaded = self._load(client, family, version, alias)
        except Exception as exc:  # reported, never raised: the old version keeps serving
            errors[family] = registry_errors.describe(exc, self.settings.tracking_uri)
            observability.record_model_load(family, target, False)
            return self._stand_in(client, family, version, alias, current, errors)
        seconds = time.perf_counter() - started
        observability.record_model_load(family, loaded.version, True, seconds)
        log.info(
            "serving %s v%s (@%s), loaded in %.1fs",
            loaded.name,
            loaded.version,
            alias or "pinned",
            seconds,
        )
        return loaded

    def _stand_in(
        self,
        client: Any,
        family: str,
        version: Any,
        alias: str | None,
        current: LoadedModel | None,
        errors: dict[str, str],
    ) -> LoadedModel | None:
        """What serves in place of a target that failed to load: the version served so far
        or, on a replica with nothing loaded yet, the previous champion; flagged as a
        fallback (``alias_target``) and logged at error level."""
        target = str(version.version)
        stand_in = current
        if stand_in is None and alias == CHAMPION:
            stand_in = self._previous_champion(client, family, version, errors)
        if stand_in is None:
            log.error("loading %s v%s failed, serving nothing: %s", family, target, errors[family])
            return None
        log.error(
            "loading %s v%s failed; FALLBACK: serving v%s in its place until %s loads: %s",
            family,
            target,
            stand_in.version,
            f"@{alias}" if alias else "the pinned version",
            errors[family],
        )
        failed = {"alias": alias, "version": target, "error": errors[family]}
        return replace(stand_in, alias=None, alias_target=failed)

    def _previous_champion(
        self, client: Any, family: str, version: Any, errors: dict[str, str]
    ) -> LoadedModel | None:
        """The version ``version`` replaced as champion (its ``previous_champion`` tag), loaded;
        None when there is none or it fails too (added to the family's error)."""
        previous = (version.tags or {}).get("previous_champion")
        if not previous or previous == str(version.version):
            return None
        started = time.perf_counter()
        try:
            prior = client.get_model_version(REGISTERED_NAMES[family], previous)
            loaded = self._load(client, family, prior, None)
        except Exception as exc:
            errors[family] += (
                f"; the previous champion v{previous} did not load either: "
                f"{registry_errors.describe(exc, self.settings.tracking_uri)}"
            )
            observability.record_model_load(family, previous, False)
            return None
        observability.record_model_load(family, previous, True, time.perf_counter() - started)
        return loaded
