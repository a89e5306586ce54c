"""A JSON response rendered with orjson (NaN/inf → null, numpy types allowed), and the one
error shape, ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, option=_OPTIONS)
        except orjson.JSONEncodeError:  # text that is not valid Unicode (a lone surrogate)
            return orjson.dumps(_encodable(content), option=_OPTIONS)


_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _encodable(value: Any) -> Any:
    """``value`` with every string made valid Unicode (a lone surrogate written as its
    escape, e.g. ``\\ud800``), so that an answer echoing the caller's text can be sent."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_encodable(k): _encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encodable(v) for v in value]
    return value


def error_json(
    status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> JSONResponse:
    """An error response (not counted in the metrics: see ``service.errors.error_response``)."""
    return JSONResponse(
        status_code=status,
        content={"error": {"code": code, "message": message, "details": details or []}},
    )
