"""Column helpers shared by the models."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def as_float(column: pd.Series) -> np.ndarray:
    """A column as float numpy: numbers and booleans as they are (missing → NaN), anything
    else parsed as numbers (unparsable → NaN; an integer beyond a float's range → ±inf).
    Numeric columns skip ``pd.to_numeric``, which costs more than the cast when a served
    request holds a single row."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=float, na_value=np.nan)
    try:
        return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    except OverflowError:  # a Python integer past 1.8e308 (pandas cannot coerce it)
        return np.array([_to_float(v) for v in column], dtype=float)


def _to_float(value: Any) -> float:
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    number = pd.to_numeric(pd.Series([value], dtype=object), errors="coerce").iloc[0]
    return float(number) if pd.notna(number) else math.nan
