"""One error shape, ``{"error": {"code", "message", "details"}}``, mapped once for the app."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from models.exceptions import CVMError, InvalidInputError, NotFittedError, RegistryError
from service import observability
from service.responses import JSONResponse, error_json
from service.security import API_KEY_HEADER, AuthError

log = logging.getLogger("cvm.errors")


class ServiceUnavailable(Exception):
    """Models are not loaded (yet): ``not_ready``; or the registry cannot be reached for an
    alias move now: ``registry_unavailable``. Both a 503 with ``Retry-After``."""

    def __init__(self, message: str, code: str = "not_ready"):
        super().__init__(message)
        self.message = message
        self.code = code


class ServiceBusy(Exception):
    """Every scoring slot stayed taken for ``CVM_QUEUE_TIMEOUT`` seconds."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InsufficientStorage(Exception):
    """The server has no room left (disk full) for what the request needs it to hold."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def error_response(
    status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> JSONResponse:
    """An error response in the one shape, counted in the metrics."""
    observability.record_error(status, code)
    return error_json(status, code, message, details)


def _path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def _detail(error: dict[str, Any]) -> dict[str, Any]:
    loc = tuple(error.get("loc", ()))
    if error.get("type") == "json_invalid" and len(loc) == 2 and isinstance(loc[-1], int):
        # FastAPI's loc is (body, character offset): name the body, say where
        reason = (error.get("ctx") or {}).get("error") or error.get("msg", "")
        message = f"invalid JSON at character {loc[-1]}: {reason}"
        return {"path": "body", "message": message, "type": "json_invalid"}
    return {"path": _path(loc), "message": error.get("msg", ""), "type": error.get("type", "")}


def _validation_message(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    details = [_detail(e) for e in exc.errors()]
    first = details[0] if details else {"path": "body", "message": "invalid request"}
    message = f"{first['path']}: {first['message']}"
    if len(details) > 1:
        message += f" (and {len(details) - 1} more)"
    return message, details


def _unreadable_json(cause: BaseException) -> JSONResponse:
    """The 422 ``json_invalid`` of a JSON body FastAPI could not read for a reason other than
    its syntax (it answers those 400): bytes that are not UTF-8, nesting past the parser's
    recursion limit."""
    if isinstance(cause, UnicodeDecodeError):
        byte = cause.object[cause.start : cause.start + 1].hex()
        reason = f"the body is not valid UTF-8 (byte {cause.start} is 0x{byte}); send UTF-8"
    elif isinstance(cause, RecursionError):
        reason = "arrays or objects are nested too deeply"
    else:
        reason = "the body could not be read"
    message = f"invalid JSON: {reason}"
    details = [{"path": "body", "message": message, "type": "json_invalid"}]
    return error_response(422, "validation_error", f"body: {message}", details)


def _invalid_message(exc: InvalidInputError) -> tuple[str, list[dict[str, Any]]]:
    detail: dict[str, Any] = {"path": exc.field or "body", "message": exc.message}
    if exc.rows:
        detail["rows"] = exc.rows
    return exc.message, [detail]


def error_payload(exc: Exception) -> tuple[int, dict[str, Any]]:
    """``(status, {"error": ...})`` of an exception, for errors that cannot be a response of
    their own (an NDJSON stream whose status is already sent)."""
    if isinstance(exc, RequestValidationError):
        status, code, (message, details) = 422, "validation_error", _validation_message(exc)
    elif isinstance(exc, InvalidInputError):
        status, code, (message, details) = 422, "invalid_input", _invalid_message(exc)
    else:
        status, code, message, details = (
            500,
            "internal_error",
            "internal error; see the service log",
            [],
        )
    return status, {"error": {"code": code, "message": message, "details": details}}


def _install_capacity(app: FastAPI) -> None:
    """The server's own limits: every scoring slot taken (503), no disk space (507)."""

    @app.exception_handler(ServiceBusy)
    async def _busy(request: Request, exc: ServiceBusy) -> JSONResponse:
        log.warning(
            "busy: %s %s waited too long for a scoring slot", request.method, request.url.path
        )
        response = error_response(503, "busy", exc.message)
        response.headers["Retry-After"] = "2"
        return response

    @app.exception_handler(InsufficientStorage)
    async def _no_space(request: Request, exc: InsufficientStorage) -> JSONResponse:
        # the server's disk, not the caller's mistake: 507, and the operator is told in the log
        log.error("%s %s: %s (%s)", request.method, request.url.path, exc.message, exc.__cause__)
        return error_response(507, "insufficient_storage", exc.message)


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""
    _install_capacity(app)
    # imported here: this module loads before service.limits caps the BLAS threads
    from pandas.errors import OutOfBoundsDatetime, OutOfBoundsTimedelta

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, details = _validation_message(exc)
        return error_response(422, "validation_error", message, details)

    @app.exception_handler(InvalidInputError)
    async def _invalid(request: Request, exc: InvalidInputError) -> JSONResponse:
        message, details = _invalid_message(exc)
        return error_response(422, "invalid_input", message, details)

    @app.exception_handler(OutOfBoundsDatetime)
    @app.exception_handler(OutOfBoundsTimedelta)
    async def _out_of_range(request: Request, exc: Exception) -> JSONResponse:
        # A safety net: dates should be range-checked by the request schemas, naming the field.
        message = "a date in the request is out of the supported range (1678 to 2261)"
        return error_response(422, "invalid_input", message, [{"path": "body", "message": message}])

    @app.exception_handler(ServiceUnavailable)
    async def _unavailable(request: Request, exc: ServiceUnavailable) -> JSONResponse:
        response = error_response(503, exc.code, exc.message)
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(RegistryError)
    async def _registry(request: Request, exc: RegistryError) -> JSONResponse:
        # a registry move that cannot be made: no challenger, nothing to roll back to, ...
        return error_response(409, "registry_conflict", str(exc))

    @app.exception_handler(NotFittedError)
    @app.exception_handler(CVMError)
    async def _domain(request: Request, exc: CVMError) -> JSONResponse:
        return error_response(500, "model_error", str(exc))

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> JSONResponse:
        response = error_response(exc.status, exc.code, exc.message)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = f'ApiKey header="{API_KEY_HEADER}"'
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
            # FastAPI reads a JSON body with json.loads, and answers 400 when that fails with
            # anything but a syntax error; the caller's mistake is the same: invalid JSON
            return _unreadable_json(exc.__cause__)
        codes = {
            400: "bad_request",
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
            415: "unsupported_media_type",
        }
        response = error_response(
            exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail)
        )
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        # The caller closed the connection before its body was in: nobody reads this answer,
        # and it is not a server error (499, as nginx counts it).
        status = request.scope.get("state", {}).get("cvm_status", 499)  # 408: the body timed out
        if status == 499:
            log.info("client disconnected during %s %s", request.method, request.url.path)
            return error_response(499, "client_closed_request", "the client closed the connection")
        return error_json(status, "request_timeout", "the request body stopped arriving")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal error; see the service log")
