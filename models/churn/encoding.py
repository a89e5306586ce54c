"""Raw CRM tables → numeric matrices: the column typing shared by the churn models.

Real exports mix numbers stored as text (with blanks, ``"N/A"``, thousands separators or a
currency sign), yes/no flags, free categories and identifiers. :class:`TableEncoder` learns,
at fit time, what each column is:

- ``numeric``: booleans, numbers, or text in which every non-blank cell parses as a number
  (blanks and the usual missing-value tokens become NaN; dates become days since 1970);
- ``categorical``: any other text, or a pandas categorical; categories seen fewer than
  ``min_category_count`` times at fit time, and categories unseen at fit time, become missing;
- ``ignored``: columns that carry nothing or only identity: all missing, text whose values
  are nearly all distinct (an ID such as ``customerID``, a phone number, an e-mail), integers
  all distinct under an ID-like name, or categoricals where no category is frequent enough.

``transform`` gives a float matrix in which a categorical column holds its category codes
``0 .. k-1`` (NaN when missing), the input the booster's native categorical support needs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from models.exceptions import InvalidInputError

MAX_CATEGORIES = 250  # HistGradientBoosting allows at most 255 categories per feature
ID_UNIQUE_SHARE = 0.9  # text columns with more distinct values than this share are IDs
NA_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "-", "?", "#n/a", "missing"})
_NUMBER_NOISE = re.compile(r"[,\s$€£¥%]")
_ID_TOKENS = frozenset({"id", "uuid", "guid", "key", "phone", "email", "number", "no", "row"})


def _id_like_name(name: str) -> bool:
    """``customerID``, ``customer_id``, ``RowNumber``, ``phone no`` …: a name an ID would have."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return any(token in _ID_TOKENS for token in re.split(r"[^a-z0-9]+", spaced.lower()))


def as_frame(X: Any) -> pd.DataFrame:
    """``X`` as a DataFrame with string column names (arrays get ``x0, x1, ...``)."""
    if isinstance(X, pd.DataFrame):
        frame = X
    else:
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise InvalidInputError(f"X must be 2-dimensional, got shape {arr.shape}", field="X")
        frame = pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])
    if any(not isinstance(c, str) for c in frame.columns):
        frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    return frame


def frame_columns(frame: pd.DataFrame) -> dict[str, Any]:
    """A DataFrame as ``{column: values}`` for :meth:`TableEncoder.transform_columns`: numeric
    and boolean columns as numpy arrays, any other as a list of values with None for missing."""
    out: dict[str, Any] = {}
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            out[str(name)] = column.to_numpy()
        else:
            out[str(name)] = column.astype(object).where(column.notna(), None).tolist()
    return out


def _distinct(column: pd.Series) -> tuple[np.ndarray, pd.Series] | None:
    """``(codes, distinct values)`` of a column with repeated values (missing: code -1), so
    that text is cleaned and parsed once per distinct value; None when most values differ."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    if 2 * len(uniques) > len(column):
        return None
    return codes, pd.Series(uniques, dtype=column.dtype)


def _spread(values: pd.Series, codes: np.ndarray, like: pd.Series) -> pd.Series:
    """Per-distinct-value results back on the rows of ``like`` (code -1: missing)."""
    return pd.Series(values.array.take(codes, allow_fill=True), index=like.index, name=like.name)


def _clean_text(column: pd.Series) -> pd.Series:
    """Stripped text with blanks and missing-value tokens as NA."""
    distinct = _distinct(column)
    if distinct is not None:
        codes, uniques = distinct
        return _spread(_clean_text_rows(uniques), codes, column)
    return _clean_text_rows(column)


def _clean_text_rows(column: pd.Series) -> pd.Series:
    text = column.astype("string").str.strip()
    return text.mask(text.str.lower().isin(NA_TOKENS))


def coerce_numeric(column: pd.Series) -> pd.Series | None:
    """The column as floats when it is numeric or numeric text, else None.

    Blanks and tokens such as ``"N/A"`` or ``"-"`` become NaN; ``"1,234.50"``, ``"$12"`` and
    ``"15%"`` parse (as 1234.5, 12 and 15). Text with any other non-number is not numeric.
    """
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return pd.Series(
            column.to_numpy(dtype=float, na_value=np.nan), index=column.index, name=column.name
        )
    if pd.api.types.is_datetime64_any_dtype(column):
        days = (column - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
        return days.astype(float)
    if isinstance(column.dtype, pd.CategoricalDtype):
        return None
    distinct = _distinct(column)
    if distinct is not None:
        codes, uniques = distinct
        parsed = _parse_numbers(uniques)
        return None if parsed is None else _spread(parsed, codes, column)
    return _parse_numbers(column)


def _parse_numbers(column: pd.Series) -> pd.Series | None:
    """Text as floats (see :func:`coerce_numeric`), or None when some cell is not a number."""
    text = _clean_text_rows(column)
    present = text.notna()
    if not present.any():
        return pd.Series(np.nan, index=column.index, name=column.name)
    parsed = pd.to_numeric(text, errors="coerce")
    if parsed[present].isna().any():
        parsed = pd.to_numeric(text.str.replace(_NUMBER_NOISE, "", regex=True), errors="coerce")
        if parsed[present].isna().any():
            return None
    return parsed.astype(float)


class TableEncoder:
    """Learns column kinds and category codes on a training frame; encodes any frame alike."""

    def __init__(self, min_category_count: int = 5, id_unique_share: float = ID_UNIQUE_SHARE):
        self.min_category_count = min_category_count
        self.id_unique_share = id_unique_share

    def fit(self, X: pd.DataFrame) -> TableEncoder:
        X = as_frame(X)
        self.columns_ = [str(c) for c in X.columns]
        self.kinds_: list[str] = []
        self.categories_: dict[str, dict[str, int]] = {}
        self.fill_: dict[str, float] = {}  # typical value: median / most frequent code
        n = len(X)
        for name in self.columns_:
            column = X[name]
            numeric = coerce_numeric(column)
            if numeric is not None:
                present = numeric.dropna()
                id_like = (
                    _id_like_name(name)
                    and len(present) >= 50
                    and present.nunique() >= self.id_unique_share * len(present)
                    and bool(np.all(np.mod(present.to_numpy(), 1) == 0))
                )
                if present.empty or id_like:
                    self.kinds_.append("ignored")
                else:
                    self.kinds_.append("numeric")
                    self.fill_[name] = float(present.median())
                continue
            text = _clean_text(column)
            counts = text.dropna().value_counts()
            n_present = int(counts.sum())
            min_count = min(self.min_category_count, max(1, n // 100))
            kept = counts[counts >= min_count].index[:MAX_CATEGORIES]
            if (
                n_present == 0
                or len(kept) == 0
                or (len(counts) >= self.id_unique_share * n_present and n_present >= 20)
            ):
                self.kinds_.append("ignored")
                continue
            self.kinds_.append("categorical")
            self.categories_[name] = {str(v): code for code, v in enumerate(sorted(kept))}
            top = counts.index[0]
            self.fill_[name] = float(self.categories_[name].get(str(top), 0))
        return self

    @property
    def categorical_mask(self) -> np.ndarray:
        return np.array([k == "categorical" for k in self.kinds_], dtype=bool)

    def transform(self, X: Any) -> np.ndarray:
        """The float matrix of the fitted columns (ignored columns are constant 0)."""
        X = as_frame(X)
        missing = [c for c in self.columns_ if c not in X.columns]
        if missing:
            raise InvalidInputError(f"missing the feature column '{missing[0]}'", field=missing[0])
        out = np.full((len(X), len(self.columns_)), np.nan, dtype=float)
        for j, (name, kind) in enumerate(zip(self.columns_, self.kinds_, strict=True)):
            out[:, j] = self.encode_column(name, kind, X[name])
        return out

    def transform_columns(self, columns: Mapping[str, Any], n: int) -> np.ndarray:
        """As :meth:`transform`, from ``{name: array or list}`` of ``n`` rows (no DataFrame).

        Numeric columns given as numeric numpy or pandas arrays and categorical columns given
        as lists of strings (or None) are encoded with array casts and dict lookups; anything
        else goes through the same pandas path as :meth:`transform`. The result is identical.
        """
        out = np.empty((n, len(self.columns_)), dtype=float)
        for j, (name, kind) in enumerate(zip(self.columns_, self.kinds_, strict=True)):
            if kind == "ignored":
                out[:, j] = 0.0
                continue
            if name not in columns:
                raise InvalidInputError(f"missing the feature column '{name}'", field=name)
            out[:, j] = self.encode_column(name, kind, columns[name])
        return out

    def encode_column(self, name: str, kind: str, values: Any) -> np.ndarray:
        """One fitted column's values (a Series, array or list) as floats."""
        if kind == "ignored":
            return np.zeros(len(values))
        if kind == "numeric":
            if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
                return values.astype(float)
            if isinstance(values, pd.api.extensions.ExtensionArray) and (
                pd.api.types.is_numeric_dtype(values.dtype)
                or pd.api.types.is_bool_dtype(values.dtype)
            ):
                return values.to_numpy(dtype=float, na_value=np.nan)
            column = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
            numeric = coerce_numeric(column)
            if numeric is None:  # stray text at predict time: unparseable cells → NaN
                text = _clean_text(column).str.replace(_NUMBER_NOISE, "", regex=True)
                numeric = pd.to_numeric(text, errors="coerce")
            return numeric.to_numpy(dtype=float, na_value=np.nan)
        categories = self.categories_[name]
        if isinstance(values, np.ndarray) and values.dtype.kind == "f" and np.isnan(values).all():
            return np.full(len(values), np.nan)  # an attribute not given: missing everywhere
        if isinstance(values, list) and all(type(v) is str or v is None for v in values):
            # NA tokens are never categories (they were masked at fit): a lookup suffices
            nan = np.nan
            return np.array(
                [nan if v is None else categories.get(v.strip(), nan) for v in values],
                dtype=float,
            )
        column = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
        codes = _clean_text(column).map(categories).astype("Float64")
        return codes.to_numpy(dtype=float, na_value=np.nan)

    def decode(self, name: str, value: float) -> str:
        """A readable value of column ``name`` from its encoded number."""
        if not np.isfinite(value):
            return "missing"
        if name in self.categories_:
            inverse = {code: label for label, code in self.categories_[name].items()}
            return inverse.get(int(value), "missing")
        return f"{value:,.4g}"
