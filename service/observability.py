"""Prometheus metrics, structured JSON logs and request ids.

- :class:`ObservabilityMiddleware` (pure ASGI, outermost): takes the caller's ``X-Request-ID``
  (or makes one), echoes it on every response, times the request, counts it per route
  template, status and model version, writes one access-log line, and turns an unhandled
  exception into the one error shape (logged with its traceback, never sent).
- ``/metrics`` (:func:`metrics_response`): this module's registry plus, per app, what the
  model store serves at scrape time.
- Hooks for other modules: :func:`record_model_load` (the model store), :func:`record_rows`
  and :func:`tag_model` (scoring routes), :func:`record_error` (the error responses).
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.redact import redact
from service.responses import error_json
from service.workers import metrics_dir

log = logging.getLogger("cvm.service")
access_log = logging.getLogger("cvm.access")

REQUEST_ID_HEADER = "X-Request-ID"
request_id_var: ContextVar[str | None] = ContextVar("cvm_request_id", default=None)

# --- metrics ----------------------------------------------------------------------------------
disable_created_metrics()  # no *_created series: half the exposition, no information we use
# Several workers (cvm serve --workers N): every worker writes its counters and histograms to
# PROMETHEUS_MULTIPROC_DIR (prometheus-client reads the variable when it is first imported, so
# `cvm serve` sets it before starting the workers) and /metrics adds up all the workers'
# files. The process_*, python_gc_* and python_info series describe one process; they are
# left out then.
MULTIPROCESS = metrics_dir() is not None
REGISTRY = CollectorRegistry(auto_describe=True)
if not MULTIPROCESS:
    for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        REGISTRY.register(_collector)

# Sub-millisecond buckets: a single-row score takes about a millisecond.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)

REQUESTS = Counter(
    "cvm_http_requests",
    "HTTP requests by route template, method, status and model version.",
    ("method", "route", "status", "model", "version"),
    registry=REGISTRY,
)
LATENCY = Histogram(
    "cvm_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response.",
    ("method", "route", "model", "version"),
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
IN_FLIGHT = Gauge(
    "cvm_http_requests_in_flight",
    "Requests being handled now.",
    registry=REGISTRY,
    multiprocess_mode="livesum",  # several workers: the sum over the live ones
)
ERRORS = Counter(
    "cvm_http_errors",
    "Error responses by HTTP status and error code (the 'code' of the error body).",
    ("status", "code"),
    registry=REGISTRY,
)
ROWS = Counter(
    "cvm_rows_scored",
    "Rows (customers) scored, by model and version.",
    ("model", "version"),
    registry=REGISTRY,
)
MODEL_LOADS = Counter(
    "cvm_model_loads",
    "Model load attempts by family, version and outcome (ok or error).",
    ("family", "version", "outcome"),
    registry=REGISTRY,
)
MODEL_LOAD_SECONDS = Histogram(
    "cvm_model_load_duration_seconds",
    "Time to load one model version from the registry.",
    ("family",),
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
    registry=REGISTRY,
)


def record_model_load(
    family: str, version: str | None, ok: bool, seconds: float | None = None
) -> None:
    """For the model store: one load attempt of ``family`` (``version`` may be unknown)."""
    MODEL_LOADS.labels(family, version or "", "ok" if ok else "error").inc()
    if seconds is not None:
        MODEL_LOAD_SECONDS.labels(family).observe(seconds)


# Label children, looked up once per label set (``labels()`` costs a few microseconds a call,
# and every request makes three). The sets are few: routes × statuses × served versions.
_CHILDREN: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    key = (id(metric), *labels)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = metric.labels(*labels)
    return child


def record_rows(model: str, version: str, rows: int) -> None:
    _child(ROWS, model, version).inc(rows)


def record_error(status: int, code: str) -> None:
    ERRORS.labels(str(status), code).inc()


def tag_model(request: Request, model: str, version: str) -> None:
    """Label this request's metrics with the model version that answered it."""
    request.state.cvm_model = model
    request.state.cvm_model_version = version


def _gauge(name: str, documentation: str, labels: tuple[str, ...]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


class StoreCollector(Collector):
    """What a model store serves, read at scrape time."""

    def __init__(self, store: Any):
        self.store = store

    def collect(self) -> Iterable[GaugeMetricFamily]:
        info = _gauge(
            "cvm_model_info",
            "The served model versions (value 1).",
            ("family", "name", "version", "alias"),
        )
        loaded_at = _gauge(
            "cvm_model_loaded_timestamp_seconds",
            "When the served version was loaded (Unix time).",
            ("family",),
        )
        drift = _gauge(
            "cvm_feature_psi",
            "Population stability index of an input feature since the version was loaded (> 0.2: retrain).",
            ("family", "version", "feature"),
        )
        load_errors = _gauge(
            "cvm_model_load_failing",
            "1 while the latest load of a family failed (the previous version keeps serving).",
            ("family",),
        )
        fallback = _gauge(
            "cvm_model_fallback",
            "1 while a family serves a version in place of its alias target, which failed to load (/v1/models says why).",
            ("family", "version", "instead_of"),
        )
        for family, model in list(self.store.models.items()):
            info.add_metric([family, model.name, model.version, model.alias or ""], 1)
            target = getattr(model, "alias_target", None)
            if target is not None:
                fallback.add_metric([family, model.version, str(target["version"])], 1)
            loaded_at.add_metric([family], float(model.loaded_at))
            monitor = getattr(model, "drift", None)
            if monitor is not None:
                for feature, value in monitor.report()["psi"].items():
                    drift.add_metric([family, model.version, feature], value)
        for family in getattr(self.store, "errors", {}):
            load_errors.add_metric([family], 1.0)
        ready = GaugeMetricFamily("cvm_models_ready", "1 when every model family is loaded.")
        ready.add_metric([], 1.0 if self.store.ready else 0.0)
        yield info
        yield loaded_at
        yield drift
        yield load_errors
        yield fallback
        yield ready


def app_registry(store: Any) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    return registry


def metrics_response(request: Request) -> Response:
    if MULTIPROCESS:  # every worker's counters and histograms, added up
        from prometheus_client import multiprocess

        every_worker = CollectorRegistry()
        multiprocess.MultiProcessCollector(every_worker)
        body = generate_latest(every_worker)
    else:
        body = generate_latest(REGISTRY)
    registry = getattr(request.app.state, "metrics_registry", None)
    if registry is not None:
        body += generate_latest(registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


# --- logging ----------------------------------------------------------------------------------
_SKIPPED = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "color_message"}  # uvicorn's ANSI-coloured copy of the message
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),  # a store URI's credentials never leave
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            out["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _SKIPPED and key not in out and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            out["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get() or "-"
        return redact(super().format(record))  # the message and any traceback


def configure_logging(log_format: str = "json", level: str = "INFO") -> None:
    """Root logging to stderr in ``json`` (default) or ``text``; idempotent.

    Uvicorn's own loggers go through the same handler; its access log is replaced by this
    module's (which has the request id and the route).
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_cvm", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler._cvm = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = []
        uvicorn_logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True


# --- middleware -------------------------------------------------------------------------------
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:/+=")
_QUIET_ROUTES = frozenset({"/health/live", "/health/ready", "/metrics"})
_VIEW_PREFIXES = ("/v1/customers", "/v1/segments")


def clean_request_id(value: str | None) -> str | None:
    """The caller's request id when it is 1–128 safe characters, else None (one is made)."""
    if value and len(value) <= 128 and all(c in _ID_CHARS for c in value):
        return value
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _served_versions(app: Any) -> str:
    store = getattr(getattr(app, "state", None), "store", None)
    models = getattr(store, "models", None) or {}
    return ",".join(f"{family}:{m.version}" for family, m in sorted(models.items()))


class ObservabilityMiddleware:
    """Request ids, metrics, access log and the last-resort 500 (see the module docstring)."""

    def __init__(self, app: ASGIApp, access_log: bool = True):
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = clean_request_id(_header(scope, b"x-request-id")) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        raw_id = request_id.encode("latin-1")
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", raw_id)]
            await send(message)

        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            log.error(
                "unhandled error on %s %s: %s",
                scope.get("method"),
                scope.get("path"),
                type(exc).__name__,
                exc_info=exc,
            )
            if response_started:
                raise
            record_error(500, "internal_error")
            response = error_json(500, "internal_error", "internal error; see the service log")
            await response(scope, receive, send_with_id)
        finally:
            IN_FLIGHT.dec()
            elapsed = time.perf_counter() - started
            self._observe(scope, status, elapsed)
            request_id_var.reset(token)

    def _observe(self, scope: Scope, status: int, elapsed: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "<unmatched>"
        method = scope.get("method", "")
        state = scope.get("state") or {}
        status = state.get("cvm_status", status)  # e.g. 499: a stream whose client left
        model = state.get("cvm_model", "")
        version = state.get("cvm_model_version", "")
        if not model and template.startswith(_VIEW_PREFIXES) and status < 500:
            model, version = "customer-view", _served_versions(scope.get("app"))
        _child(REQUESTS, method, template, str(status), model, version).inc()
        _child(LATENCY, method, template, model, version).observe(elapsed)
        if not self.access_log:
            return
        level = logging.DEBUG if template in _QUIET_ROUTES and status < 400 else logging.INFO
        if access_log.isEnabledFor(level):
            client = scope.get("client")
            access_log.log(
                level,
                "%s %s %d %.2fms",
                method,
                scope.get("path", ""),
                status,
                elapsed * 1e3,
                extra={
                    "request_id": request_id_var.get(),
                    "method": method,
                    "path": scope.get("path", ""),
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1e3, 3),
                    "client": client[0] if client else None,
                    "model": model or None,
                    "model_version": version or None,
                },
            )


__all__ = [
    "REGISTRY",
    "REQUEST_ID_HEADER",
    "JsonFormatter",
    "ObservabilityMiddleware",
    "app_registry",
    "configure_logging",
    "metrics_response",
    "record_error",
    "record_model_load",
    "record_rows",
    "request_id_var",
    "tag_model",
]
