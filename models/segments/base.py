"""Helpers shared by the segmentation schemes: column checks and scoring against training.

Every scheme reads the per-customer table of :func:`models.features.summarize` (one row per
customer, time columns in days) and compares new customers with the training population
through a sorted reference sample of each column (evenly thinned when large, so a fitted
model stays small whatever the number of customers).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from models._columns import as_float
from models.exceptions import InvalidInputError, NotFittedError

MAX_REFERENCE = 20_000


def require_columns(table: pd.DataFrame, columns: Iterable[str]) -> None:
    """Raise :class:`InvalidInputError` naming the first of ``columns`` missing in ``table``."""
    for column in columns:
        if column not in table.columns:
            raise InvalidInputError(f"missing the column '{column}'", field=column)


def values(table: pd.DataFrame, column: str) -> np.ndarray:
    """A column as float numpy (missing → NaN); an absent column is all NaN."""
    if column not in table.columns:
        return np.full(len(table), np.nan)
    return as_float(table[column])


def reference_sample(column: np.ndarray) -> np.ndarray:
    """Sorted finite values of a training column, evenly thinned to at most 20,000."""
    ordered = np.sort(column[np.isfinite(column)])
    if len(ordered) > MAX_REFERENCE:
        ordered = ordered[np.linspace(0, len(ordered) - 1, MAX_REFERENCE).round().astype(int)]
    return ordered


def mid_rank(reference: np.ndarray, column: np.ndarray) -> np.ndarray:
    """Share of ``reference`` below each value, ties counted half (in [0, 1]; NaN stays NaN).

    Tied values get the same rank, and a value equal to every reference value ranks 0.5.
    """
    if len(reference) == 0:
        return np.full(len(column), np.nan)
    below = np.searchsorted(reference, column, side="left")
    at_or_below = np.searchsorted(reference, column, side="right")
    ranks = (below + at_or_below) / (2.0 * len(reference))
    return np.where(np.isfinite(column), ranks, np.nan)


def check_fitted(model: Any, attribute: str) -> None:
    """Raise :class:`NotFittedError` unless ``model`` has the fitted ``attribute``."""
    if not hasattr(model, attribute):
        raise NotFittedError(f"{type(model).__name__} is not fitted; call fit first")


def check_not_empty(table: pd.DataFrame, model: Any) -> None:
    if len(table) == 0:
        raise InvalidInputError(f"cannot fit {type(model).__name__} on zero customers")


def sizes(labels: Iterable[Any], order: Iterable[Any]) -> dict[Any, int]:
    """``{label: count}`` for every label of ``order`` (zero included), in that order."""
    column = labels if isinstance(labels, pd.Series | np.ndarray) else list(labels)
    counts = pd.Series(column).value_counts()
    return {label: int(counts.get(label, 0)) for label in order}
