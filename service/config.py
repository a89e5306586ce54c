"""Service settings (environment variables, prefix ``CVM_``; one class, read once)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.families import REGISTERED_NAMES


class Settings(BaseSettings):
    """What the service serves and how.

    - ``CVM_HOME``: data directory holding the default MLflow store (``mlflow.db``).
    - ``MLFLOW_TRACKING_URI``: a tracking server or database instead of the SQLite file.
    - ``CVM_MODEL_ALIAS``: the registry alias served (default ``champion``).
    - ``CVM_MAX_BATCH``: most customers in one scoring request.
    - ``CVM_PLAYBOOK``: path of a playbook JSON replacing the shipped one.
    - ``CVM_RELOAD_INTERVAL``: seconds between checks for alias moves (0 = never; default 30).
    - ``CVM_REGISTRY_TIMEOUT``: seconds a reload waits on a locked SQLite registry before it
      reports the lock and gives up until the next reload (default 5).
    - ``CVM_REGISTRY_RETRIES`` (2): how often a request to an MLflow tracking server is retried
      (MLflow's own default, 7 with doubling back-off, keeps a service whose server is down
      "loading" for minutes); ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` and
      ``MLFLOW_HTTP_REQUEST_TIMEOUT`` (default here 15 s), when set, win.
    - ``CVM_SEGMENTATION_MODEL``, ``CVM_CHURN_MODEL``, ``CVM_CLV_MODEL``,
      ``CVM_UPLIFT_MODEL``: pin a family to a version (``7`` or ``models:/cvm-churn/7``),
      overriding the alias.
    - ``CVM_API_KEYS`` / ``CVM_ADMIN_KEYS``: comma-separated keys for scoring / admin routes
      (header ``X-API-Key``); none configured (unset or empty) means open access (warned at
      start-up); a value holding no key (``","``) is a start-up error.
    - ``CVM_DRIFT_MIN_ROWS`` (500): customers a served version must have scored before its
      drift report shows PSI and may ask for a retrain ("not enough data yet" until then).
    - ``CVM_MAX_BODY_BYTES``: largest request body (413 above it); NDJSON streams are exempt.
    - ``CVM_MAX_STREAM_ROWS``: most rows in one NDJSON stream to ``/invocations`` (10 million).
    - ``CVM_CORS_ORIGINS``: comma-separated origins allowed by CORS (off when unset).
    - ``CVM_LOG_FORMAT`` (``json`` or ``text``), ``CVM_LOG_LEVEL``, ``CVM_ACCESS_LOG``.
    - ``CVM_BLAS_THREADS``: BLAS/OpenMP threads (1: small requests thrash otherwise).
    - ``CVM_MAX_CONCURRENT`` (4): requests scored at once in worker threads (customer-view
      routes, invocations but small churn ones, NDJSON chunks); others wait up to ``CVM_QUEUE_TIMEOUT``
      (5 s) for a slot, then get 503 with ``Retry-After``.
    - ``CVM_MAX_HEADER_BYTES`` (64 KiB), ``CVM_MAX_HEADERS`` (100): the largest request head
      (request line and headers) and most headers; 431 above them (``cvm serve``).
    - ``CVM_HEADER_TIMEOUT`` (10 s): a request's headers must arrive within it, and a new
      connection must send one; ``CVM_BODY_TIMEOUT`` (10 s): the longest pause while a body
      arrives. 408 after either (``cvm serve``).
    - ``CVM_SHUTDOWN_TIMEOUT`` (30 s): on SIGTERM or Ctrl-C, the longest wait for requests in
      flight to finish before the server stops (``cvm serve``).
    - ``CVM_WORKERS`` (1): worker processes of ``cvm serve`` (read by the command, not here).
    """

    model_config = SettingsConfigDict(env_prefix="CVM_", extra="ignore")

    home: Path = Field(default=Path(".cvm"))
    mlflow_tracking_uri: str | None = Field(default=None, validation_alias="MLFLOW_TRACKING_URI")
    model_alias: str = "champion"
    max_batch: int = 10_000
    playbook: str | None = None
    load_on_startup: bool = True
    reload_interval: float = Field(default=30.0, ge=0)
    registry_timeout: float = Field(default=5.0, gt=0)
    registry_retries: int = Field(default=2, ge=0)
    segmentation_model: str | None = None
    churn_model: str | None = None
    clv_model: str | None = None
    uplift_model: str | None = None
    api_keys: SecretStr | None = None
    admin_keys: SecretStr | None = None
    drift_min_rows: int = Field(default=500, ge=1)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1)
    max_stream_rows: int = Field(default=10_000_000, ge=1)
    cors_origins: str | None = None
    log_format: str = "json"
    log_level: str = "INFO"
    access_log: bool = True
    blas_threads: int = Field(default=1, ge=1)
    max_concurrent: int = Field(default=4, ge=1)
    queue_timeout: float = Field(default=5.0, ge=0)
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    max_headers: int = Field(default=100, ge=1)
    header_timeout: float = Field(default=10.0, gt=0)
    body_timeout: float = Field(default=10.0, gt=0)
    shutdown_timeout: int = Field(default=30, ge=0)

    def registry_http_defaults(self) -> None:
        """Bound MLflow's HTTP retries and timeout for this process unless MLflow's own
        variables are set (MLflow reads them at each request)."""
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(self.registry_retries))
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")

    @property
    def tracking_uri(self) -> str:
        """``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<CVM_HOME>/mlflow.db``."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{Path(os.path.expanduser(self.home)).resolve() / 'mlflow.db'}"


__all__ = ["REGISTERED_NAMES", "Settings"]
