"""JSON request bodies of the customer-view routes, read as bytes on the event loop and parsed
in the worker thread that scores them.

FastAPI would parse a body model on the event loop (``json.loads``, then pydantic on the
Python objects): a 26 MB body held every other request, health checks included, for seconds,
and built the body twice over in memory. Here pydantic reads the JSON bytes directly
(``model_validate_json``) in the scoring thread, and errors come out as FastAPI's would: a
422 naming each field, ``invalid JSON at character N`` for a body that is not JSON.

The routes declare their body with :func:`body_doc`; :func:`add_schemas` puts the models in
the OpenAPI document's components, where FastAPI would have put them.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.models import Schema
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException

M = TypeVar("M", bound=BaseModel)
REF = "#/components/schemas/{model}"


def is_json(content_type: str | None) -> bool:
    """FastAPI's rule: ``application/json`` or ``application/*+json``."""
    media = (content_type or "").partition(";")[0].strip().lower()
    main, _, sub = media.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


def parse(model: type[M], raw: bytes, content_type: str | None) -> M:
    """The body as ``model``, or RequestValidationError (422) naming what is wrong."""
    if not raw:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required"}]
        )
    if not is_json(content_type):
        raise RequestValidationError(
            [
                {
                    "type": "model_attributes_type",
                    "loc": ("body",),
                    "msg": "expected a JSON object; send it with Content-Type: application/json",
                }
            ]
        )
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
    if errors and errors[0]["type"] == "json_invalid":
        # JSON the fast reader refuses but the standard allows (a lone surrogate escape such
        # as "\ud800"): validated as objects, so the field that cannot hold it is named
        try:
            return model.model_validate(_decode_json(raw))
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
    raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors])


def _decode_json(raw: bytes) -> Any:
    """The body read by the standard library's JSON reader, as FastAPI reads it: a syntax
    error names the character where it breaks; bytes that are not UTF-8 and nesting past the
    reader's limit are FastAPI's 400, which ``service/errors.py`` answers as a 422
    ``json_invalid`` saying which."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", exc.pos),
                    "msg": "JSON decode error",
                    "ctx": {"error": exc.msg},
                }
            ]
        ) from None
    except (ValueError, RecursionError) as exc:
        raise StarletteHTTPException(400, "invalid JSON") from exc


def body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` of a route reading ``model`` as its JSON body (see :func:`add_schemas`)."""
    schema = {"$ref": REF.format(model=model.__name__)}
    return {
        "requestBody": {
            "content": {"application/json": {"schema": schema}},
            "required": True,
        }
    }


def add_schemas(openapi: dict[str, Any], models: list[type[BaseModel]]) -> None:
    """The JSON schemas of ``models`` (and the models they hold) in ``components.schemas``."""
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in top.get("$defs", {}).items():
        # as FastAPI writes its document: through its Schema model, without nulls
        schemas.setdefault(
            name, jsonable_encoder(Schema(**schema), by_alias=True, exclude_none=True)
        )
    openapi["components"]["schemas"] = dict(sorted(schemas.items()))


__all__ = ["add_schemas", "body_doc", "is_json", "parse"]
