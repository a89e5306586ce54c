"""Load and validate the tables users bring: transactions and (optionally) customers.

Files are read by extension: ``.csv``/``.txt`` as CSV (UTF-8, header on the first line; the
delimiter is taken from the header line: ``,`` unless ``;``, tab or ``|`` is more frequent
there), ``.parquet``/``.pq`` as Parquet. Anything else is a :class:`DataError`.

Column names are matched case-insensitively after stripping surrounding spaces; inner spaces
and hyphens count as underscores (``"Customer ID"`` is ``customer_id``). Recognised columns are
renamed to their canonical lower-case name; every other column is kept under its own name.

Row numbers
    Every message, ``DataError.rows`` and the ``_line`` column of a quarantine file use the
    same numbering. For CSV it is the *line number in the file* (the header is line 1, so the
    first data row is line 2; a quoted value spanning several lines is reported at the line
    where its row starts) and messages say "line". For Parquet it is the 1-based row position
    and messages say "row".

Row problems
    Each row gets at most one reason, the first that applies, in this order.

    transactions: ``missing_customer_id``, ``bad_timestamp``, ``bad_amount``,
    ``negative_amount``, ``bad_cost``, ``after_as_of``, ``duplicate``.

    customers: ``missing_customer_id``, ``duplicate_customer_id``, ``bad_signup_date``,
    ``bad_churn_date``, ``bad_churned``.

    With ``bad_rows="error"`` (the default) any of them raises :class:`DataError`, except
    ``after_as_of`` and ``duplicate``, which are always quarantined. With
    ``bad_rows="quarantine"`` all problem rows are quarantined: written, with their original
    values, their row number (``_line``) and their reason (``_reason``), to
    ``<quarantine_dir>/<file stem>_quarantine.csv`` (default ``quarantine_dir``: a
    ``quarantine/`` folder next to the input; ``cvm`` commands use one folder per run). An
    existing file is never replaced: the next free ``_quarantine_2.csv``, ``_3``, ... is
    written instead. Every row read is either kept or quarantined:
    ``report.n_read == report.n_kept + report.n_quarantined``. Blank lines in a CSV are not rows.

Value rules
    * ids are text (leading zeros kept), stripped; blank or ``NA``/``null``/``None``/``NaN``
      means missing.
    * dates: ISO 8601 dates or date-times (``2024-01-05``, ``2024-01-05T10:00:00+02:00``,
      ``2024/01/05``) or 8-digit ``YYYYMMDD``. Values with a UTC offset are converted to UTC,
      then the zone is dropped; naive values are kept as they are. Anything else
      (``05/01/2024``, ``yesterday``, ``2024-13-01``) is unparsable, and the error lists the
      accepted formats.

    When no row of a file is usable, the error says what to check about the file (the column,
    its format) instead of suggesting ``--bad-rows quarantine``.
    * amounts are plain decimal numbers (``12.5``, `` 12.5 ``, ``1e3``). Decimal commas
      (``12,5``) are read when the column is unambiguous: no value has a '.', and some value
      has other than three digits after the comma (``1,250`` alone could be a thousands
      separator); otherwise they are not numbers and the error says so. ``$12`` and ``inf``
      are not numbers. A ``margin`` column (a fraction of amount, at most 1) becomes
      ``cost = amount * (1 - margin)`` when there is no ``cost`` column.
    * ``after_as_of``: ``as_of`` is a date meaning the *end* of that day, so purchases on the
      ``as_of`` day itself are kept.
    * ``duplicate``: a row equal to an earlier kept row in every column after parsing; the
      first occurrence is kept (:func:`models.features.repeated_rows`, the rule the service
      applies to the purchases of a request).

Engines
    The row rules are functions of a frame, :func:`transaction_rows` and
    :func:`customer_rows`, that work on a whole file or on any part of one; the Spark engine
    (:mod:`training.spark.data`) runs the same functions on each partition.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from models.exceptions import CVMError, InvalidInputError
from models.features import repeated_rows

__all__ = [
    "BAD_ROWS_POLICIES",
    "CAMPAIGN_REASONS",
    "CUSTOMER_REASONS",
    "TRANSACTION_REASONS",
    "CsvHeader",
    "DataError",
    "LoadReport",
    "Rows",
    "attribute_types",
    "csv_header",
    "customer_columns",
    "customer_reasons",
    "customer_rows",
    "facts_change_rows",
    "fatal_counts",
    "fingerprint",
    "load_customers",
    "load_transactions",
    "no_usable_rows_error",
    "numeric_attributes",
    "ordered_counts",
    "read_table",
    "row_error",
    "transaction_columns",
    "transaction_reasons",
    "transaction_rows",
]

CSV_SUFFIXES = (".csv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
BAD_ROWS_POLICIES = ("error", "quarantine")

TRANSACTION_REASONS = (
    "missing_customer_id",
    "bad_timestamp",
    "bad_amount",
    "negative_amount",
    "bad_cost",
    "after_as_of",
    "duplicate",
)
CUSTOMER_REASONS = (
    "missing_customer_id",
    "duplicate_customer_id",
    "bad_signup_date",
    "bad_churn_date",
    "bad_churned",
)
# campaigns files (training.campaigns.load_campaigns), in the order they are checked
CAMPAIGN_REASONS = (
    "missing_customer_id",
    "missing_campaign_id",
    "bad_sent_at",
    "missing_treatment",
    "bad_cost",
    "negative_cost",
    "bad_planned_offer",
    "duplicate",
    "duplicate_assignment",
)
# Reasons that are quarantined even with bad_rows="error".
_ALWAYS_QUARANTINED = frozenset({"after_as_of", "duplicate"})

# (singular, plural) problem descriptions used in row-error messages.
_DESCRIPTIONS = {
    "missing_customer_id": ("has a missing customer id", "have a missing customer id"),
    "duplicate_customer_id": (
        "repeats a customer id seen on an earlier row",
        "repeat a customer id seen on an earlier row",
    ),
    "bad_timestamp": ("has an unparsable date", "have unparsable dates"),
    "bad_signup_date": ("has an unparsable date", "have unparsable dates"),
    "bad_churn_date": ("has an unparsable date", "have unparsable dates"),
    "bad_amount": ("has a missing or non-numeric amount", "have missing or non-numeric amounts"),
    "negative_amount": ("has a negative amount", "have negative amounts"),
    "bad_cost": ("has a non-numeric cost", "have non-numeric costs"),
    "bad_margin": (
        "has a margin that is not a number <= 1",
        "have margins that are not numbers <= 1",
    ),
    "missing_campaign_id": ("has a missing campaign id", "have a missing campaign id"),
    "bad_sent_at": ("has an unparsable date", "have unparsable dates"),
    "missing_treatment": ("has a missing treatment", "have a missing treatment"),
    "negative_cost": ("has a negative cost", "have negative costs"),
    "bad_planned_offer": (
        "has a planned offer that is neither blank nor its own treatment (a control row: the "
        "offer it was held out from, never 'control')",
        "have a planned offer that is neither blank nor their own treatment (a control row: "
        "the offer it was held out from, never 'control')",
    ),
    "duplicate_assignment": (
        "repeats a (customer_id, campaign_id) pair seen on an earlier row",
        "repeat a (customer_id, campaign_id) pair seen on an earlier row",
    ),
    "bad_churned": (
        "has a churned value that is not 0/1, true/false or yes/no",
        "have churned values that are not 0/1, true/false or yes/no",
    ),
}

_DATE_REASONS = frozenset({"bad_timestamp", "bad_signup_date", "bad_churn_date", "bad_sent_at"})
_NUMBER_REASONS = frozenset({"bad_amount", "bad_cost"})
DATE_FORMATS = (
    "accepted dates: YYYY-MM-DD (ISO 8601, with an optional time and UTC offset; also "
    "YYYY/MM/DD) or YYYYMMDD; DD/MM/YYYY and MM/DD/YYYY are not read (05/01/2024 could be "
    "either): convert them to YYYY-MM-DD"
)
DECIMAL_COMMAS = (
    "decimal commas (12,5) are read only when the column has no '.' and some value has other "
    "than 3 digits after the comma (1,250 may be a thousands separator): write 12.5 and 1250"
)
_COMMA_NUMBER = r"[+-]?\d*,\d+"
_NA_TOKENS = frozenset({"nan", "na", "n/a", "<na>", "nat", "null", "none"})
_TRUE_TOKENS = frozenset({"1", "1.0", "true", "yes"})
_FALSE_TOKENS = frozenset({"0", "0.0", "false", "no"})
_DELIMITERS = (",", ";", "\t", "|")
_MAX_LISTED = 5


class DataError(CVMError):
    """A problem with a user's data file, explained in one line.

    ``path`` is the file as given, ``column`` the canonical name of the column at fault (or
    ``None``), ``rows`` the row numbers named in the message (at most five; see the module
    docstring for the numbering), ``n_rows`` how many rows have the problem in total and
    ``message`` the text, which names the file, the column and the rows.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str,
        column: str | None = None,
        rows: list[int] | None = None,
        n_rows: int | None = None,
    ):
        message = " ".join(message.splitlines())
        super().__init__(message)
        self.message = message
        self.path = path
        self.column = column
        self.rows = list(rows or [])
        self.n_rows = len(self.rows) if n_rows is None else n_rows


@dataclass
class LoadReport:
    """What a loader read, kept and set aside."""

    path: str
    n_read: int
    n_kept: int
    n_quarantined: int
    quarantine_path: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)
    duplicates_kept: int = 0  # identical rows kept on request (``keep_duplicates=True``)

    def summary(self) -> str:
        """One line for logs, e.g. ``tx.csv: read 10, kept 8, quarantined 2 (duplicate: 2)``."""
        text = f"{self.path}: read {self.n_read}, kept {self.n_kept}"
        if self.duplicates_kept:
            text += f" (of which {self.duplicates_kept} identical repeats, kept as asked)"
        if self.n_quarantined:
            detail = ", ".join(f"{reason}: {n}" for reason, n in self.reasons.items())
            text += f", quarantined {self.n_quarantined} ({detail}) -> {self.quarantine_path}"
        return text


@dataclass
class _Raw:
    """A file as read: original values and column names, plus each row's number."""

    path: str
    frame: pd.DataFrame
    numbers: np.ndarray
    unit: str  # "line" (CSV) or "row" (Parquet)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file as is, choosing the reader by extension.

    CSV cells come back as ``str`` exactly as written (an empty cell is ``""``; nothing is
    interpreted as missing), so no value is lost or guessed; Parquet columns keep their
    stored types. Raises :class:`DataError` if the file is missing, unreadable, malformed,
    empty (no data rows) or has an unsupported extension.
    """
    return _read_raw(path).frame


def _read_raw(path: str | Path) -> _Raw:
    shown = str(path)
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        kind = f"'{p.suffix}'" if p.suffix else "(no extension)"
        raise DataError(
            f"{shown}: unsupported file type {kind}; use .csv, .txt, .parquet or .pq",
            path=shown,
        )
    if not p.exists():
        raise DataError(f"{shown}: file not found", path=shown)
    if not p.is_file():
        raise DataError(f"{shown}: not a regular file", path=shown)
    try:
        if p.stat().st_size == 0:
            raise DataError(f"{shown}: file is empty", path=shown)
        if suffix in CSV_SUFFIXES:
            (frame, numbers), unit = _read_csv(p, shown), "line"
        else:
            frame, unit = _read_parquet(p, shown), "row"
            numbers = np.arange(1, len(frame) + 1, dtype=np.int64)
    except DataError:
        raise
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{shown}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start}); save it as UTF-8 CSV",
            path=shown,
        ) from exc
    except (OSError, ValueError, csv.Error, pa.ArrowException) as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{shown}: cannot read file: {detail}", path=shown) from exc
    if len(frame) == 0:
        raise DataError(f"{shown}: file has no data rows", path=shown)
    return _Raw(path=shown, frame=frame, numbers=numbers, unit=unit)


def _read_parquet(path: Path, shown: str) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    if any(name is not None for name in frame.index.names):
        frame = frame.reset_index()  # e.g. customer_id stored as the index
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    _check_unique_names(list(frame.columns), shown)
    return frame


def _read_csv(path: Path, shown: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Read every cell as text, with each row's starting line number.

    The fast path is pandas' C reader; its rows map to lines 2, 3, ... whenever the file has
    exactly one line per row. Otherwise (blank lines, values spanning lines, stray line
    endings, or a row pandas cannot tokenise) the file is re-read with :mod:`csv`, which
    tracks line numbers.
    """
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        first = fh.readline()
        if not first.strip():
            if any(chunk.strip() for chunk in iter(lambda: fh.read(1 << 20), "")):
                raise DataError(
                    f"{shown}: line 1 is blank; the first line must be the column header",
                    path=shown,
                )
            raise DataError(f"{shown}: file is empty", path=shown)
    delimiter, header, _ = csv_header(first, shown)

    overflow = "__overflow__"
    while overflow in header:
        overflow += "_"
    try:
        frame = pd.read_csv(
            path,
            sep=delimiter,
            header=None,
            skiprows=1,
            names=[*header, overflow],
            index_col=False,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=True,
            encoding="utf-8-sig",
        )
    except pd.errors.ParserError:
        frame = None
    if frame is None or _count_content_lines(path) != len(frame) + 1:
        return _read_csv_slowly(path, shown, delimiter, header)

    numbers = np.arange(2, len(frame) + 2, dtype=np.int64)
    spill = (frame[overflow] != "").to_numpy()
    if spill.any():
        raise _too_many_fields(shown, int(numbers[spill.argmax()]), len(header), delimiter)
    return frame.drop(columns=overflow), numbers


def _read_csv_slowly(
    path: Path, shown: str, delimiter: str, header: list[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    width = len(header)
    columns: list[list[str]] = [[] for _ in header]
    numbers: list[int] = []
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        next(reader)
        last_line = reader.line_num
        for record in reader:
            start, last_line = last_line + 1, reader.line_num
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # blank line, not a row
            if len(record) > width:
                if any(record[width:]):
                    raise _too_many_fields(shown, start, width, delimiter)
                record = record[:width]
            elif len(record) < width:
                record = record + [""] * (width - len(record))
            for column, value in zip(columns, record, strict=True):
                column.append(value)
            numbers.append(start)
    frame = pd.DataFrame(
        {name: pd.Series(values, dtype="str") for name, values in zip(header, columns, strict=True)}
    )
    return frame, np.asarray(numbers, dtype=np.int64)


class CsvHeader(NamedTuple):
    """The first line of a CSV file, read as :func:`load_transactions` reads it."""

    delimiter: str
    names: list[str]  # column names (trailing blank names dropped, other blanks "unnamed_N")
    n_fields: int  # fields on the line, trailing blank ones included


def csv_header(first: str, shown: str) -> CsvHeader:
    """Parse a CSV header line: the delimiter (``,`` unless ``;``, tab or ``|`` is more
    frequent), the column names, and the number of fields. Raises :class:`DataError` when no
    name is given or a name repeats."""
    delimiter = max(_DELIMITERS, key=first.count) if any(d in first for d in _DELIMITERS) else ","
    header = next(csv.reader([first.rstrip("\r\n")], delimiter=delimiter))
    n_fields = len(header)
    while header and not header[-1].strip():  # trailing delimiters, as Excel writes them
        header.pop()
    if not header:
        raise DataError(f"{shown}: line 1 has no column names", path=shown)
    header = [name if name.strip() else f"unnamed_{i}" for i, name in enumerate(header, 1)]
    _check_unique_names(header, shown)
    return CsvHeader(delimiter, header, n_fields)


def _count_content_lines(path: Path) -> int:
    """Lines in the file, not counting blank lines at its very end."""
    newlines, tail = 0, b""
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            newlines += chunk.count(b"\n")
            tail = (tail + chunk)[-4096:]
    return newlines - tail[len(tail.rstrip()) :].count(b"\n") + 1


def _too_many_fields(shown: str, line: int, width: int, delimiter: str) -> DataError:
    shown_delim = "tab" if delimiter == "\t" else f"'{delimiter}'"
    return DataError(
        f"{shown}: line {line} has more fields than the header ({width}); "
        f"quote values that contain {shown_delim}",
        path=shown,
        rows=[line],
    )


def _check_unique_names(names: list[str], shown: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(
                f"{shown}: column '{name}' appears more than once in the header",
                path=shown,
                column=name,
            )
        seen.add(name)


def _canonical(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).replace("\ufeff", "").strip().lower())


TRANSACTION_COLUMNS = (
    ("customer_id", "timestamp", "amount"),
    ("cost", "margin", "channel", "category"),
)
CUSTOMER_COLUMNS = (("customer_id",), ("signup_date", "churned", "churn_date"))


def transaction_columns(path: str, names: list[str]) -> dict[str, str]:
    """Canonical name -> column name in a transactions file (see :func:`load_transactions`)."""
    return _match_columns(path, names, *TRANSACTION_COLUMNS)


def customer_columns(path: str, names: list[str]) -> dict[str, str]:
    """Canonical name -> column name in a customers file (see :func:`load_customers`)."""
    return _match_columns(path, names, *CUSTOMER_COLUMNS)


def _match_columns(
    path: str, columns: list[str], required: tuple[str, ...], optional: tuple[str, ...]
) -> dict[str, str]:
    """Map canonical name -> column name in the file, failing on missing/ambiguous columns."""
    wanted = required + optional
    found: dict[str, str] = {}
    for name in columns:
        key = _canonical(name)
        if key not in wanted:
            continue
        if key in found:
            raise DataError(
                f"{path}: columns '{found[key]}' and '{name}' both mean '{key}'; keep one",
                path=path,
                column=key,
            )
        found[key] = name
    missing = [name for name in required if name not in found]
    if missing:
        names = ", ".join(f"'{name}'" for name in missing)
        listed = ", ".join(str(name) for name in columns)
        message = (
            f"{path}: missing required column{'s' if len(missing) > 1 else ''} {names} "
            f"(found: {listed})"
        )
        if len(columns) == 1 and any(d in listed for d in ";\t|"):
            message += "; is the file separated by something other than commas?"
        raise DataError(message, path=path, column=missing[0])
    return found


# --------------------------------------------------------------------------------------------
# Parsing values
# --------------------------------------------------------------------------------------------


def _as_text(values: pd.Series, *, na_tokens: bool = True, fractional: bool = False) -> pd.Series:
    """Values as stripped text; blank (and, with ``na_tokens``, ``NA``-like) means missing.

    Floats that are all whole numbers read as integers (``20240105.0`` -> ``"20240105"``),
    unless ``fractional`` says the column they come from has a fraction somewhere."""
    if pd.api.types.is_float_dtype(values.dtype):
        numbers = pd.Series(values.to_numpy(dtype="float64", na_value=np.nan), index=values.index)
        finite = np.isfinite(numbers)
        if not fractional and (numbers[finite] % 1 == 0).all():  # 17.0 -> "17"
            values = numbers.where(finite).astype("Int64")
    text = values.astype("str").str.strip()
    missing = text == ""
    if na_tokens:
        missing |= text.str.lower().isin(_NA_TOKENS)
    return text.mask(missing)


def _fraction_facts(values: pd.Series, column: str) -> set[str]:
    """``fraction:<column>`` when a float column has a finite value that is not whole."""
    if not pd.api.types.is_float_dtype(values.dtype):
        return set()
    numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    numbers = numbers[np.isfinite(numbers)]
    return {f"fraction:{column}"} if (numbers % 1 != 0).any() else set()


def _parse_numbers(
    values: pd.Series, column: str, facts: frozenset[str] | None = None
) -> tuple[pd.Series, pd.Series, set[str]]:
    """Return (float64 numbers with NaN where missing or bad, mask of cells that were given,
    the column facts these values show). Decimal commas are read as ``facts`` say, or as
    these values say when ``facts`` is None (see :func:`_number_facts`)."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        numbers = pd.Series(
            values.astype("Float64").to_numpy(dtype="float64", na_value=np.nan),
            index=values.index,
        )
        given = numbers.notna()
        seen: set[str] = set()
    else:
        text = _as_text(values)
        seen = _number_facts(text, column)
        text = _decimal_commas(text, _reads_commas(seen if facts is None else facts, column))
        given = text.notna()
        numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    return numbers.where(np.isfinite(numbers)), given, seen


def _number_facts(text: pd.Series, column: str) -> set[str]:
    """What decides whether a text column's decimal commas are read: some value is a comma
    number (``comma:``), one with other than three digits after the comma
    (``comma_decimal:``), some value has a '.' (``dot:``)."""
    present = text.dropna()
    comma = present.str.fullmatch(_COMMA_NUMBER)
    facts = set()
    if comma.any():
        facts.add(f"comma:{column}")
        if not present[comma].str.fullmatch(r"[+-]?\d{1,3},\d{3}").all():
            facts.add(f"comma_decimal:{column}")
    if present.str.contains(".", regex=False).any():
        facts.add(f"dot:{column}")
    return facts


def _reads_commas(facts: frozenset[str] | set[str], column: str) -> bool:
    """Decimal commas are read when the column reads them one way only: no value has a '.',
    and some comma value has other than three digits after the comma (so the comma cannot
    be a thousands separator). Otherwise the comma values are not numbers
    (:data:`DECIMAL_COMMAS` says why)."""
    return (
        f"comma:{column}" in facts
        and f"comma_decimal:{column}" in facts
        and f"dot:{column}" not in facts
    )


def _decimal_commas(text: pd.Series, read: bool) -> pd.Series:
    """Decimal commas (``12,50``) as points when ``read``; otherwise the text unchanged."""
    if not read:
        return text
    present = text.dropna()
    comma = present.str.fullmatch(_COMMA_NUMBER)
    fixed = text.copy()
    rows = comma[comma].index
    fixed.loc[rows] = present.loc[rows].str.replace(",", ".", regex=False)
    return fixed


def _parse_datetimes(values: pd.Series, *, fractional: bool = False) -> tuple[pd.Series, pd.Series]:
    """Return (naive datetime64[ns] with NaT where missing or bad, mask of cells given)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return _to_ns(values.dt.tz_convert("UTC").dt.tz_localize(None)), values.notna()
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return _to_ns(values), values.notna()
    text = _as_text(values, fractional=fractional)
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    compact = text.str.fullmatch(r"\d{8}").fillna(False).astype(bool)
    iso = text.str.match(r"\d{4}[-/]\d{1,2}[-/]\d{1,2}").fillna(False).astype(bool) & ~compact
    if compact.any():
        parsed[compact] = _to_ns(pd.to_datetime(text[compact], format="%Y%m%d", errors="coerce"))
    if iso.any():
        # utc=True converts values with an offset to UTC and takes naive ones as they are.
        stamps = pd.to_datetime(text[iso], format="ISO8601", errors="coerce", utc=True)
        parsed[iso] = _to_ns(stamps.dt.tz_localize(None))
    return parsed, text.notna()


def _to_ns(values: pd.Series) -> pd.Series:
    if values.dtype == "datetime64[ns]":
        return values
    outside = (values < pd.Timestamp.min) | (values > pd.Timestamp.max)
    return values.mask(outside).astype("datetime64[ns]")


def _parse_flags(values: pd.Series, *, fractional: bool = False) -> tuple[pd.Series, pd.Series]:
    """Return (Int64 0/1 with <NA> where missing or bad, mask of cells given)."""
    text = _as_text(values, fractional=fractional).str.lower()
    flags = pd.Series(pd.NA, index=values.index, dtype="Int64")
    flags[text.isin(_TRUE_TOKENS)] = 1
    flags[text.isin(_FALSE_TOKENS)] = 0
    return flags, text.notna()


def _clean_text(values: pd.Series) -> pd.Series:
    """Strip string cells and turn blank strings into missing; other cells are untouched."""
    if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object:
        stripped = values.str.strip()
        return stripped.mask(stripped == "")
    if values.dtype == object:

        def clean(cell: object) -> object:
            if isinstance(cell, str):
                cell = cell.strip()
                return cell if cell else None
            return cell

        return values.map(clean)
    return values


def _attribute_facts(text: pd.Series, column: str) -> set[str]:
    """What decides the type of a CSV attribute column (:func:`attribute_types`): some value
    given (``present:``), some missing (``missing:``), some not a plain number or a code with
    a leading zero such as '02139' (``text:``), some number not an integer (``float:``)."""
    facts = set()
    present = text.dropna()
    if len(present) < len(text):
        facts.add(f"missing:{column}")
    if present.empty:
        return facts
    facts.add(f"present:{column}")
    if present.str.match(r"[+-]?0\d").any():
        return facts | {f"text:{column}"}
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.isna().any() or not np.isfinite(numbers.astype("float64")).all():
        return facts | {f"text:{column}"}
    if numbers.dtype.kind != "i":
        facts.add(f"float:{column}")
    return facts


def attribute_types(facts: frozenset[str] | set[str]) -> dict[str, str]:
    """The CSV attribute columns of a customers file that are numbers, with their dtype
    (``int64``, or ``float64`` when some value is fractional or missing); the others stay
    text (codes with leading zeros such as '02139' included)."""
    types = {}
    for fact in sorted(facts):
        kind, _, column = fact.partition(":")
        if kind == "present" and f"text:{column}" not in facts:
            floats = f"float:{column}" in facts or f"missing:{column}" in facts
            types[column] = "float64" if floats else "int64"
    return types


def numeric_attributes(frame: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """``frame`` with the attribute columns named in ``types`` as numbers of that dtype."""
    if not types:
        return frame
    frame = frame.copy()
    for column, dtype in types.items():
        frame[column] = pd.to_numeric(frame[column]).astype(np.dtype(dtype))
    return frame


def _end_of_day(as_of: object) -> pd.Timestamp | None:
    """First instant after the ``as_of`` day (its wall-clock date), or None."""
    if as_of is None:
        return None
    if not isinstance(as_of, str | date | datetime | pd.Timestamp | np.datetime64):
        raise InvalidInputError(f"as_of must be a date, got {type(as_of).__name__}", field="as_of")
    try:
        stamp = pd.Timestamp(as_of.strip() if isinstance(as_of, str) else as_of)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInputError(
            f"as_of {as_of!r} is not a date (use YYYY-MM-DD)", field="as_of"
        ) from exc
    if pd.isna(stamp):
        raise InvalidInputError(f"as_of {as_of!r} is not a date (use YYYY-MM-DD)", field="as_of")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_localize(None)
    return (stamp.normalize() + pd.Timedelta(days=1)).as_unit("ns")


def _check_policy(bad_rows: object) -> None:
    if bad_rows not in BAD_ROWS_POLICIES:
        raise InvalidInputError(
            f"bad_rows must be 'error' or 'quarantine', got {bad_rows!r}", field="bad_rows"
        )


# --------------------------------------------------------------------------------------------
# Row problems, errors and quarantine
# --------------------------------------------------------------------------------------------

# reason -> (canonical column, column in the file or None, description key)
Where = dict[str, tuple[str, str | None, str]]


class Rows(NamedTuple):
    """What the row rules make of a frame (a whole file, or one part of it)."""

    parsed: pd.DataFrame  # the parsed columns, same index as the frame
    reason: pd.Series  # each row's first problem, "" for a usable row
    facts: frozenset[str]  # column facts these rows show (see :func:`transaction_rows`)


class _Reasons:
    """Each row's reason (``""`` while it is fine), first reason wins."""

    def __init__(self, index: pd.Index):
        self.index = index
        self.reason = np.full(len(index), "", dtype=object)

    def flag(self, reason: str, mask: pd.Series | np.ndarray) -> None:
        hit = np.asarray(mask, dtype=bool) & (self.reason == "")
        self.reason[hit] = reason

    def series(self) -> pd.Series:
        return pd.Series(self.reason, index=self.index, dtype=object)


def transaction_rows(
    frame: pd.DataFrame,
    cols: dict[str, str],
    *,
    cutoff: pd.Timestamp | None = None,
    csv: bool = True,
    facts: frozenset[str] | None = None,
) -> Rows:
    """The row rules of :func:`load_transactions` on ``frame`` (a file as read, or any part
    of it): the parsed columns and each row's first problem among ``missing_customer_id``,
    ``bad_timestamp``, ``bad_amount``, ``negative_amount``, ``bad_cost`` and ``after_as_of``
    (``cutoff``: the first instant after the as-of day). ``duplicate`` is not decided here:
    it needs the other rows of the file.

    ``cols`` comes from :func:`transaction_columns`; ``csv`` says the cells are text as read
    from a CSV (an empty cell of an extra column is then missing).

    Two choices are made per column over the whole file: whether decimal commas are read,
    and whether a float id or date column is written as integers. ``facts=None`` makes them
    from ``frame`` itself (right when ``frame`` is the whole file). A part of a file passes
    the facts of the whole file, the union of the ``facts`` returned for every part.
    """
    reasons = _Reasons(frame.index)
    seen: set[str] = set()

    def fractional(column: str) -> bool:
        return facts is not None and f"fraction:{column}" in facts

    id_column, time_column, amount_column = (
        cols[n] for n in ("customer_id", "timestamp", "amount")
    )
    seen |= _fraction_facts(frame[id_column], id_column)
    customer_id = _as_text(frame[id_column], fractional=fractional(id_column))
    reasons.flag("missing_customer_id", customer_id.isna())
    seen |= _fraction_facts(frame[time_column], time_column)
    timestamp, _ = _parse_datetimes(frame[time_column], fractional=fractional(time_column))
    reasons.flag("bad_timestamp", timestamp.isna())
    amount, _, found = _parse_numbers(frame[amount_column], amount_column, facts)
    seen |= found
    reasons.flag("bad_amount", amount.isna())
    reasons.flag("negative_amount", amount < 0)

    parsed = pd.DataFrame(
        {"customer_id": customer_id, "timestamp": timestamp, "amount": amount},
        index=frame.index,
    )
    used = {id_column, time_column, amount_column}
    if "cost" in cols:
        cost, given, found = _parse_numbers(frame[cols["cost"]], cols["cost"], facts)
        reasons.flag("bad_cost", given & cost.isna())
        parsed["cost"] = cost
        used.add(cols["cost"])
        seen |= found
    elif "margin" in cols:
        margin, given, found = _parse_numbers(frame[cols["margin"]], cols["margin"], facts)
        reasons.flag("bad_cost", given & (margin.isna() | (margin > 1)))
        parsed["cost"] = amount * (1 - margin)
        used.add(cols["margin"])
        seen |= found
    for name in ("channel", "category"):
        if name in cols:
            parsed[name] = _clean_text(frame[cols[name]].astype("str"))
            used.add(cols[name])
    for name in frame.columns:
        if name not in used:  # kept as read; in a CSV an empty cell means missing
            values = frame[name]
            parsed[name] = values.mask(values == "") if csv else values

    if cutoff is not None:
        reasons.flag("after_as_of", timestamp >= cutoff)
    return Rows(parsed, reasons.series(), frozenset(seen))


def customer_rows(
    frame: pd.DataFrame,
    cols: dict[str, str],
    *,
    csv: bool = True,
    facts: frozenset[str] | None = None,
) -> Rows:
    """The row rules of :func:`load_customers` on ``frame`` (a file as read, or any part of
    it): the parsed columns and each row's first problem among ``missing_customer_id``,
    ``bad_signup_date``, ``bad_churn_date`` and ``bad_churned``. ``duplicate_customer_id``
    (which comes right after ``missing_customer_id``) needs the other rows of the file and is
    not decided here.

    Attribute columns come back as stripped text with blanks missing; which CSV attribute
    columns are numbers is decided over the whole file (:func:`attribute_types` of the
    facts, applied by :func:`numeric_attributes`). ``facts``: as for
    :func:`transaction_rows`.
    """
    reasons = _Reasons(frame.index)
    seen: set[str] = set()

    def fractional(column: str) -> bool:
        return facts is not None and f"fraction:{column}" in facts

    for name in ("customer_id", "signup_date", "churn_date", "churned"):
        if name in cols:
            seen |= _fraction_facts(frame[cols[name]], cols[name])
    id_column = cols["customer_id"]
    customer_id = _as_text(frame[id_column], fractional=fractional(id_column))
    reasons.flag("missing_customer_id", customer_id.isna())

    parsed = pd.DataFrame({"customer_id": customer_id}, index=frame.index)
    for name, reason in (("signup_date", "bad_signup_date"), ("churn_date", "bad_churn_date")):
        if name in cols:
            source = cols[name]
            stamps, given = _parse_datetimes(frame[source], fractional=fractional(source))
            reasons.flag(reason, given & stamps.isna())
            parsed[name] = stamps
    if "churned" in cols:
        source = cols["churned"]
        flags, given = _parse_flags(frame[source], fractional=fractional(source))
        reasons.flag("bad_churned", given & flags.isna())
        parsed["churned"] = flags
    parsed = parsed[
        [c for c in ("customer_id", "signup_date", "churned", "churn_date") if c in parsed]
    ]
    known = set(cols.values())
    for name in frame.columns:
        if name not in known:
            values = _clean_text(frame[name])
            if csv:
                seen |= _attribute_facts(values, name)
            parsed[name] = values
    return Rows(parsed, reasons.series(), frozenset(seen))


def facts_change_rows(facts: frozenset[str] | set[str]) -> bool:
    """True when rows parsed without the whole file's ``facts`` (``facts=frozenset()``) may
    differ from rows parsed with them: a float id or date column with fractions, or a number
    column whose decimal commas are read."""
    for fact in facts:
        kind, _, column = fact.partition(":")
        if kind == "fraction" or (kind == "comma" and _reads_commas(facts, column)):
            return True
    return False


def transaction_reasons(cols: dict[str, str]) -> Where:
    """reason -> (canonical column, column in the file, description) for a transactions file."""
    where: Where = {
        "missing_customer_id": ("customer_id", cols["customer_id"], "missing_customer_id"),
        "bad_timestamp": ("timestamp", cols["timestamp"], "bad_timestamp"),
        "bad_amount": ("amount", cols["amount"], "bad_amount"),
        "negative_amount": ("amount", cols["amount"], "negative_amount"),
        "after_as_of": ("timestamp", cols["timestamp"], "after_as_of"),
        "duplicate": ("customer_id", None, "duplicate"),
    }
    if "cost" in cols:
        where["bad_cost"] = ("cost", cols["cost"], "bad_cost")
    elif "margin" in cols:
        where["bad_cost"] = ("margin", cols["margin"], "bad_margin")
    return where


def customer_reasons(cols: dict[str, str]) -> Where:
    """reason -> (canonical column, column in the file, description) for a customers file."""
    where: Where = {
        "missing_customer_id": ("customer_id", cols["customer_id"], "missing_customer_id"),
        "duplicate_customer_id": ("customer_id", cols["customer_id"], "duplicate_customer_id"),
    }
    for name, reason in (
        ("signup_date", "bad_signup_date"),
        ("churn_date", "bad_churn_date"),
        ("churned", "bad_churned"),
    ):
        if name in cols:
            where[reason] = (name, cols[name], reason)
    return where


def ordered_counts(counts: dict[str, int], order: tuple[str, ...] | None = None) -> dict[str, int]:
    """Counts per reason in the documented order of the reasons (``order``: a file kind's
    own order, e.g. :data:`CAMPAIGN_REASONS`; default: transactions, then customers)."""
    reasons = order if order is not None else TRANSACTION_REASONS + CUSTOMER_REASONS
    return {r: counts[r] for r in dict.fromkeys(reasons) if counts.get(r)}


def fatal_counts(counts: dict[str, int], order: tuple[str, ...] | None = None) -> dict[str, int]:
    """The reasons that stop a load with ``bad_rows="error"``, in order."""
    return {r: n for r, n in ordered_counts(counts, order).items() if r not in _ALWAYS_QUARANTINED}


def row_error(
    path: str,
    fatal: dict[str, int],
    where: Where,
    *,
    values: pd.Series | list[object] | None,
    hint_values: pd.Series | None,
    any_usable: bool,
    positions: str | None = None,
    rows: list[int] | None = None,
) -> DataError:
    """The one-line error for the first of the ``fatal`` reasons (the others are mentioned):
    file, column, how many rows, ``positions`` when known (``"lines 2, 3"``), the first few
    distinct ``values`` of those rows, how to fix them (``hint_values``: their values, for
    the decimal-comma hint), and whether ``--bad-rows quarantine`` would help."""
    reason = next(iter(fatal))
    count = fatal[reason]
    column, source, describe = where[reason]
    singular, plural = _DESCRIPTIONS[describe]
    message = (
        f"{path}, column '{source or column}': {count} "
        f"{'row ' + singular if count == 1 else 'rows ' + plural}"
    )
    if positions:
        message += f" ({positions})"
    if reason != "missing_customer_id" and values is not None:
        message += ": " + ", ".join(_first_unique(values))
    others = [f"{r} ({n} row{'s' if n > 1 else ''})" for r, n in fatal.items() if r != reason]
    if others:
        message += "; also " + ", ".join(others)
    hint = _hint(reason, hint_values)
    if hint:
        message += f". {hint[0].upper()}{hint[1:]}"
    if any_usable:
        message += ". Fix them or rerun with --bad-rows quarantine."
    else:  # quarantining would leave nothing: the file itself is not what is expected
        message += (
            f". No row of the file is usable, so --bad-rows quarantine would not help: "
            f"check that column '{source or column}' {_HOLDS.get(reason, 'is the right one')}"
            " and that the file is the one meant"
        )
    return DataError(message, path=path, column=column, rows=rows, n_rows=count)


def no_usable_rows_error(
    path: str,
    n_read: int,
    reasons: dict[str, int],
    quarantine_path: str | None,
    where: Where,
    hint_values: pd.Series | None,
) -> DataError:
    """The error when every row was quarantined; ``hint_values``: values of the column of
    the first reason (for the decimal-comma hint)."""
    detail = ", ".join(f"{reason}: {n}" for reason, n in reasons.items())
    first = next(iter(reasons))
    column, source, _ = where[first]
    hint = _hint(first, hint_values if source else None)
    holds = _HOLDS.get(first)
    advice = f"; check that column '{source or column}' {holds}" if holds else ""
    return DataError(
        f"{path}: no usable rows: all {n_read} rows were quarantined ({detail}); "
        f"see {quarantine_path}" + advice + (f" ({hint})" if hint else ""),
        path=path,
    )


class _Problems:
    """Each row's reason (``""`` while it is fine) in a file read whole."""

    def __init__(
        self, raw: _Raw, reason: pd.Series, where: Where, order: tuple[str, ...] | None = None
    ):
        self.raw = raw
        self.reason = reason.to_numpy(dtype=object, copy=True)
        self.where = where
        self.order = order  # the order of the reasons (default: transactions, customers)

    @property
    def ok(self) -> np.ndarray:
        return self.reason == ""

    def flag(self, reason: str, mask: np.ndarray) -> None:
        self.reason[np.asarray(mask, dtype=bool) & self.ok] = reason

    def counts(self) -> dict[str, int]:
        reasons, counts = np.unique(self.reason[~self.ok].astype(str), return_counts=True)
        return ordered_counts(dict(zip(reasons.tolist(), counts.tolist(), strict=True)), self.order)

    def raise_if_fatal(self, shown_values: dict[str, pd.Series]) -> None:
        """With bad_rows='error': raise for the first fatal reason, mentioning the others."""
        fatal = fatal_counts(self.counts(), self.order)
        if not fatal:
            return
        reason = next(iter(fatal))
        _, source, _ = self.where[reason]
        raw = self.raw
        rows = np.flatnonzero(self.reason == reason)
        count = len(rows)
        listed = [int(n) for n in raw.numbers[rows[:_MAX_LISTED]]]
        numbers = ", ".join(str(n) for n in listed) + (", ..." if count > _MAX_LISTED else "")
        values = shown_values.get(reason, raw.frame[source] if source else None)
        raise row_error(
            raw.path,
            fatal,
            self.where,
            positions=f"{raw.unit + ('s' if count > 1 else '')} {numbers}",
            rows=listed,
            values=None if values is None else values.iloc[rows[:1000]],
            hint_values=raw.frame[source].iloc[rows] if source else None,
            any_usable=bool(self.ok.any()),
        )

    def quarantine(self, quarantine_dir: str | Path | None) -> str | None:
        """Write the problem rows (original values, ``_line``, ``_reason``); return the path."""
        bad = ~self.ok
        if not bad.any():
            return None
        raw = self.raw
        directory = Path(quarantine_dir) if quarantine_dir is not None else None
        if directory is None:
            directory = Path(raw.path).parent / "quarantine"
        rows = raw.frame[bad].copy()
        rows["_line"] = raw.numbers[bad]
        rows["_reason"] = self.reason[bad].astype(str)
        stem, n = f"{Path(raw.path).stem}_quarantine", 1
        target = directory / f"{stem}.csv"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            while True:  # never replace an earlier quarantine file: the next free name
                try:
                    with open(target, "x", encoding="utf-8", newline="") as out:
                        rows.to_csv(out, index=False)
                    break
                except FileExistsError:
                    n += 1
                    target = directory / f"{stem}_{n}.csv"
        except OSError as exc:
            raise DataError(
                f"{raw.path}: cannot write quarantine file {target}: {exc.strerror or exc}",
                path=raw.path,
            ) from exc
        return str(target)


# What the column named in an error should hold (when no row of the file is usable).
_HOLDS = {
    "missing_customer_id": "holds the customer ids",
    "bad_timestamp": "holds the purchase dates in an accepted format",
    "bad_amount": "holds the purchase amounts, as plain numbers",
    "negative_amount": "holds the purchase amounts (a refund file?)",
    "bad_cost": "holds costs as plain numbers",
    "bad_signup_date": "holds the sign-up dates in an accepted format",
    "bad_churn_date": "holds the churn dates in an accepted format",
    "bad_churned": "holds churned flags (0/1, true/false or yes/no)",
    "missing_campaign_id": "holds the campaign ids",
    "bad_sent_at": "holds the send dates in an accepted format",
    "missing_treatment": "holds the offer ids (or 'control')",
    "negative_cost": "holds the contact costs (>= 0)",
    "bad_planned_offer": "holds, for a held-out customer, the offer they were held out from",
}


def _hint(reason: str, values: pd.Series | None) -> str | None:
    """How to fix the values behind ``reason``: the accepted date formats, or why decimal
    commas were not read."""
    if reason in _DATE_REASONS:
        return DATE_FORMATS
    if reason in _NUMBER_REASONS and values is not None:
        text = values.astype("str").str.strip()
        if text.str.fullmatch(_COMMA_NUMBER + r"|[+-]?\d{1,3}(\.\d{3})+,\d+").any():
            return DECIMAL_COMMAS
    return None


def _first_unique(values: Iterable[object]) -> list[str]:
    """The first few distinct values, quoted for a message."""
    shown: list[str] = []
    for value in values:
        text = _show(value)
        if text not in shown:
            shown.append(text)
            if len(shown) == _MAX_LISTED:
                break
    return shown


def _show(value: object) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[call-overload]
        return "''"
    text = str(value)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _finish(
    problems: _Problems,
    parsed: pd.DataFrame,
    *,
    bad_rows: str,
    quarantine_dir: str | Path | None,
    sort_by: list[str],
    shown_values: dict[str, pd.Series] | None = None,
) -> tuple[pd.DataFrame, LoadReport]:
    raw = problems.raw
    if bad_rows == "error":
        problems.raise_if_fatal(shown_values or {})
    quarantine_path = problems.quarantine(quarantine_dir)
    ok = problems.ok
    report = LoadReport(
        path=raw.path,
        n_read=len(raw.frame),
        n_kept=int(ok.sum()),
        n_quarantined=int((~ok).sum()),
        quarantine_path=quarantine_path,
        reasons=problems.counts(),
    )
    if report.n_kept == 0:
        _, source, _ = problems.where[next(iter(report.reasons))]
        raise no_usable_rows_error(
            raw.path,
            report.n_read,
            report.reasons,
            quarantine_path,
            problems.where,
            raw.frame[source] if source else None,
        )
    kept = parsed[ok].sort_values(sort_by, kind="stable").reset_index(drop=True)
    return kept, report


# --------------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------------


def load_transactions(
    path: str | Path,
    *,
    as_of: str | date | datetime | pd.Timestamp | None = None,
    bad_rows: str = "error",
    quarantine_dir: str | Path | None = None,
    keep_duplicates: bool = False,
) -> tuple[pd.DataFrame, LoadReport]:
    """Load one-row-per-purchase transactions and validate them.

    ``keep_duplicates=True`` keeps rows identical to an earlier row instead of quarantining
    them (data without a transaction id, where two equal purchases on one day can be real,
    e.g. CDNOW); the report counts them in ``duplicates_kept``.

    Required columns ``customer_id``, ``timestamp``, ``amount``; optional ``cost`` (or
    ``margin``, turned into ``cost``; with both, ``cost`` wins and ``margin`` is kept as an
    ordinary column), ``channel``, ``category``; any other column is kept (as text for CSV,
    empty cells missing).

    Returns the frame -- ``customer_id`` (str), ``timestamp`` (naive datetime64[ns]),
    ``amount`` (float64), then ``cost`` (float64), ``channel`` and ``category`` (str) when
    given, then the other columns -- sorted by customer and time with a fresh RangeIndex, and
    a :class:`LoadReport`. See the module docstring for the row rules and ``bad_rows``.
    """
    _check_policy(bad_rows)
    cutoff = _end_of_day(as_of)
    raw = _read_raw(path)
    cols = transaction_columns(raw.path, list(raw.frame.columns))
    rows = transaction_rows(raw.frame, cols, cutoff=cutoff, csv=raw.unit == "line")
    problems = _Problems(raw, rows.reason, transaction_reasons(cols))
    ok = problems.ok
    duplicate = np.zeros(len(raw.frame), dtype=bool)
    duplicate[ok] = repeated_rows(rows.parsed[ok])  # the rule the service applies too
    if not keep_duplicates:
        problems.flag("duplicate", duplicate)

    kept, report = _finish(
        problems,
        rows.parsed,
        bad_rows=bad_rows,
        quarantine_dir=quarantine_dir,
        sort_by=["customer_id", "timestamp"],
    )
    if keep_duplicates:
        report.duplicates_kept = int((duplicate & problems.ok).sum())
    return kept, report


def load_customers(
    path: str | Path,
    *,
    bad_rows: str = "error",
    quarantine_dir: str | Path | None = None,
) -> tuple[pd.DataFrame, LoadReport]:
    """Load one-row-per-customer attributes and validate them.

    Required column ``customer_id`` (unique; later repeats are ``duplicate_customer_id``).
    Optional ``signup_date`` and ``churn_date`` (naive datetime64[ns], blank is NaT),
    ``churned`` (Int64 0/1 from 0/1, true/false or yes/no in any case; blank is <NA>).
    Every other column is an attribute: string cells are stripped and blank strings become
    missing; in a CSV, a column whose every value is a plain number becomes int64/float64
    (codes with leading zeros such as '02139' stay text); Parquet types are kept.

    Returns the frame (``customer_id`` first, then the known columns, then the attributes,
    sorted by ``customer_id``, fresh RangeIndex) and a :class:`LoadReport`.
    """
    _check_policy(bad_rows)
    raw = _read_raw(path)
    cols = customer_columns(raw.path, list(raw.frame.columns))
    rows = customer_rows(raw.frame, cols, csv=raw.unit == "line")
    customer_id = rows.parsed["customer_id"]
    repeated = customer_id.notna() & customer_id.duplicated(keep="first")
    problems = _Problems(
        raw, rows.reason.mask(repeated, "duplicate_customer_id"), customer_reasons(cols)
    )
    return _finish(
        problems,
        numeric_attributes(rows.parsed, attribute_types(rows.facts)),
        bad_rows=bad_rows,
        quarantine_dir=quarantine_dir,
        sort_by=["customer_id"],
        shown_values={"duplicate_customer_id": customer_id},
    )


def fingerprint(df: pd.DataFrame) -> str:
    """A stable sha256 hex digest of a frame's column names and values (not its index)."""
    digest = hashlib.sha256()
    for name in df.columns:
        digest.update(repr(str(name)).encode("utf-8") + b"\x00")
    digest.update(str(len(df)).encode("ascii") + b"\x00")
    hashes = pd.util.hash_pandas_object(df, index=False)
    digest.update(hashes.to_numpy(dtype="<u8").tobytes())
    return digest.hexdigest()
