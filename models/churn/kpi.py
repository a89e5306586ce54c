"""Churn KPIs and value at risk: pure functions, no model needed.

- :func:`churn_rate`: the rate ``[start − (end − new)] / end`` beside the conventional
  ``lost / start``, each named (docs/METHODS.md: 3,000 / 500 new / 3,300 → 6.06 % and 6.67 %).
- :func:`churn_loss`: revenue of the lost customers × profit margin (1,500,000; 810,000).
- :func:`churn_by_period`: both rates by segment and period from data, new and reactivated
  customers apart, with the change on the previous period (month-on-month change rate, in
  rate units and in percent) and the loss.
- :func:`value_at_risk`: P(churn) × CLV, high-value high-risk customers first.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.churn.risk import risk_band
from models.exceptions import InvalidInputError
from models.features import end_of_day

TOTAL = "all"  # the segment label of the rows over every customer


@dataclass(frozen=True)
class ChurnRate:
    """Customers at the start and end of a period, new ones, lost ones and both rates."""

    customers_start: float
    new_customers: float
    customers_end: float
    lost_customers: float
    churn_rate: float  # lost / customers at the end
    conventional_churn_rate: float  # lost / customers at the start

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def churn_rate(start: float, end: float, new: float) -> ChurnRate:
    """The churn rate ``[start − (end − new)] / end`` and the conventional rate.

    Lost customers are ``start − (end − new)``; ``churn_rate`` divides them by the customers
    at the end, and ``conventional_churn_rate`` by those at the start.
    A rate whose denominator is 0 is NaN.
    """
    for name, value in (("start", start), ("end", end), ("new", new)):
        if not math.isfinite(value) or value < 0:
            raise InvalidInputError(f"{name} must be a non-negative number", field=name)
    lost = start - (end - new)
    if lost < 0:
        raise InvalidInputError(
            "end − new exceeds start: more customers stayed than there were", field="end"
        )
    return ChurnRate(
        customers_start=start,
        new_customers=new,
        customers_end=end,
        lost_customers=lost,
        churn_rate=lost / end if end > 0 else float("nan"),
        conventional_churn_rate=lost / start if start > 0 else float("nan"),
    )


def churn_loss(revenue: Any, margin: float, *, lost: float | None = None) -> float:
    """The churn loss: revenue of the lost customers × profit margin (currency).

    ``revenue`` is either each lost customer's revenue (a sequence or array) or their total
    (a number); with ``lost`` it is the revenue *per* lost customer (e.g. an ARPU; this
    year's or last year's is the caller's choice) and is multiplied by ``lost``. Rounded to
    cents.
    """
    if not math.isfinite(margin):
        raise InvalidInputError("margin must be a number", field="margin")
    values = np.atleast_1d(np.asarray(revenue, dtype=float))
    if not np.isfinite(values).all():
        raise InvalidInputError("revenue must be finite numbers", field="revenue")
    if lost is not None:
        if values.size != 1 or lost < 0:
            raise InvalidInputError("with lost, give one revenue per lost customer", field="lost")
        total = float(values[0]) * lost
    else:
        total = math.fsum(values.tolist())
    return round(total * margin, 2)


def _boundaries(start: object, end: object, freq: str) -> pd.DatetimeIndex:
    edges = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq=freq)  # type: ignore[arg-type]
    if len(edges) < 2:
        raise InvalidInputError(
            f"{start} to {end} holds fewer than two '{freq}' period boundaries", field="freq"
        )
    return edges


def active_from_transactions(
    transactions: pd.DataFrame, dates: pd.DatetimeIndex, active_days: int = 365
) -> pd.DataFrame:
    """Customers (rows) active at each date (columns): a purchase in the ``active_days``
    days up to the end of that date (non-contractual "still a customer")."""
    stamps = pd.to_datetime(transactions["timestamp"]).to_numpy()
    ids = transactions["customer_id"].astype(str).to_numpy()
    columns = {}
    for date in dates:
        end = end_of_day(date)
        window = (stamps > (end - pd.Timedelta(days=active_days)).to_datetime64()) & (
            stamps <= end.to_datetime64()
        )
        columns[date] = pd.Series(True, index=pd.unique(ids[window]), dtype=bool)
    frame = pd.DataFrame(columns).fillna(False).astype(bool)
    return frame.rename_axis("customer_id")


def active_from_contracts(customers: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """Customers (rows) holding a contract at the end of each date (columns): signed up by
    then (``signup_date``, when present) and no ``churn_date`` on or before it."""
    index = customers["customer_id"].astype(str)
    signup = (
        pd.to_datetime(customers["signup_date"])
        if "signup_date" in customers.columns
        else pd.Series(pd.NaT, index=customers.index, dtype="datetime64[ns]")
    )
    gone = pd.to_datetime(customers["churn_date"]) if "churn_date" in customers.columns else None
    columns = {}
    for date in dates:
        end = end_of_day(date)
        active = ~(signup > end)
        if gone is not None:
            active &= ~(gone <= end)
        columns[date] = active.to_numpy(dtype=bool)
    return pd.DataFrame(columns, index=index.rename("customer_id"))


def _lost_revenue(
    transactions: pd.DataFrame, lost: pd.Series, date: pd.Timestamp, active_days: int
) -> float:
    """Revenue in the ``active_days`` before ``date`` of the customers flagged in ``lost``."""
    stamps = pd.to_datetime(transactions["timestamp"])
    end = end_of_day(date)
    window = (stamps > end - pd.Timedelta(days=active_days)) & (stamps <= end)
    ids = set(lost.index[lost.to_numpy(dtype=bool)])
    rows = window & transactions["customer_id"].astype(str).isin(ids)
    return float(transactions.loc[rows, "amount"].sum())


COUNT_COLUMNS = (
    "customers_start",
    "new_customers",
    "reactivated_customers",
    "customers_end",
    "lost_customers",
)


def _joined(
    at_start: pd.Series,
    at_end: pd.Series,
    seen_before: pd.Series,
) -> tuple[int, int]:
    """(new, reactivated): customers active at the end and not at the start, split by whether
    they had been customers before the period."""
    joined = at_end & ~at_start
    back = joined & seen_before
    return int((joined & ~seen_before).sum()), int(back.sum())


def _seen_before(
    active: pd.DataFrame, first_seen: pd.Series | None, dates: list[Any], i: int
) -> pd.Series:
    """Customers who had been customers before the period starting at ``dates[i]``: a first
    purchase (``first_seen``) by the end of that day, or else active at an earlier boundary."""
    if first_seen is not None:
        first = pd.to_datetime(first_seen).reindex(active.index)
        return (first < end_of_day(dates[i])).fillna(False).astype(bool)
    if i == 0:
        return pd.Series(False, index=active.index)
    return active[dates[:i]].any(axis=1)


def _change_pct(rate: pd.Series, previous: pd.Series) -> pd.Series:
    """The change on the previous rate in percent of it; NaN (shown "n/a") when the previous
    rate is 0 or unknown."""
    usable = previous.notna() & (previous > 0)
    return (100 * (rate - previous) / previous.where(usable)).astype("float64")


def churn_by_period(
    active: pd.DataFrame,
    segments: pd.Series | None = None,
    *,
    transactions: pd.DataFrame | None = None,
    active_days: int = 365,
    margin: float | None = None,
    first_seen: pd.Series | None = None,
) -> pd.DataFrame:
    """Churn rate by segment and period from an activity matrix.

    ``active`` has one row per customer and one boolean column per period boundary (from
    :func:`active_from_transactions` or :func:`active_from_contracts`). For the period between
    two boundaries: customers at the start are those active at the first, at the end those
    active at the second, lost ones were active at the start and not at the end. Those active
    at the end and not at the start joined: ``new_customers`` had never been customers
    before (their first purchase, ``first_seen``, falls in the period; without ``first_seen``:
    not active at any earlier boundary), ``reactivated_customers`` had been and came back. So
    ``lost = start − (end − new − reactivated)`` exactly, and the rate formula's "new" is
    both.

    ``segments`` maps customer_id → segment label (missing → "unknown"); rows for every
    customer carry the segment ``"all"``. With ``transactions``, ``lost_revenue`` is the lost
    customers' revenue over the ``active_days`` before the period, and with ``margin`` too,
    ``churn_loss`` = lost_revenue × margin.

    Columns: ``segment``, ``period_start``, ``period_end``, ``customers_start``,
    ``new_customers``, ``reactivated_customers``, ``customers_end``, ``lost_customers``
    (integers), ``churn_rate`` (lost / end), ``conventional_churn_rate`` (lost / start),
    ``churn_rate_change`` (difference to the segment's previous period, in rate units),
    ``churn_rate_change_pct`` (that difference in percent of the previous rate; NaN when the
    previous rate is 0), and ``lost_revenue`` / ``churn_loss`` when computable.
    """
    dates = list(active.columns)
    if len(dates) < 2:
        raise InvalidInputError("need at least two period boundaries", field="active")
    labels = pd.Series(TOTAL, index=active.index, dtype=object)
    groups: list[tuple[str, pd.Index]] = [(TOTAL, active.index)]
    if segments is not None:
        seg = segments.copy()
        seg.index = seg.index.astype(str)
        labels = seg.reindex(active.index).astype(object).where(lambda s: s.notna(), "unknown")
        groups += [(str(k), idx) for k, idx in labels.groupby(labels, sort=True).groups.items()]
    seen = [_seen_before(active, first_seen, dates, i) for i in range(len(dates) - 1)]
    rows = []
    for name, members in groups:
        sub = active.loc[members]
        for i, (before, after) in enumerate(zip(dates[:-1], dates[1:], strict=True)):
            at_start, at_end = sub[before], sub[after]
            lost = at_start & ~at_end
            new, back = _joined(at_start, at_end, seen[i].loc[members])
            rate = churn_rate(float(at_start.sum()), float(at_end.sum()), float(new + back))
            row: dict[str, Any] = {"segment": name, "period_start": before, "period_end": after}
            row.update(rate.as_dict())
            row["new_customers"], row["reactivated_customers"] = new, back
            if transactions is not None:
                revenue = _lost_revenue(transactions, lost, pd.Timestamp(before), active_days)
                row["lost_revenue"] = round(revenue, 2)
                if margin is not None:
                    row["churn_loss"] = churn_loss(revenue, margin)
            rows.append(row)
    table = pd.DataFrame(rows)
    table = table.astype({c: "int64" for c in COUNT_COLUMNS})
    previous = table.groupby("segment", sort=False)["churn_rate"].shift(1)
    change = {
        "churn_rate_change": table["churn_rate"] - previous,
        "churn_rate_change_pct": _change_pct(table["churn_rate"], previous),
    }
    first = ["segment", "period_start", "period_end", *COUNT_COLUMNS]
    first += ["churn_rate", "conventional_churn_rate"]
    rest = [c for c in table.columns if c not in first]
    return pd.concat([table[first], pd.DataFrame(change), table[rest]], axis=1)


def churn_table(
    start: object,
    end: object,
    *,
    freq: str = "MS",
    transactions: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    segment: str | pd.Series | None = None,
    active_days: int = 365,
    margin: float | None = None,
) -> pd.DataFrame:
    """:func:`churn_by_period` over the periods of ``freq`` boundaries from ``start`` to ``end``.

    Contractual when ``customers`` has ``churn_date`` (contract held at each boundary),
    otherwise from ``transactions`` (a purchase in the last ``active_days``). ``segment`` is
    a column of ``customers`` or a Series customer_id → label.
    """
    dates = _boundaries(start, end, freq)
    first_seen = None  # contracts: joining is signing up, never a return
    if customers is not None and "churn_date" in customers.columns:
        active = active_from_contracts(customers, dates)
    elif transactions is not None:
        active = active_from_transactions(transactions, dates, active_days)
        ids = transactions["customer_id"].astype(str).to_numpy()
        first_seen = pd.to_datetime(transactions["timestamp"]).groupby(ids).min()
    else:
        raise InvalidInputError(
            "give transactions, or customers with a churn_date column", field="transactions"
        )
    segments: pd.Series | None
    if isinstance(segment, str):
        if customers is None or segment not in customers.columns:
            raise InvalidInputError(f"customers lack the segment column '{segment}'", field=segment)
        segments = customers.set_index(customers["customer_id"].astype(str))[segment]
    else:
        segments = segment
    return churn_by_period(
        active,
        segments,
        transactions=transactions,
        active_days=active_days,
        margin=margin,
        first_seen=first_seen,
    )


def value_at_risk(
    churn_probability: pd.Series,
    clv: pd.Series,
    top: int | None = None,
    thresholds: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """P(churn) × CLV per customer, the high-value high-risk customers first.

    Both inputs are indexed by customer_id (customers missing from either are left out);
    negative CLV counts as 0. Sorted by ``value_at_risk`` descending, ties by CLV then
    probability. Columns: ``churn_probability``, ``risk_band``, ``clv``, ``value_at_risk``,
    ``rank`` (1 = first to act on). ``thresholds``: the churn model's risk band thresholds
    (:func:`models.churn.risk.thresholds_of`; None: the fixed ones of older models).
    """
    p = pd.to_numeric(pd.Series(churn_probability), errors="coerce")
    value = pd.to_numeric(pd.Series(clv), errors="coerce")
    p.index, value.index = p.index.astype(str), value.index.astype(str)
    common = p.index.intersection(value.index, sort=False)
    if ((p.loc[common] < 0) | (p.loc[common] > 1)).any():
        raise InvalidInputError("churn probabilities must be in [0, 1]", field="churn_probability")
    frame = pd.DataFrame(
        {"churn_probability": p.loc[common], "clv": value.loc[common]},
        index=common.rename("customer_id"),
    ).dropna()
    frame.insert(1, "risk_band", risk_band(frame["churn_probability"].to_numpy(), thresholds))
    frame["value_at_risk"] = frame["churn_probability"] * frame["clv"].clip(lower=0)
    frame = frame.sort_values(
        ["value_at_risk", "clv", "churn_probability"], ascending=False, kind="stable"
    )
    frame["rank"] = np.arange(1, len(frame) + 1)
    return frame.head(top) if top is not None else frame
