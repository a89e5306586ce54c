"""MLflow-compatible scoring: ``POST /v1/models/{name}/invocations``.

Accepts the bodies ``mlflow models serve`` accepts (``dataframe_split``,
``dataframe_records``, ``instances``, ``inputs``; ``params`` only when empty) and answers in its
shape, ``{"predictions": [{column: value, ...}, ...]}``, so a caller can switch servers by
changing the URL. The model is the served version of the registered model ``name``
(``cvm-segmentation``, ``cvm-churn`` or ``cvm-clv``); its estimator runs directly, dispatched
as the pyfunc wrapper does (training/pyfunc.py ``score``), so the predictions are the
pyfunc's.

Unlike MLflow's server, validation is strict and complete before the model runs: a value of
the wrong type is an error (no silent string → number or float → integer conversion), unknown
and missing columns are named, and every bad value is reported with its path, which holds the
row index. The body is parsed with orjson straight into one list per column and then into numpy
arrays, with no per-row Python objects beyond the parsed JSON.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, NoReturn

import anyio
import numpy as np
import orjson
import pandas as pd
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from models.churn import risk_band
from models.clv import CLV_INPUT_COLUMNS
from models.exceptions import InvalidInputError
from service import observability, streaming
from service.config import REGISTERED_NAMES
from service.errors import ServiceUnavailable
from service.security import API_KEY_HEADER, get_guard

log = logging.getLogger("cvm.invocations")

router = APIRouter(prefix="/v1/models", tags=["models"])

FAMILY_OF = {name: family for family, name in REGISTERED_NAMES.items()}
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
MAX_ERRORS = 20
# Bodies up to this size are scored on the event loop (no thread hand-off); larger ones in a
# worker thread, so that health checks and small requests are not held up behind them.
INLINE_BODY_BYTES = 64 * 1024

_NONE = type(None)
_NUMBER_TYPES = frozenset({float, int, _NONE})
_INT_TYPES = frozenset({int})
_STRING_TYPES = frozenset({str, _NONE})
_BOOL_TYPES = frozenset({bool})
_NULLABLE_INT_TYPES = frozenset({int, _NONE})
_NULLABLE_BOOL_TYPES = frozenset({bool, _NONE})


# --- the model's input schema -----------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    name: str
    type: str  # MLflow's: double, float, long, integer, boolean, string, ...
    required: bool


@dataclass(frozen=True)
class InputSchema:
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @classmethod
    def from_mlflow(cls, spec: list[dict[str, Any]]) -> InputSchema:
        columns = []
        for i, col in enumerate(spec):
            if "name" not in col:
                raise ValueError(f"input column {i} has no name: only named columns are served")
            columns.append(Column(col["name"], str(col.get("type", "")), col.get("required", True)))
        return cls(tuple(columns))


@dataclass(frozen=True)
class _Compiled:
    schema: InputSchema
    by_name: dict[str, Column]
    allowed: frozenset[str]
    required: frozenset[str]
    getter: Any  # itemgetter of every column name, in order


def _compile(schema: InputSchema) -> _Compiled:
    names = schema.names
    return _Compiled(
        schema=schema,
        by_name={c.name: c for c in schema.columns},
        allowed=frozenset(names),
        required=frozenset(c.name for c in schema.columns if c.required),
        getter=itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],)),
    )


_SCHEMAS: dict[tuple[str, str, str | None], _Compiled] = {}
_SCHEMA_LOCK = threading.Lock()


def schema_for(loaded: Any) -> _Compiled:
    """The compiled input schema of a loaded model version (cached per version)."""
    key = (loaded.name, str(loaded.version), loaded.run_id)
    compiled = _SCHEMAS.get(key)
    if compiled is not None:
        return compiled
    with _SCHEMA_LOCK:
        compiled = _SCHEMAS.get(key)
        if compiled is None:
            spec = loaded.input_schema  # read from the MLmodel file by the model store
            if spec is None:
                raise LookupError(f"{loaded.name} version {loaded.version} has no input signature")
            compiled = _compile(InputSchema.from_mlflow(spec))
            _SCHEMAS[key] = compiled
    return compiled


def warm_schemas(store: Any) -> None:
    """Compile every served model's input schema now (called when models are (re)loaded)."""
    for loaded in list(store.models.values()):
        try:
            schema_for(loaded)
        except Exception as exc:  # the route reports it as 503 on use
            log.warning("no input schema for %s version %s: %s", loaded.name, loaded.version, exc)


# --- parsing and validation -------------------------------------------------------------------
class _Errors:
    """Collects validation errors (at most :data:`MAX_ERRORS`) in FastAPI's shape."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, loc: tuple[Any, ...], message: str, kind: str) -> None:
        if len(self.items) < MAX_ERRORS:
            self.items.append({"loc": ("body", *loc), "msg": message, "type": kind})

    @property
    def full(self) -> bool:
        return len(self.items) >= MAX_ERRORS

    def raise_if_any(self) -> None:
        if self.items:
            raise RequestValidationError(self.items)


def _fail(loc: tuple[Any, ...], message: str, kind: str = "value_error") -> NoReturn:
    raise RequestValidationError([{"loc": ("body", *loc), "msg": message, "type": kind}])


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"string {text!r}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _names(names: Any) -> str:
    return ", ".join(repr(n) for n in names)


_Cells = list[Any]
_PathOf = Any  # (row index) -> loc tuple


def _flag(
    column: Column,
    values: _Cells,
    allowed: frozenset[Any],
    expected: str,
    kind: str,
    path_of: _PathOf,
    errors: _Errors,
) -> None:
    """Name every value of a type the column does not take (up to the error cap)."""
    for i, v in enumerate(values):
        if type(v) not in allowed:
            hint = ""
            if expected == "an integer" and type(v) is float and not float(v).is_integer():
                hint = " (not truncated: send an integer)"
            errors.add(
                path_of(i), f"{column.name}: expected {expected}, got {_describe(v)}{hint}", kind
            )
            if errors.full:
                break


def _convert(column: Column, values: _Cells, path_of: _PathOf, errors: _Errors) -> Any:
    """One column's JSON values as the array the model gets, or None after adding errors."""
    kind = column.type
    types = set(map(type, values))
    if kind in ("double", "float"):
        if types <= _NUMBER_TYPES:
            array = np.array(values, dtype=np.float64)  # null → NaN
            return array.astype(np.float32) if kind == "float" else array
        _flag(column, values, _NUMBER_TYPES, "a number", "float_type", path_of, errors)
        return None
    if kind in ("long", "integer"):
        if types <= _INT_TYPES:
            return np.array(values, dtype=np.int64 if kind == "long" else np.int32)
        if types <= _NULLABLE_INT_TYPES:  # nulls: pandas' nullable integers, not floats
            return pd.array(values, dtype="Int64" if kind == "long" else "Int32")
        _flag(column, values, _NULLABLE_INT_TYPES, "an integer", "int_type", path_of, errors)
        return None
    if kind == "boolean":
        if types <= _BOOL_TYPES:
            return np.array(values, dtype=bool)
        if types <= _NULLABLE_BOOL_TYPES:
            return pd.array(values, dtype="boolean")
        _flag(column, values, _NULLABLE_BOOL_TYPES, "true or false", "bool_type", path_of, errors)
        return None
    if kind == "string":
        if types <= _STRING_TYPES:
            return values
        _flag(column, values, _STRING_TYPES, "a string", "string_type", path_of, errors)
        return None
    return values  # a type this service does not check: passed on as given


def _check_rows(n: int, fmt: str, max_rows: int) -> None:
    if n == 0:
        _fail((fmt,), "no rows: send at least one", "too_short")
    if n > max_rows:
        raise InvalidInputError(
            f"{n:,} rows in one request; the limit is {max_rows:,} (CVM_MAX_BATCH)", field=fmt
        )


def _columns_from_records(
    rows: Any, loc: tuple[Any, ...], schema: _Compiled, max_rows: int, offset: int = 0
) -> tuple[dict[str, _Cells], int, Any]:
    """Records as columns; errors name ``(*loc, offset + row index, column)``."""
    if not isinstance(rows, list):
        _fail(loc, f"expected a list of records (objects), got {_describe(rows)}", "list_type")
    _check_rows(len(rows), loc[0], max_rows)
    errors = _Errors()
    if set(map(type, rows)) != {dict}:
        for i, row in enumerate(rows):
            if type(row) is not dict:
                errors.add(
                    (*loc, offset + i),
                    f"expected a record (an object), got {_describe(row)}",
                    "dict_type",
                )
                if errors.full:
                    break
        errors.raise_if_any()
    allowed, required = schema.allowed, schema.required
    # Rows usually share one set of keys: check each distinct key layout once, and go row by
    # row (to name the rows) only when a layout is wrong.
    layouts = set(map(tuple, rows))
    present: set[str] = set().union(*layouts)
    layouts_ok = all(allowed.issuperset(keys) and required.issubset(keys) for keys in layouts)
    for i, row in enumerate(() if layouts_ok else rows):
        keys = row.keys()
        if not keys <= allowed:
            for name in sorted(keys - allowed):
                errors.add(
                    (*loc, offset + i, name),
                    f"unknown column {name!r}; the model's columns are {_names(schema.schema.names)}",
                    "extra_forbidden",
                )
        if not keys >= required:
            for name in [c for c in schema.schema.names if c in required and c not in keys]:
                errors.add((*loc, offset + i, name), f"missing column {name!r}", "missing")
        if errors.full:
            break
    errors.raise_if_any()
    try:  # every column in every row: one C-level pass
        tuples = list(map(schema.getter, rows))
        columns = dict(
            zip(schema.schema.names, (list(c) for c in zip(*tuples, strict=True)), strict=True)
        )
    except KeyError:  # optional columns absent from some rows
        columns = {
            name: [row.get(name) for row in rows] for name in schema.schema.names if name in present
        }
    return columns, len(rows), lambda i, name: (*loc, offset + i, name)


def _columns_from_dict(
    obj: dict[str, Any], loc: tuple[Any, ...], schema: _Compiled, max_rows: int
) -> tuple[dict[str, _Cells], int, Any]:
    errors = _Errors()
    for name in obj:
        if name not in schema.allowed:
            errors.add(
                (*loc, name),
                f"unknown column {name!r}; the model's columns are {_names(schema.schema.names)}",
                "extra_forbidden",
            )
    for name in schema.schema.names:
        if name in schema.required and name not in obj:
            errors.add((*loc, name), f"missing column {name!r}", "missing")
    errors.raise_if_any()
    lengths = {}
    for name, values in obj.items():
        if not isinstance(values, list):
            errors.add(
                (*loc, name), f"expected a list of values, got {_describe(values)}", "list_type"
            )
        else:
            lengths[name] = len(values)
    errors.raise_if_any()
    n = max(lengths.values(), default=0)
    for name, length in lengths.items():
        if length != n:
            errors.add((*loc, name), f"{length} values where the longest column has {n}", "length")
    errors.raise_if_any()
    _check_rows(n, loc[0], max_rows)
    return dict(obj), n, lambda i, name: (*loc, name, i)


def _columns_from_split(
    obj: Any, schema: _Compiled, max_rows: int
) -> tuple[dict[str, _Cells], int, Any]:
    loc: tuple[Any, ...] = ("dataframe_split",)
    if not isinstance(obj, dict):
        _fail(
            loc, f"expected an object with 'columns' and 'data', got {_describe(obj)}", "dict_type"
        )
    errors = _Errors()
    for key in obj:
        if key not in ("columns", "data", "index"):
            errors.add(
                (*loc, key),
                "unknown field; expected 'columns', 'data' and optionally 'index'",
                "extra_forbidden",
            )
    for key in ("columns", "data"):
        if key not in obj:
            errors.add((*loc, key), "field required", "missing")
    errors.raise_if_any()
    columns, data = obj["columns"], obj["data"]
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        _fail((*loc, "columns"), "expected a list of column names (strings)", "list_type")
    if not isinstance(data, list):
        _fail((*loc, "data"), f"expected a list of rows, got {_describe(data)}", "list_type")
    _check_rows(len(data), "dataframe_split", max_rows)
    seen: set[str] = set()
    for j, name in enumerate(columns):
        if name in seen:
            errors.add(
                (*loc, "columns", j), f"column {name!r} appears more than once", "value_error"
            )
        seen.add(name)
        if name not in schema.allowed:
            errors.add(
                (*loc, "columns", j),
                f"unknown column {name!r}; the model's columns are {_names(schema.schema.names)}",
                "extra_forbidden",
            )
    missing = [c for c in schema.schema.names if c in schema.required and c not in seen]
    if missing:
        errors.add((*loc, "columns"), f"missing column(s) {_names(missing)}", "missing")
    errors.raise_if_any()
    width = len(columns)
    if set(map(type, data)) != {list} or set(map(len, data)) != {width}:
        for i, row in enumerate(data):
            if type(row) is not list:
                errors.add(
                    (*loc, "data", i), f"expected a row (a list), got {_describe(row)}", "list_type"
                )
            elif len(row) != width:
                errors.add(
                    (*loc, "data", i),
                    f"{len(row)} values where there are {width} columns",
                    "length",
                )
            if errors.full:
                break
        errors.raise_if_any()
    index = obj.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(data)):
        _fail((*loc, "index"), f"expected a list of {len(data)} labels (one per row)", "length")
    cells = {
        name: list(values) for name, values in zip(columns, zip(*data, strict=True), strict=True)
    }
    position = {name: j for j, name in enumerate(columns)}
    return cells, len(data), lambda i, name: (*loc, "data", i, position[name])


def parse_payload(raw: bytes, schema: _Compiled, max_rows: int) -> pd.DataFrame:
    """An MLflow scoring body as the model's input frame (columns in schema order)."""
    columns, _ = parse_columns(raw, schema, max_rows)
    return pd.DataFrame(columns, columns=schema.schema.names)


def parse_columns(raw: bytes, schema: _Compiled, max_rows: int) -> tuple[dict[str, Any], int]:
    """An MLflow scoring body as ``({column: array}, rows)``, every schema column present."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        _fail((), f"invalid JSON: {exc}", "json_invalid")
    if not isinstance(body, dict):
        _fail(
            (),
            f"expected a JSON object with one of {_names(FORMATS)}, got {_describe(body)}",
            "dict_type",
        )
    errors = _Errors()
    for key in body:
        if key not in FORMATS and key != "params":
            errors.add(
                (key,),
                f"unknown field; expected exactly one of {_names(FORMATS)}",
                "extra_forbidden",
            )
    formats = [k for k in FORMATS if k in body]
    if len(formats) != 1:
        errors.add(
            (), f"expected exactly one of {_names(FORMATS)}, got {len(formats)}", "value_error"
        )
    params = body.get("params")
    if params not in (None, {}):
        errors.add(("params",), "these models take no params", "extra_forbidden")
    errors.raise_if_any()
    fmt = formats[0]
    value = body[fmt]
    if fmt == "dataframe_split":
        cells, n, path_of = _columns_from_split(value, schema, max_rows)
    elif fmt == "dataframe_records" or isinstance(value, list):
        cells, n, path_of = _columns_from_records(value, (fmt,), schema, max_rows)
    elif isinstance(value, dict):
        cells, n, path_of = _columns_from_dict(value, (fmt,), schema, max_rows)
    else:
        _fail(
            (fmt,),
            f"expected records (a list) or columns (an object), got {_describe(value)}",
            "type_error",
        )
    return _arrays(cells, n, path_of, schema)


def parse_records(
    rows: list[Any], schema: _Compiled, offset: int, loc: tuple[Any, ...] = ("rows",)
) -> tuple[dict[str, Any], int]:
    """Parsed JSON records (a chunk of an NDJSON stream) as ``({column: array}, rows)``;
    errors name the row by ``offset +`` its index in ``rows``."""
    cells, n, path_of = _columns_from_records(rows, loc, schema, len(rows) or 1, offset)
    return _arrays(cells, n, path_of, schema)


def _arrays(
    cells: dict[str, _Cells], n: int, path_of: Any, schema: _Compiled
) -> tuple[dict[str, Any], int]:
    """Every schema column's cells converted and checked (see :func:`_convert`)."""
    errors = _Errors()
    arrays: dict[str, Any] = {}
    for column in schema.schema.columns:
        values = cells.get(column.name)
        if values is None:  # an optional column left out: missing for every row
            arrays[column.name] = _convert(column, [None] * n, lambda i: (), errors)
            continue
        converted = _convert(column, values, lambda i, c=column.name: path_of(i, c), errors)
        if converted is not None:
            arrays[column.name] = converted
        if errors.full:
            break
    errors.raise_if_any()
    return arrays, n


# --- scoring ----------------------------------------------------------------------------------
def predict(
    family: str, estimator: Any, columns: dict[str, Any], n: int, fast_path: bool = True
) -> dict[str, Any]:
    """The pyfunc's output for the input ``columns``, column by column (training/pyfunc.py
    ``score``). An estimator offering ``predict_proba_columns`` (churn) or ``predict_columns``
    gets the arrays directly, with no DataFrame built per request, unless ``fast_path`` is
    False (the model store found it differing from the pyfunc when it loaded the version)."""
    if family == "churn":
        fast = getattr(estimator, "predict_proba_columns", None) if fast_path else None
        if fast is not None:
            p = np.asarray(fast(columns, n))[:, 1]
        else:
            names = list(estimator.feature_names_in_)
            p = estimator.predict_proba(pd.DataFrame(columns, columns=names))[:, 1]
        return {"churn_probability": p, "risk_band": risk_band(p)}
    if family in ("segmentation", "clv"):
        fast = getattr(estimator, "predict_columns", None) if fast_path else None
        if fast is not None:
            return dict(fast(columns))
        out = estimator.predict(pd.DataFrame(columns, columns=list(columns)))
        return {str(c): out[c].to_numpy() for c in out.columns}
    raise LookupError(f"unknown model family {family!r}")


def records(columns: dict[str, Any]) -> list[dict[str, Any]]:
    """Prediction columns as one record per row, in plain Python values (NaN stays NaN;
    orjson writes it as null, as MLflow's server does)."""
    names = list(columns)
    lists = [np.asarray(v).tolist() for v in columns.values()]
    return [dict(zip(names, row, strict=True)) for row in zip(*lists, strict=True)]


def render(columns: dict[str, Any]) -> bytes:
    """``{"predictions": [records]}`` as MLflow's server writes it."""
    return orjson.dumps({"predictions": records(columns)})


def render_lines(columns: dict[str, Any]) -> bytes:
    """The same records as NDJSON, one per line."""
    return b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in records(columns))


def score_body(
    raw: bytes, family: str, loaded: Any, schema: _Compiled, max_rows: int
) -> tuple[bytes, int]:
    features, n = parse_columns(raw, schema, max_rows)
    return render(_predict_checked(family, loaded, features, n)), n


def score_lines(
    lines: list[bytes], offset: int, family: str, loaded: Any, schema: _Compiled
) -> tuple[bytes, int]:
    """One chunk of an NDJSON stream (rows ``offset`` on) as NDJSON predictions."""
    features, n = parse_records(streaming.decode_rows(lines, offset), schema, offset)
    return render_lines(_predict_checked(family, loaded, features, n)), n


def _predict_checked(family: str, loaded: Any, features: dict[str, Any], n: int) -> dict[str, Any]:
    try:
        return predict(family, loaded.estimator, features, n, getattr(loaded, "fast_path", True))
    except InvalidInputError:  # the model's own check, naming the column and the rows
        raise
    except ValueError as exc:  # e.g. values the estimator cannot use; never a traceback
        message = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise InvalidInputError(f"the model could not score these rows: {message}") from exc


_BODY_SCHEMA_CELL: dict[str, Any] = {
    "anyOf": [{"type": "number"}, {"type": "string"}, {"type": "null"}]
}
_RECORDS = {"type": "array", "items": {"type": "object", "additionalProperties": _BODY_SCHEMA_CELL}}
_COLUMNAR = {
    "type": "object",
    "additionalProperties": {"type": "array", "items": _BODY_SCHEMA_CELL},
}
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
                "data": {"type": "array", "items": {"type": "array", "items": _BODY_SCHEMA_CELL}},
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
    "minProperties": 1,
}
_EXAMPLE = {  # a cvm-clv row
    "dataframe_split": {
        "columns": CLV_INPUT_COLUMNS,
        "data": [[4, 200, 300, 55.0, 0.3, 300, 275.0]],
    }
}
_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}


@router.post(
    "/{name}/invocations",
    summary="Score with one registered model, as `mlflow models serve` does",
    description=(
        "MLflow's scoring bodies (`dataframe_split`, `dataframe_records`, `instances`, "
        '`inputs`) in, `{"predictions": [...]}` out. For large batches send '
        "`Content-Type: application/x-ndjson` instead: one JSON record per line in, one "
        "prediction per line out, any number of rows in bounded memory (errors after the "
        'first 2,000 rows end the stream with an `{"error": ..., "rows_scored": n}` line).'
    ),
    response_class=Response,
    openapi_extra={
        "parameters": [
            {
                "name": "name",
                "in": "path",
                "required": True,
                "description": "The registered model: cvm-segmentation, cvm-churn or cvm-clv.",
                "schema": {"type": "string", "maxLength": 100, "examples": ["cvm-churn"]},
            }
        ],
        "security": [{"ApiKey": []}],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": REQUEST_SCHEMA, "example": _EXAMPLE}},
        },
    },
    responses={
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
        404: {
            "description": "no such model is served",
            "content": {"application/json": {"schema": _ERROR_REF}},
        },
        413: {
            "description": "body over CVM_MAX_BODY_BYTES",
            "content": {"application/json": {"schema": _ERROR_REF}},
        },
        415: {"description": "not JSON", "content": {"application/json": {"schema": _ERROR_REF}}},
        422: {
            "description": "invalid input; every bad value is named by its path",
            "content": {"application/json": {"schema": _ERROR_REF}},
        },
        503: {
            "description": "models not loaded yet",
            "content": {"application/json": {"schema": _ERROR_REF}},
        },
    },
)
async def invocations(request: Request) -> Response:
    # The hot path: no FastAPI dependencies or parameter models (they cost more than scoring
    # a row); the key is checked here and the path parameter is documented in openapi_extra.
    principal = get_guard(request).check_scoring(request.headers.get(API_KEY_HEADER))
    request.state.principal = principal
    name = request.path_params["name"]
    family = FAMILY_OF.get(name)
    if family is None:
        raise StarletteHTTPException(
            404, f"no model {name!r} is served here; served: {_names(FAMILY_OF)}"
        )
    content_type = request.headers.get("content-type", "application/json")
    media, _, parameters = content_type.partition(";")
    stream = streaming.is_ndjson(content_type)
    if (media.strip().lower() != "application/json" and not stream) or (
        parameters and "utf-8" not in parameters.lower().replace(" ", "")
    ):
        raise StarletteHTTPException(
            415,
            "send application/json (UTF-8), or application/x-ndjson to stream; "
            f"got {content_type[:100]!r}",
        )
    store = request.app.state.store
    loaded = store.models.get(family)  # one version for the whole request, even mid-reload
    if loaded is None:
        raise ServiceUnavailable(store.error or "models are loading")
    try:
        schema = schema_for(loaded)
    except Exception as exc:
        log.warning("input schema of %s unavailable: %s", name, exc)
        raise ServiceUnavailable(f"the input schema of {name} is unavailable") from exc
    observability.tag_model(request, name, loaded.version)
    headers = {"X-Model-Name": name, "X-Model-Version": loaded.version}
    if stream:
        return await _stream(request, name, family, loaded, schema, headers)
    raw = await request.body()
    max_rows = store.settings.max_batch
    started = time.perf_counter()
    if len(raw) <= INLINE_BODY_BYTES:
        content, rows = score_body(raw, family, loaded, schema, max_rows)
    else:
        content, rows = await anyio.to_thread.run_sync(
            score_body, raw, family, loaded, schema, max_rows
        )
    observability.record_rows(name, loaded.version, rows)
    log.debug(
        "%s v%s scored %d rows in %.2f ms",
        name,
        loaded.version,
        rows,
        (time.perf_counter() - started) * 1e3,
    )
    return Response(content, media_type="application/json", headers=headers)


async def _stream(
    request: Request, name: str, family: str, loaded: Any, schema: _Compiled, headers: dict
) -> streaming.NDJSONStream:
    """NDJSON in and out (service/streaming.py): the body is spooled as it arrives, the first
    chunk is scored here (so its errors are a normal 422), the response scores the rest."""
    file = await streaming.spool(request.stream())
    try:
        chunks = streaming.row_chunks(streaming.read_file(file))
        first = await anext(chunks, None)
        if first is None:
            _fail(("rows",), "no rows: send at least one JSON record per line", "too_short")
        max_rows = request.app.state.settings.max_stream_rows
        if len(first) > max_rows:
            raise InvalidInputError(
                f"the stream has more than {max_rows:,} rows (CVM_MAX_STREAM_ROWS)", field="rows"
            )

        def score(lines: list[bytes], offset: int) -> tuple[bytes, int]:
            return score_lines(lines, offset, family, loaded, schema)

        def on_rows(n: int) -> None:
            observability.record_rows(name, loaded.version, n)

        body, n = await anyio.to_thread.run_sync(score, first, 0)
        on_rows(n)
    except BaseException:
        file.close()
        raise
    return streaming.NDJSONStream(body, n, chunks, score, max_rows, on_rows, headers, file)
