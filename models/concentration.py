"""How concentrated customer value is: the share of profit the top customers hold, the
Lorenz curve and the Gini coefficient (customer value is skewed: a minority of customers
brings most of the profit, and knowing how few is the first step of value management).

- :func:`customer_profit`: each customer's revenue and profit over a window of purchases.
- :func:`lorenz_curve`: the cumulative share of the total held by the bottom share of
  customers, from the smallest value up.
- :func:`top_share`: the share of the total held by the top ``share`` of customers
  (``top_share(values, 0.2)``: the "top 20 %" figure).
- :func:`gini`: 0 when every customer holds the same, towards 1 when one holds everything.
- :func:`concentration`: the top shares and the Gini in one table.

Shares of customers that fall between two customers are interpolated on the Lorenz curve
(the top 20 % of 7 customers holds the top customer's value and 0.4 of the second's).
The Gini is ``1 − Σ (x_k − x_{k−1}) (L_k + L_{k−1})`` over the curve's points, which equals
``2 Σ i·v_(i) / (n Σ v) − (n + 1) / n`` for values sorted ascending. Negative values (a
customer bought at a loss) are kept: the curve then dips below 0 and the Gini can exceed 1.
The total must be positive, or there is no share of it to speak of.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from models.exceptions import InvalidInputError
from models.features import end_of_day, require_columns

TOP_SHARES: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2, 0.5)


def _values(values: Any) -> np.ndarray:
    """The values as a float array, checked: finite, at least one, a positive total."""
    array = np.asarray(values, dtype=float).ravel()
    if array.size == 0:
        raise InvalidInputError("no customers to measure the concentration of", field="values")
    bad = ~np.isfinite(array)
    if bad.any():
        raise InvalidInputError(
            f"{int(bad.sum())} of {array.size} values are not finite numbers", field="values"
        )
    total = float(array.sum())
    if not total > 0:
        raise InvalidInputError(
            f"the total is {total:,.2f}: shares of a total that is not positive are undefined",
            field="values",
        )
    return array


def _curve(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(customer share, value share) at every customer, from (0, 0) to (1, 1)."""
    ordered = np.sort(array)
    n = ordered.size
    customers = np.arange(n + 1) / n
    value = np.concatenate([[0.0], np.cumsum(ordered)]) / ordered.sum()
    value[-1] = 1.0  # the rounding of the cumulative sum
    return customers, value


def lorenz_curve(values: Any, points: int | None = None) -> pd.DataFrame:
    """The Lorenz curve: ``customer_share`` (the bottom share of customers, smallest values
    first) and ``value_share`` (the share of the total they hold), both 0–1.

    ``points``: that many evenly spaced customer shares, interpolated (101: every percent);
    None: one point per customer plus (0, 0).
    """
    customers, value = _curve(_values(values))
    if points is not None:
        if points < 2:
            raise InvalidInputError("points must be at least 2", field="points")
        grid = np.linspace(0.0, 1.0, points)
        customers, value = grid, np.interp(grid, customers, value)
    return pd.DataFrame({"customer_share": customers, "value_share": value})


def top_share(values: Any, share: float = 0.2) -> float:
    """The share of the total held by the top ``share`` (0–1) of customers."""
    if not 0 < share <= 1:
        raise InvalidInputError(f"share must be in (0, 1], got {share}", field="share")
    customers, value = _curve(_values(values))
    return float(1.0 - np.interp(1.0 - share, customers, value))


def gini(values: Any) -> float:
    """The Gini coefficient of the values (0: all equal)."""
    customers, value = _curve(_values(values))
    return float(1.0 - np.sum(np.diff(customers) * (value[1:] + value[:-1])))


def concentration(values: Any, shares: Sequence[float] = TOP_SHARES) -> pd.DataFrame:
    """One row per top share of customers: ``top_customer_share`` (0–1), ``customers`` (how
    many that is, possibly fractional), ``value_share`` (the share of the total they hold)
    and ``value`` (the amount they hold), then a row ``gini`` holding the Gini coefficient in
    ``value_share``."""
    array = _values(values)
    total = float(array.sum())
    rows: list[dict[str, Any]] = []
    for share in shares:
        held = top_share(array, share)
        rows.append(
            {
                "measure": f"top_{round(100 * share, 4):g}pct",
                "top_customer_share": share,
                "customers": share * array.size,
                "value_share": held,
                "value": held * total,
            }
        )
    rows.append(
        {
            "measure": "gini",
            "top_customer_share": np.nan,
            "customers": float(array.size),
            "value_share": gini(array),
            "value": total,
        }
    )
    return pd.DataFrame(rows)


def customer_profit(
    transactions: pd.DataFrame,
    start: object | None,
    end: object,
    margin: float | None = None,
) -> tuple[pd.DataFrame, str]:
    """Each customer's ``revenue`` and ``profit`` from their purchases from the start of day
    ``start`` (None: the first purchase) to the end of day ``end`` (currency; customers with
    no purchase then are left out), and a phrase saying how profit was measured.

    Profit follows :func:`models.features.summarize`: a customer's margin is measured on
    their purchases with a known ``cost`` and applied to all their revenue. A customer with
    no known cost gets ``margin``, or else the margin of every costed purchase in the
    window; without any cost at all, profit is revenue × ``margin`` (1 when not given:
    revenue).
    """
    require_columns(transactions, ("customer_id", "timestamp", "amount"))
    stamps = pd.to_datetime(transactions["timestamp"])
    window = stamps <= end_of_day(end)
    if start is not None:
        window &= stamps >= pd.Timestamp(start).normalize()  # type: ignore[arg-type]
    tx = transactions.loc[window]
    codes, ids = pd.factorize(tx["customer_id"].astype(str))
    amount = tx["amount"].to_numpy(dtype=float)
    parts = {"revenue": amount}
    if "cost" in tx.columns:
        cost = tx["cost"].to_numpy(dtype=float)
        costed = np.isfinite(cost)
        parts["costed_revenue"] = np.where(costed, amount, 0.0)
        parts["cost"] = np.where(costed, cost, 0.0)
    sums = pd.DataFrame(parts).groupby(codes).sum()
    sums.index = pd.Index(ids[sums.index], name="customer_id")
    sums = sums.sort_index()
    revenue = sums["revenue"]
    if "cost" not in sums.columns:
        fallback = 1.0 if margin is None else margin
        basis = "revenue" if margin is None else f"revenue × margin {margin:g}"
        return pd.DataFrame({"revenue": revenue, "profit": revenue * fallback}), basis
    known = sums["costed_revenue"] > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        own = (sums["costed_revenue"] - sums["cost"]) / sums["costed_revenue"]
    if margin is not None:
        fallback, said = margin, f"margin {margin:g}"
    else:
        costed_total = float(sums["costed_revenue"].sum())
        fallback = (
            (costed_total - float(sums["cost"].sum())) / costed_total if costed_total else 1.0
        )
        said = f"the window's margin {fallback:.4f}"
    rate = own.where(known, fallback)
    basis = "cost" if known.all() else f"cost; {int((~known).sum()):,} customers without: {said}"
    return pd.DataFrame({"revenue": revenue, "profit": rate * revenue}), basis


__all__ = [
    "TOP_SHARES",
    "concentration",
    "customer_profit",
    "gini",
    "lorenz_curve",
    "top_share",
]
