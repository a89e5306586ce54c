"""``text/csv`` scoring bodies, as ``mlflow models serve`` takes them.

MLflow's server reads a CSV body with ``pandas.read_csv`` (UTF-8, a header row naming the
columns, the types of the model's signature). Here a body is read into the same column cells
as the JSON forms (:mod:`service.mlflow_payload`) and checked by the same column and type
checks, so every error names the row and the column: ``rows.<row>.<column>``, rows counted
from 0 after the header. As pandas reads it:

- the first line is the header; a first column with an empty name is the row index that
  ``DataFrame.to_csv()`` writes, and is ignored; blank lines are skipped;
- an empty field, and pandas' missing-value markers (``NA``, ``NaN``, ``null``, ``None``,
  ``N/A``, ...), are missing values, in every column (a string ``"NA"`` too, as in MLflow);
- numbers are read as pandas reads them; ``true``/``false`` (any case) are booleans.

Unlike MLflow, a value of the wrong type is an error, not a silent conversion, unknown and
missing columns are named, a row with more or fewer fields than the header is an error, and an
infinity is an error. ``CVM_MAX_BODY_BYTES`` bounds the body and ``CVM_MAX_BATCH`` the rows,
as for JSON.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import numpy as np
import pandas as pd

from service.input_schema import InputSchema
from service.mlflow_json import NonFinite
from service.mlflow_payload import Cells, _arrays, _check_columns, _check_rows, _Errors, fail

CSV = "text/csv"
# pandas' default missing-value markers (pandas._libs.parsers.STR_NA_VALUES)
NA_VALUES = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN"}
    | {"<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)
_INTEGER = re.compile(r"\s*[+-]?\d+\s*")
_BOOLEANS = {"true": True, "false": False}


def _read(raw: bytes) -> list[list[str]]:
    """The body's non-blank records (the header first)."""
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start : exc.start + 1].hex()
        fail((), f"invalid CSV: byte {exc.start} is 0x{byte}, not UTF-8; send UTF-8", "csv_invalid")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return [record for record in reader if record]
    except csv.Error as exc:
        fail((), f"invalid CSV on line {reader.line_num}: {exc}", "csv_invalid")


def _numbers(texts: list[str]) -> list[Any]:
    """Number cells as pandas reads them (C-level); a missing marker is None, an infinity a
    :class:`NonFinite`, and text that is no number stays text, for the type check to name."""
    series = pd.Series(texts, dtype=object)
    numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    values: list[Any] = numbers.tolist()
    odd = ~np.isfinite(numbers)
    for i in np.flatnonzero(odd).tolist():  # missing values, infinities, non-numbers only
        text = texts[i]
        if text in NA_VALUES:
            values[i] = None
        elif np.isnan(numbers[i]):
            values[i] = text
        else:
            values[i] = NonFinite(numbers[i])
    return values


def _integer(text: str) -> Any:
    if text in NA_VALUES:
        return None
    if _INTEGER.fullmatch(text):
        return int(text)
    try:  # a fraction is named as such by the type check ("expected an integer, got 4.5")
        return float(text) if "_" not in text else text
    except ValueError:
        return text


def _cells(kind: str, texts: list[str]) -> Cells:
    """One column's fields as the JSON values the payload checks take."""
    if kind in ("double", "float"):
        return _numbers(texts)
    if kind in ("long", "integer"):
        return [_integer(t) for t in texts]
    if kind == "boolean":
        return [None if t in NA_VALUES else _BOOLEANS.get(t.strip().lower(), t) for t in texts]
    return [None if t in NA_VALUES else t for t in texts]


def _check_widths(data: list[list[str]], width: int) -> None:
    if set(map(len, data)) == {width}:
        return
    errors = _Errors()
    for i, record in enumerate(data):
        if len(record) != width:
            errors.add(("rows", i), f"{len(record)} fields where the header has {width}", "length")
            if errors.full:
                break
    errors.raise_if_any()


def parse_csv(raw: bytes, schema: InputSchema, max_rows: int) -> tuple[dict[str, Any], int]:
    """A CSV body as ``({column: array}, rows)``, every schema column present."""
    records = _read(raw)
    if not records:
        fail((), "no header: the first line of a CSV body names the columns", "missing")
    header, data = records[0], records[1:]
    if header[0] == "":  # the index column DataFrame.to_csv() writes by default
        header, data = header[1:], [record[1:] for record in data]
    errors = _Errors()
    seen: set[str] = set()
    for j, name in enumerate(header):
        if name in seen:
            errors.add(("columns", j), f"column {name!r} appears more than once", "value_error")
        seen.add(name)
    _check_columns(header, schema, errors, ("columns",), by_index=True)
    errors.raise_if_any()
    _check_rows(len(data), "rows", max_rows)
    _check_widths(data, len(header))
    position = {name: j for j, name in enumerate(header)}
    cells = {
        c.name: _cells(c.type, [record[position[c.name]] for record in data])
        for c in schema.columns
        if c.name in position
    }
    return _arrays(cells, len(data), lambda i, name: ("rows", i, name), schema)
