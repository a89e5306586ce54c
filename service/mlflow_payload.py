"""MLflow scoring bodies read as a model's input columns, with strict and complete validation.

The bodies ``mlflow models serve`` accepts: ``dataframe_split``, ``dataframe_records``,
``instances`` and ``inputs`` (records or columns; ``params`` only when empty), and NDJSON
records, one per line. Unlike MLflow's server, a value of the wrong type is an error (no silent
string → number or float → integer conversion), unknown and missing columns are named, and
every bad value is reported with its path, which holds the row index (at most
:data:`MAX_ERRORS` errors, in FastAPI's shape). A body is parsed with orjson straight into one
list per column and then into numpy arrays, with no per-row Python objects beyond the parsed
JSON.

MLflow's ``NaN``, ``Infinity`` and ``-Infinity`` literals are read as its server reads them
(:mod:`service.mlflow_json`): ``NaN`` is a missing value, as ``null`` is; an infinity is named
as an error wherever it is (no column takes one). The columns are those of the version's
:class:`~service.input_schema.InputSchema`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import numpy as np
import orjson
import pandas as pd
from fastapi.exceptions import RequestValidationError

from models.exceptions import InvalidInputError
from service.input_schema import Column, InputSchema
from service.mlflow_json import NonFinite, loads

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
MAX_ERRORS = 20

Loc = tuple[Any, ...]
Cells = Sequence[Any]  # one column's JSON values (a list, or a tuple from transposed rows)
PathOf = Callable[[int, str], Loc]  # (row index, column) -> where the value is in the body

_NONE = type(None)
_NUMBER_TYPES = frozenset({float, int, _NONE})
_INT_TYPES = frozenset({int})
_STRING_TYPES = frozenset({str, _NONE})
_BOOL_TYPES = frozenset({bool})
_NULLABLE_INT_TYPES = frozenset({int, _NONE})
_NULLABLE_BOOL_TYPES = frozenset({bool, _NONE})


# --- errors -----------------------------------------------------------------------------------
class _Errors:
    """Collects validation errors (at most :data:`MAX_ERRORS`) in FastAPI's shape."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, loc: Loc, message: str, kind: str) -> None:
        if len(self.items) < MAX_ERRORS:
            self.items.append({"loc": ("body", *loc), "msg": message, "type": kind})

    @property
    def full(self) -> bool:
        return len(self.items) >= MAX_ERRORS

    def raise_if_any(self) -> None:
        if self.items:
            raise RequestValidationError(self.items)


def fail(loc: Loc, message: str, kind: str = "value_error") -> NoReturn:
    """One validation error at ``loc`` (under ``body``), raised now."""
    raise RequestValidationError([{"loc": ("body", *loc), "msg": message, "type": kind}])


def describe(value: Any) -> str:
    """A JSON value as an error message names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"string {text!r}"
    if type(value) is NonFinite:
        return "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def quoted(names: Any) -> str:
    return ", ".join(repr(n) for n in names)


def _check_columns(
    keys: Sequence[str], schema: InputSchema, errors: _Errors, at: Loc, by_index: bool = False
) -> None:
    """The column-name check of every payload form: each name in ``keys`` the model does not
    take, and each required column not among them. Errors are at ``(*at, name)``; with
    ``by_index`` (a list of column names), an unknown name is at ``(*at, its index)`` and the
    missing columns are named together at ``at``."""
    for j, name in enumerate(keys):
        if name not in schema.allowed:
            errors.add(
                (*at, j if by_index else name),
                f"unknown column {name!r}; the model's columns are {quoted(schema.names)}",
                "extra_forbidden",
            )
    if schema.required.issubset(keys):
        return
    present = set(keys)
    missing = [c for c in schema.names if c in schema.required and c not in present]
    if by_index:
        errors.add(at, f"missing column(s) {quoted(missing)}", "missing")
        return
    for name in missing:
        errors.add((*at, name), f"missing column {name!r}", "missing")


# --- NDJSON -----------------------------------------------------------------------------------
def decode_lines(lines: list[bytes], offset: int) -> list[Any]:
    """NDJSON lines as JSON values; a line that is not JSON is named by its row number."""
    rows = []
    errors = _Errors()
    for k, line in enumerate(lines):
        try:
            rows.append(loads(line))
        except orjson.JSONDecodeError as exc:
            errors.add(("rows", offset + k), f"invalid JSON: {exc}", "json_invalid")
            if errors.full:
                break
    errors.raise_if_any()
    return rows


# --- conversion -------------------------------------------------------------------------------
def _flag(
    column: Column,
    values: Cells,
    allowed: frozenset[Any],
    expected: str,
    kind: str,
    path_of: PathOf,
    errors: _Errors,
) -> None:
    """Name every value of a type the column does not take (up to the error cap)."""
    for i, v in enumerate(values):
        if type(v) not in allowed:
            text, error, hint = expected, kind, ""
            if type(v) is NonFinite and kind == "float_type":
                text, error = "a finite number", "finite_number"
            elif expected == "an integer" and type(v) is float and not v.is_integer():
                hint = " (not truncated: send an integer)"
            errors.add(
                path_of(i, column.name),
                f"{column.name}: expected {text}, got {describe(v)}{hint}",
                error,
            )
            if errors.full:
                break


def _convert(column: Column, values: Cells, path_of: PathOf, errors: _Errors) -> Any:
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
            return values if type(values) is list else list(values)
        _flag(column, values, _STRING_TYPES, "a string", "string_type", path_of, errors)
        return None
    return list(values)  # a type this service does not check: passed on as given


def _arrays(
    cells: dict[str, Cells], n: int, path_of: PathOf, schema: InputSchema
) -> tuple[dict[str, Any], int]:
    """Every schema column's cells converted and checked (see :func:`_convert`); each
    column's cells are dropped from ``cells`` once converted (memory: one column at a time)."""
    errors = _Errors()
    arrays: dict[str, Any] = {}
    for column in schema.columns:
        values = cells.pop(column.name, None)
        if values is None:  # an optional column left out: missing for every row
            arrays[column.name] = _convert(column, [None] * n, path_of, errors)  # no errors
            continue
        converted = _convert(column, values, path_of, errors)
        if converted is not None:
            arrays[column.name] = converted
        if errors.full:
            break
    errors.raise_if_any()
    return arrays, n


# --- the payload forms ------------------------------------------------------------------------
def _check_rows(n: int, fmt: str, max_rows: int) -> None:
    if n == 0:
        fail((fmt,), "no rows: send at least one", "too_short")
    if n > max_rows:
        raise InvalidInputError(
            f"{n:,} rows in one request; the limit is {max_rows:,} (CVM_MAX_BATCH)", field=fmt
        )


def _columns_from_records(
    rows: Any, loc: Loc, schema: InputSchema, max_rows: int, offset: int = 0
) -> tuple[dict[str, Cells], int, PathOf]:
    """Records as columns; errors name ``(*loc, offset + row index, column)``."""
    if not isinstance(rows, list):
        fail(loc, f"expected a list of records (objects), got {describe(rows)}", "list_type")
    _check_rows(len(rows), loc[0], max_rows)
    errors = _Errors()
    if set(map(type, rows)) != {dict}:
        for i, row in enumerate(rows):
            if type(row) is not dict:
                errors.add(
                    (*loc, offset + i),
                    f"expected a record (an object), got {describe(row)}",
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
        _check_columns(sorted(row), schema, errors, (*loc, offset + i))
        if errors.full:
            break
    errors.raise_if_any()
    n = len(rows)
    columns: dict[str, Cells]
    try:  # every column in every row: one C-level pass
        tuples = list(map(schema.getter, rows))
        columns = dict(zip(schema.names, zip(*tuples, strict=True), strict=True))
        del tuples
    except KeyError:  # optional columns absent from some rows
        columns = {
            name: [row.get(name) for row in rows] for name in schema.names if name in present
        }
    rows.clear()  # the records are read: their dicts go now, not with the whole body
    return columns, n, lambda i, name: (*loc, offset + i, name)


def _columns_from_dict(
    obj: dict[str, Any], loc: Loc, schema: InputSchema, max_rows: int
) -> tuple[dict[str, Cells], int, PathOf]:
    errors = _Errors()
    _check_columns(list(obj), schema, errors, loc)
    errors.raise_if_any()
    lengths = {}
    for name, values in obj.items():
        if not isinstance(values, list):
            errors.add(
                (*loc, name), f"expected a list of values, got {describe(values)}", "list_type"
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


def _check_split_fields(obj: dict, loc: Loc, errors: _Errors) -> None:
    """``dataframe_split`` holds ``columns`` and ``data`` (and optionally ``index``), no more."""
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


def _check_split_rows(data: list, width: int, loc: Loc, errors: _Errors) -> None:
    """Every row of ``dataframe_split.data`` is a list of ``width`` values (one pass over the
    types and lengths; rows are named only when one is wrong)."""
    if set(map(type, data)) == {list} and set(map(len, data)) == {width}:
        return
    for i, row in enumerate(data):
        if type(row) is not list:
            errors.add(
                (*loc, "data", i), f"expected a row (a list), got {describe(row)}", "list_type"
            )
        elif len(row) != width:
            errors.add(
                (*loc, "data", i), f"{len(row)} values where there are {width} columns", "length"
            )
        if errors.full:
            break
    errors.raise_if_any()


def _columns_from_split(
    obj: Any, schema: InputSchema, max_rows: int
) -> tuple[dict[str, Cells], int, PathOf]:
    loc: Loc = ("dataframe_split",)
    if not isinstance(obj, dict):
        fail(loc, f"expected an object with 'columns' and 'data', got {describe(obj)}", "dict_type")
    errors = _Errors()
    _check_split_fields(obj, loc, errors)
    columns, data = obj["columns"], obj["data"]
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        fail((*loc, "columns"), "expected a list of column names (strings)", "list_type")
    if not isinstance(data, list):
        fail((*loc, "data"), f"expected a list of rows, got {describe(data)}", "list_type")
    _check_rows(len(data), "dataframe_split", max_rows)
    seen: set[str] = set()
    for j, name in enumerate(columns):
        if name in seen:
            errors.add(
                (*loc, "columns", j), f"column {name!r} appears more than once", "value_error"
            )
        seen.add(name)
    _check_columns(columns, schema, errors, (*loc, "columns"), by_index=True)
    errors.raise_if_any()
    _check_split_rows(data, len(columns), loc, errors)
    index = obj.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(data)):
        fail((*loc, "index"), f"expected a list of {len(data)} labels (one per row)", "length")
    n = len(data)
    cells: dict[str, Cells] = dict(zip(columns, zip(*data, strict=True), strict=True))
    data.clear()  # the rows are read: their lists go now, not with the whole body
    position = {name: j for j, name in enumerate(columns)}
    return cells, n, lambda i, name: (*loc, "data", i, position[name])


# --- entry points -----------------------------------------------------------------------------
def parse_columns(raw: bytes, schema: InputSchema, max_rows: int) -> tuple[dict[str, Any], int]:
    """An MLflow scoring body as ``({column: array}, rows)``, every schema column present."""
    try:
        body = loads(raw)
    except orjson.JSONDecodeError as exc:
        fail((), f"invalid JSON: {exc}", "json_invalid")
    if not isinstance(body, dict):
        fail(
            (),
            f"expected a JSON object with one of {quoted(FORMATS)}, got {describe(body)}",
            "dict_type",
        )
    errors = _Errors()
    for key in body:
        if key not in FORMATS and key != "params":
            errors.add(
                (key,),
                f"unknown field; expected exactly one of {quoted(FORMATS)}",
                "extra_forbidden",
            )
    formats = [k for k in FORMATS if k in body]
    if len(formats) != 1:
        errors.add(
            (), f"expected exactly one of {quoted(FORMATS)}, got {len(formats)}", "value_error"
        )
    params = body.pop("params", None)
    if params not in (None, {}):
        errors.add(("params",), "these models take no params", "extra_forbidden")
    errors.raise_if_any()
    fmt = formats[0]
    value = body.pop(fmt)
    del body
    if fmt == "dataframe_split":
        cells, n, path_of = _columns_from_split(value, schema, max_rows)
    elif fmt == "dataframe_records" or isinstance(value, list):
        cells, n, path_of = _columns_from_records(value, (fmt,), schema, max_rows)
    elif isinstance(value, dict):
        cells, n, path_of = _columns_from_dict(value, (fmt,), schema, max_rows)
    else:
        fail(
            (fmt,),
            f"expected records (a list) or columns (an object), got {describe(value)}",
            "type_error",
        )
    return _arrays(cells, n, path_of, schema)


def parse_payload(raw: bytes, schema: InputSchema, max_rows: int) -> pd.DataFrame:
    """An MLflow scoring body as the model's input frame (columns in schema order)."""
    columns, _ = parse_columns(raw, schema, max_rows)
    return pd.DataFrame(columns, columns=list(schema.names))


def parse_records(
    rows: list[Any], schema: InputSchema, offset: int, loc: Loc = ("rows",)
) -> tuple[dict[str, Any], int]:
    """Parsed JSON records (a chunk of an NDJSON stream) as ``({column: array}, rows)``;
    errors name the row by ``offset +`` its index in ``rows``."""
    cells, n, path_of = _columns_from_records(rows, loc, schema, len(rows) or 1, offset)
    return _arrays(cells, n, path_of, schema)


def parse_lines(lines: list[bytes], schema: InputSchema, offset: int) -> tuple[dict[str, Any], int]:
    """A chunk of NDJSON lines (rows ``offset`` on) as ``({column: array}, rows)``."""
    return parse_records(decode_lines(lines, offset), schema, offset)
