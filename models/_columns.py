"""Column helpers shared by the models."""

from __future__ import annotations

import numpy as np
import pandas as pd


def as_float(column: pd.Series) -> np.ndarray:
    """A column as float numpy: numbers and booleans as they are (missing → NaN), anything
    else parsed as numbers (unparsable → NaN). Numeric columns skip ``pd.to_numeric``, which
    costs more than the cast when a served request holds a single row."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
