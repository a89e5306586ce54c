"""The OpenAPI description of ``POST /v1/models/{name}/invocations``.

The route reads its body itself (no FastAPI body model: that costs more than scoring a row),
so its request body, path parameter and security are described here by hand."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from models.clv import CLV_INPUT_COLUMNS
from models.families import REGISTERED_NAMES

_BODY_SCHEMA_CELL: dict[str, Any] = {
    "anyOf": [{"type": "number"}, {"type": "string"}, {"type": "null"}]
}
_RECORDS = {
    "type": "array",
    "items": {"type": "object", "additionalProperties": _BODY_SCHEMA_CELL},
    "minItems": 1,
}
_COLUMNAR = {
    "type": "object",
    "additionalProperties": {"type": "array", "items": _BODY_SCHEMA_CELL, "minItems": 1},
}
CSV_DESCRIPTION = (
    "A header row with the model's column names, then one row per line (UTF-8); empty fields "
    "and pandas' missing-value markers (NA, NaN, null, ...) are missing values."
)
REQUEST_SCHEMA: dict[str, Any] = {
    "title": "MLflowScoringRequest",
    "description": (
        "Exactly one of dataframe_split, dataframe_records, instances or inputs, with the "
        "model's input columns (see its signature in the registry; GET /v1/models)."
    ),
    "type": "object",
    "properties": {
        "dataframe_split": {
            "type": "object",
            "properties": {
                "columns": {"type": "array", "items": {"type": "string"}},
                "data": {
                    "type": "array",
                    "items": {"type": "array", "items": _BODY_SCHEMA_CELL},
                    "minItems": 1,
                },
                "index": {"type": "array"},
            },
            "required": ["columns", "data"],
            "additionalProperties": False,
        },
        "dataframe_records": _RECORDS,
        "instances": {"anyOf": [_RECORDS, _COLUMNAR]},
        "inputs": {"anyOf": [_RECORDS, _COLUMNAR]},
        "params": {"type": "object", "maxProperties": 0},
    },
    "additionalProperties": False,
    "oneOf": [
        {"required": [name]}
        for name in ("dataframe_split", "dataframe_records", "instances", "inputs")
    ],
}
_EXAMPLE = {  # a cvm-clv row
    "dataframe_split": {
        "columns": CLV_INPUT_COLUMNS,
        "data": [[4, 200, 300, 55.0, 0.3, 300, 275.0]],
    }
}
_CSV_EXAMPLE = ",".join(CLV_INPUT_COLUMNS) + "\n4,200,300,55.0,0.3,300,275.0\n"
_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


# The keyword arguments of the route's decorator (``router.post(path, **ROUTE)``).
ROUTE: dict[str, Any] = {
    "summary": "Score with one registered model, as `mlflow models serve` does",
    "description": (
        "MLflow's scoring bodies (`dataframe_split`, `dataframe_records`, `instances`, "
        '`inputs`) in, `{"predictions": [...]}` out. For large batches send '
        "`Content-Type: application/x-ndjson` instead: one JSON record per line in, one "
        "prediction per line out, any number of rows in bounded memory (errors after the "
        'first 2,000 rows end the stream with an `{"error": ..., "rows_scored": n}` line). '
        "`Content-Type: text/csv` takes a CSV body as MLflow's server does (a header row with "
        "the column names, then one row per line). A 200 carries a number wherever the model "
        "always has one: a row the model cannot score (its churn probability or CLV would not be "
        "a finite number) is a 422 naming the row; `clv_lower`/`clv_upper` are null when no "
        "interval can be computed, segmentation numbers null where an input is missing."
    ),
    "response_class": Response,
    "openapi_extra": {
        "parameters": [
            {
                "name": "name",
                "in": "path",
                "required": True,
                "description": "The registered model: cvm-segmentation, cvm-churn or cvm-clv.",
                "schema": {"type": "string", "enum": list(REGISTERED_NAMES.values())},
            }
        ],
        "security": [{"ApiKey": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": REQUEST_SCHEMA, "example": _EXAMPLE},
                "text/csv": {
                    "schema": {"type": "string", "description": CSV_DESCRIPTION},
                    "example": _CSV_EXAMPLE,
                },
            },
        },
    },
    "responses": {
        200: {
            "description": "One prediction record per input row, in the input order.",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "predictions": {"type": "array", "items": {"type": "object"}}
                        },
                        "required": ["predictions"],
                    }
                }
            },
        },
        401: {
            **_error("no valid API key in X-API-Key (when keys are configured)"),
            "headers": {
                "WWW-Authenticate": {
                    "description": 'ApiKey header="X-API-Key"',
                    "schema": {"type": "string"},
                }
            },
        },
        404: _error("no such model is served"),
        413: _error("body over CVM_MAX_BODY_BYTES"),
        415: _error("not JSON, CSV or NDJSON"),
        422: _error("invalid input; every bad value is named by its path"),
        503: _error("models not loaded yet, or every scoring slot stayed taken (Retry-After)"),
        507: _error("an NDJSON stream found no disk space left to be received"),
    },
}
