"""Acquisition cohorts: customers grouped by the month of their first purchase, followed
month by month after it.

:func:`cohort_table` gives one row per (cohort, month offset): ``month_offset`` 0 is the
acquisition month itself (every customer of the cohort bought in it, so its retention is
1), 1 the calendar month after, and so on up to the month of the as-of date. For each:

- ``customers``: the cohort's size (customers whose first purchase fell in that month);
- ``active_customers``: those of them with at least one purchase in that calendar month;
- ``retention``: active_customers / customers (0–1);
- ``revenue``: the cohort's revenue in that month (currency), and
  ``revenue_per_customer``: revenue / customers (per acquired customer, active or not);
- ``complete``: whether the month had ended by the as-of date (the as-of date's own month
  runs only to it, unless it is the month's last day).

The first month of the data also holds every customer who had been one before the data
starts: read it as "customers by the data's first month", not as acquisitions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.exceptions import InvalidInputError
from models.features import end_of_day, require_columns

COHORT_COLUMNS = (
    "cohort",
    "month_offset",
    "customers",
    "active_customers",
    "retention",
    "revenue",
    "revenue_per_customer",
    "complete",
)


def _month_number(stamps: pd.Series) -> np.ndarray:
    """Months since year 0 (year × 12 + month − 1): consecutive months differ by 1."""
    return (stamps.dt.year.to_numpy() * 12 + stamps.dt.month.to_numpy() - 1).astype(np.int64)


def _month_of(day: pd.Timestamp) -> int:
    return day.year * 12 + day.month - 1


def _month_start(number: np.ndarray) -> pd.DatetimeIndex:
    return pd.to_datetime({"year": number // 12, "month": number % 12 + 1, "day": 1})  # type: ignore[return-value]


def cohort_table(
    transactions: pd.DataFrame, as_of: object, start: object | None = None
) -> pd.DataFrame:
    """The cohort table (columns :data:`COHORT_COLUMNS`, see the module docstring) of the
    customers acquired from the month of ``start`` (None: every month of the data) to the
    month of ``as_of``; purchases after the end of the ``as_of`` day are ignored. A
    customer's cohort is the month of their first purchase in ``transactions``."""
    require_columns(transactions, ("customer_id", "timestamp", "amount"))
    cutoff = end_of_day(as_of)
    stamps = pd.to_datetime(transactions["timestamp"])
    kept = (stamps <= cutoff).to_numpy()
    if not kept.any():
        raise InvalidInputError(f"no purchase on or before {cutoff.date()}", field="as_of")
    month = _month_number(stamps[kept])
    customer, _ = pd.factorize(transactions["customer_id"].astype(str)[kept])
    frame = pd.DataFrame(
        {
            "customer": customer,
            "month": month,
            "amount": transactions["amount"].to_numpy(dtype=float)[kept],
        }
    )
    frame["cohort"] = frame.groupby("customer")["month"].transform("min")
    last = _month_of(cutoff)
    if start is not None:
        first = _month_of(pd.Timestamp(start))  # type: ignore[arg-type]
        frame = frame[frame["cohort"] >= first]
        if frame.empty:
            raise InvalidInputError(
                f"no customer was acquired between {pd.Timestamp(start).date()} and "  # type: ignore[arg-type]
                f"{cutoff.date()}",
                field="start",
            )
    frame["month_offset"] = frame["month"] - frame["cohort"]
    sizes = frame.drop_duplicates("customer").groupby("cohort").size()
    active = frame.drop_duplicates(["customer", "month_offset"])
    cells = pd.DataFrame(
        {
            "active_customers": active.groupby(["cohort", "month_offset"]).size(),
            "revenue": frame.groupby(["cohort", "month_offset"])["amount"].sum(),
        }
    )
    grid = pd.MultiIndex.from_tuples(
        [(c, k) for c in sizes.index for k in range(last - c + 1)],
        names=["cohort", "month_offset"],
    )
    table = cells.reindex(grid, fill_value=0).reset_index()
    table["customers"] = sizes.reindex(table["cohort"]).to_numpy()
    table["retention"] = table["active_customers"] / table["customers"]
    table["revenue_per_customer"] = table["revenue"] / table["customers"]
    month_end = cutoff.normalize() + pd.offsets.MonthEnd(0)
    table["complete"] = (table["cohort"] + table["month_offset"] < last) | (
        cutoff.normalize() == month_end
    )
    table["cohort"] = _month_start(table["cohort"].to_numpy())
    table = table.astype(
        {"month_offset": "int64", "customers": "int64", "active_customers": "int64"}
    )
    return table[list(COHORT_COLUMNS)]


def cohort_matrix(table: pd.DataFrame, value: str = "retention") -> pd.DataFrame:
    """One of :func:`cohort_table`'s columns as a matrix: a row per cohort (its month, as
    YYYY-MM), a column per month offset; NaN where the month has not come yet."""
    if value not in table.columns:
        raise InvalidInputError(f"the cohort table has no column '{value}'", field=value)
    matrix = table.pivot(index="cohort", columns="month_offset", values=value)
    matrix.index = pd.DatetimeIndex(matrix.index).strftime("%Y-%m")
    return matrix


def pooled_retention(table: pd.DataFrame, month_offset: int) -> float:
    """Retention ``month_offset`` months after acquisition over every cohort whose that month
    is complete: Σ active / Σ customers (NaN when no cohort has reached it)."""
    rows = table[(table["month_offset"] == month_offset) & table["complete"]]
    customers = float(rows["customers"].sum())
    return float(rows["active_customers"].sum()) / customers if customers else float("nan")


__all__ = ["COHORT_COLUMNS", "cohort_matrix", "cohort_table", "pooled_retention"]
