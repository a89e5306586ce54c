"""Loads the served model versions from the MLflow registry and swaps in new ones live
(the only service module that imports mlflow).

- Models load in the background after start-up: liveness answers at once, readiness turns
  200 when all three families are in memory.
- Which version: a per-family pin (``CVM_CHURN_MODEL=7`` or ``models:/cvm-churn/7``) wins;
  otherwise the alias (``CVM_MODEL_ALIAS``, default ``champion``).
- Hot reload: every ``CVM_RELOAD_INTERVAL`` seconds (and on ``POST /v1/admin/reload``) the
  store resolves each family's target version; a new one is loaded in the background,
  checked by scoring its own input example, and swapped in with one reference assignment.
  Requests in flight keep the models they started with (they take a snapshot). When loading
  or the check fails, the old version keeps serving and the error is reported in
  ``/v1/models`` and counted in the metrics.
"""

from __future__ import annotations

import gc
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models import LEGACY_FORMATS, MODEL_FORMAT
from models.churn.encoding import frame_columns
from models.drift import DriftMonitor
from models.families import FAMILIES
from models.redact import redact
from service import observability, registry_errors
from service.config import REGISTERED_NAMES, Settings
from service.input_schema import InputSchema

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
            "as_of": self.tags.get("as_of") or self.params.get("as_of"),
            "data_fingerprint": self.tags.get("data_fingerprint"),
            "git_commit": self.tags.get("git_commit"),
            "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at)),
            "drift": self.drift.report() if self.drift is not None else None,
        }


def check_model_format(name: str, version: Any, tags: dict[str, str] | None) -> None:
    """Refuse a version whose pickled estimators are in a layout this code cannot read (its
    ``cvm_model_format`` tag: this release's format or an older one it still reads; versions
    from before the tag existed are tried as usual)."""
    saved = (tags or {}).get("cvm_model_format")
    if saved is None or saved in {str(f) for f in (MODEL_FORMAT, *LEGACY_FORMATS)}:
        return
    raise ValueError(
        f"{name} v{version} was saved in model format {saved}; this service reads format "
        f"{MODEL_FORMAT}. Retrain with this release (cvm retrain, then cvm promote), or serve "
        "that version with the release that trained it"
    )


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


class ModelStore:
    """The served models by family; ``ready`` when all three are loaded."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.models: dict[str, LoadedModel] = {}
        self.errors: dict[str, str] = {}
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._first_load = threading.Event()

    # --- state ------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return all(f in self.models for f in REGISTERED_NAMES)

    @property
    def error(self) -> str | None:
        return "; ".join(f"{f}: {e}" for f, e in self.errors.items()) or None

    def get(self, family: str) -> LoadedModel:
        return self.models[family]

    def snapshot(self) -> dict[str, LoadedModel]:
        """The models a request uses from start to end, even if a reload swaps one meanwhile."""
        return dict(self.models)

    # --- background work ----------------------------------------------------------------------
    def start_loading(self) -> None:
        """Load now in a background thread, then poll for alias moves every interval."""
        self._thread = threading.Thread(target=self._run, name="model-loader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the first load attempt finished; returns ``ready``."""
        self._first_load.wait(timeout)
        return self.ready

    def _run(self) -> None:
        self.refresh()
        self._first_load.set()
        interval = self.settings.reload_interval
        while interval > 0 and not self._stop.wait(interval):
            self.refresh()

    # --- loading -------------------------------------------------------------------------------
    def _client(self) -> Any:
        from mlflow import MlflowClient  # heavy: imported by the loader thread, not at start-up

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
            drift=DriftMonitor(reference) if reference else None,
            input_schema=input_schema,
            fast_path=fast_path,
        )

    def refresh(self) -> dict[str, str]:
        """Swap in every family whose target version changed; ``{family: "old -> new"}``.

        Failures keep the old version serving and are kept in ``errors``.
        """
        changes: dict[str, str] = {}
        with self._refresh_lock:
            try:
                client = self._client()
            except Exception as exc:  # an unreachable store must not stop the service
                self.errors["registry"] = registry_errors.describe(exc, self.settings.tracking_uri)
                return changes
            self.errors.pop("registry", None)
            for family in REGISTERED_NAMES:
                current = self.models.get(family)
                try:
                    version, alias = self._target(client, family)
                    if current is not None and current.version == str(version.version):
                        current.alias = alias
                        self.errors.pop(family, None)
                        continue
                    started = time.perf_counter()
                    loaded = self._load(client, family, version, alias)
                except Exception as exc:  # reported, never raised: the old version keeps serving
                    self.errors[family] = registry_errors.describe(exc, self.settings.tracking_uri)
                    log.error(
                        "loading %s failed, serving %s: %s",
                        family,
                        f"v{current.version}" if current else "nothing",
                        self.errors[family],
                    )
                    observability.record_model_load(family, "unknown", False)
                    continue
                self.models = {**self.models, family: loaded}  # one atomic reference swap
                self.errors.pop(family, None)
                observability.record_model_load(
                    family, loaded.version, True, time.perf_counter() - started
                )
                old = current.version if current else "none"
                changes[family] = f"{old} -> {loaded.version}"
                log.info(
                    "serving %s v%s (@%s), loaded in %.1fs",
                    loaded.name,
                    loaded.version,
                    alias or "pinned",
                    time.perf_counter() - started,
                )
            if changes:
                gc.collect()
                gc.freeze()  # long-lived model objects out of the collector's way (p99 latency)
        return changes
