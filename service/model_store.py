"""Loads the served model versions from the MLflow registry (the only service module that
imports mlflow).

Models are loaded once, in the background after start-up, so that liveness answers at once
and readiness turns 200 when all three families are in memory.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from service.config import REGISTERED_NAMES, Settings

log = logging.getLogger("cvm.models")

KEY_METRICS = {
    "segmentation": ("n_customers",),
    "churn": ("churn_roc_auc", "churn_pr_auc", "churn_brier", "churn_base_rate"),
    "clv": ("clv_holdout_mae", "clv_holdout_total_error_pct", "clv_mean"),
}


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
    loaded_at: float = field(default_factory=time.time)

    def describe(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "run_id": self.run_id,
            "metrics": {k: self.metrics[k] for k in KEY_METRICS[self.family] if k in self.metrics},
            "as_of": self.tags.get("as_of") or self.params.get("as_of"),
            "data_fingerprint": self.tags.get("data_fingerprint"),
            "git_commit": self.tags.get("git_commit"),
            "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at)),
        }


class ModelStore:
    """The three served models; ``ready`` when all are loaded."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.models: dict[str, LoadedModel] = {}
        self.error: str | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def ready(self) -> bool:
        return all(f in self.models for f in REGISTERED_NAMES)

    def get(self, family: str) -> LoadedModel:
        return self.models[family]

    def start_loading(self) -> None:
        """Load in a background thread (start-up must not block liveness)."""
        self._thread = threading.Thread(target=self._load_logged, name="model-loader", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.ready

    def _load_logged(self) -> None:
        try:
            self.load_all()
        except Exception as exc:  # reported by /health/ready and /v1/models, never raised
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("model loading failed: %s", self.error)

    def load_all(self) -> None:
        import mlflow
        from mlflow import MlflowClient

        uri = self.settings.tracking_uri
        # An explicit client and download URI: no process-global MLflow state is changed.
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        alias = self.settings.model_alias
        for family, name in REGISTERED_NAMES.items():
            started = time.perf_counter()
            try:
                version = client.get_model_version_by_alias(name, alias)
            except mlflow.exceptions.MlflowException as exc:
                raise LookupError(
                    f"no '{name}@{alias}' in the registry at {uri}: train first (cvm train --demo)"
                ) from exc
            source = client.get_model_version_download_uri(name, version.version)
            pyfunc = mlflow.pyfunc.load_model(source)
            wrapper = pyfunc.unwrap_python_model()
            metrics: dict[str, float] = {}
            params: dict[str, str] = {}
            if version.run_id:
                run = client.get_run(version.run_id)
                metrics, params = dict(run.data.metrics), dict(run.data.params)
            loaded = LoadedModel(
                family=family,
                name=name,
                version=str(version.version),
                alias=alias,
                run_id=version.run_id,
                estimator=wrapper.model,
                metrics=metrics,
                params=params,
                tags=dict(version.tags or {}),
            )
            with self._lock:
                self.models[family] = loaded
            log.info(
                "loaded %s version %s (@%s) in %.1fs",
                name,
                loaded.version,
                alias,
                time.perf_counter() - started,
            )
        self.error = None
