"""Churn KPIs and value at risk: pure functions, no model needed.

- :func:`churn_rate`: the rate ``[start − (end − new)] / end`` beside the conventional
  ``lost / start``, each named (docs/METHODS.md: 3,000 / 500 new / 3,300 → 6.06 % and 6.67 %).
- :func:`churn_loss`: revenue of the lost customers × profit margin (1,500,000; 810,000).
- :func:`churn_by_period`: both rates by segment and period from data, new and reactivated
  customers apart, with the change on the previous period (month-on-month change rate, in
  rate units and in percent) and the loss; a customer's segment is fixed or taken as of
  each period's start (:mod:`models.churn.segment_kpi` labels them with the models).
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


def _day(value: object, field: str) -> pd.Timestamp:
    try:
        day = pd.Timestamp(value)  # type: ignore[arg-type]
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInputError(f"{field} {value!r} is not a date", field=field) from exc
    if day is pd.NaT:
        raise InvalidInputError(f"{field} is missing", field=field)
    return day


def period_boundaries(
    start: object, end: object, freq: str, max_periods: int | None = None
) -> pd.DatetimeIndex:
    """The dates that cut ``start`` … ``end`` into periods of ``freq`` (a pandas frequency:
    MS month starts, ME month ends, QS, YS, W, ...); more than ``max_periods`` periods are
    refused before they are made (a service that reports on what callers send)."""
    first, last = _day(start, "start"), _day(end, "end")
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
        if offset.n <= 0:
            raise ValueError("not forwards")
        if max_periods is None:
            edges = pd.date_range(first, last, freq=offset)
        else:
            edges = pd.date_range(first, periods=max_periods + 2, freq=offset)
            edges = edges[edges <= last]
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInputError(
            f"freq {freq!r} is not a period frequency (use MS for months, QS quarters, YS "
            "years, W weeks)",
            field="freq",
        ) from exc
    if max_periods is not None and len(edges) > max_periods + 1:
        raise InvalidInputError(
            f"{first.date()} to {last.date()} in '{freq}' periods makes more than "
            f"{max_periods} periods (choose a longer freq or a later start)",
            field="freq",
        )
    if len(edges) < 2:
        raise InvalidInputError(
            f"{first.date()} to {last.date()} holds fewer than two '{freq}' period boundaries",
            field="freq",
        )
    return edges


def trailing_boundaries(end: object, periods: int, months: int) -> pd.DatetimeIndex:
    """``periods`` + 1 dates ``months`` apart, the last one ``end``: the periods that end on
    the as-of date (e.g. 4 quarters: 2024-12-31, 2025-03-31, …, 2025-12-31)."""
    if periods < 1 or months < 1:
        raise InvalidInputError("periods and months must be at least 1", field="periods")
    last = pd.Timestamp(end).normalize()  # type: ignore[arg-type]
    return pd.DatetimeIndex(
        [last - pd.DateOffset(months=months * k) for k in range(periods, -1, -1)]
    )


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


def window_revenue(
    transactions: pd.DataFrame, dates: list[Any], active_days: int = 365
) -> pd.DataFrame:
    """Each customer's revenue (rows) in the ``active_days`` up to the end of each date
    (columns); 0 for a customer with no purchase in that window."""
    stamps = pd.to_datetime(transactions["timestamp"]).to_numpy()
    ids = transactions["customer_id"].astype(str).to_numpy()
    amounts = transactions["amount"].to_numpy(dtype=float)
    columns = {}
    for date in dates:
        end = end_of_day(date)
        window = (stamps > (end - pd.Timedelta(days=active_days)).to_datetime64()) & (
            stamps <= end.to_datetime64()
        )
        columns[date] = pd.Series(amounts[window]).groupby(ids[window]).sum()
    return pd.DataFrame(columns, columns=list(dates)).fillna(0.0).rename_axis("customer_id")


COUNT_COLUMNS = (
    "customers_start",
    "new_customers",
    "reactivated_customers",
    "customers_end",
    "lost_customers",
)
UNKNOWN = "unknown"  # the segment of a customer the labels do not cover


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


def _labels_of(segments: pd.Series, index: pd.Index) -> np.ndarray:
    """``segments`` (customer_id → label) for the customers of ``index``, as text; missing →
    :data:`UNKNOWN`."""
    if not segments.index.equals(index):
        segments = segments.set_axis(segments.index.astype(str)).reindex(index)
    labels = segments.to_numpy(dtype=object)
    missing = pd.isna(labels)
    if missing.any():
        labels = labels.copy()
        labels[missing] = UNKNOWN
    return labels.astype(str).astype(object)


def _period_labels(
    segments: pd.Series | pd.DataFrame | None, index: pd.Index, starts: list[Any]
) -> list[np.ndarray] | None:
    """Each period's labels: one Series for every period, or a frame's column of the
    period's start date."""
    if segments is None:
        return None
    if isinstance(segments, pd.Series):
        return [_labels_of(segments, index)] * len(starts)
    absent = [d for d in starts if d not in segments.columns]
    if absent:
        raise InvalidInputError(
            f"the segment labels lack the period start {pd.Timestamp(absent[0]).date()} "
            f"({len(absent)} of {len(starts)} period starts missing)",
            field="segments",
        )
    return [_labels_of(segments[d], index) for d in starts]


def _label_order(names: set[str]) -> list[str]:
    """Labels sorted, numbers (cluster ids) by value."""
    return sorted(names, key=lambda n: (0, int(n), "") if n.isdigit() else (1, 0, n))


FLAG_COLUMNS = (*COUNT_COLUMNS, "lost_revenue")


def _period_flags(
    active: pd.DataFrame, first_seen: pd.Series | None, revenue: pd.DataFrame | None
) -> list[np.ndarray]:
    """Per period, a matrix of each customer's (row) 0/1 counts of :data:`COUNT_COLUMNS`
    and the revenue of the lost ones (columns :data:`FLAG_COLUMNS`; revenue from
    ``revenue``, customer × period start, or 0 without it)."""
    dates = list(active.columns)
    out = []
    for i, (before, after) in enumerate(zip(dates[:-1], dates[1:], strict=True)):
        at_start = active[before].to_numpy(dtype=bool)
        at_end = active[after].to_numpy(dtype=bool)
        seen = _seen_before(active, first_seen, dates, i).to_numpy(dtype=bool)
        joined = at_end & ~at_start
        lost = at_start & ~at_end
        spent = np.zeros(len(active))
        if revenue is not None:
            spent = revenue[before].reindex(active.index, fill_value=0.0).to_numpy(dtype=float)
        flags = np.column_stack(
            [at_start, joined & ~seen, joined & seen, at_end, lost, np.where(lost, spent, 0.0)]
        ).astype(float)
        out.append(flags)
    return out


def _rate_table(
    dates: list[Any],
    flags: list[np.ndarray],
    labels: list[np.ndarray] | None,
    margin: float | None,
    with_revenue: bool,
) -> pd.DataFrame:
    """The churn table from :func:`_period_flags` grouped by each period's ``labels``
    (``with_revenue``: the flags hold the lost customers' revenue)."""
    per_period: list[dict[str, np.ndarray]] = []
    for i, period in enumerate(flags):
        sums = {TOTAL: period.sum(axis=0)}
        if labels is not None:
            codes, names = pd.factorize(labels[i])
            grouped = np.zeros((len(names), period.shape[1]))
            for j in range(period.shape[1]):
                grouped[:, j] = np.bincount(codes, weights=period[:, j], minlength=len(names))
            sums.update({str(name): grouped[k] for k, name in enumerate(names)})
        per_period.append(sums)
    names_in_order = [TOTAL]
    if labels is not None:
        found = {n for sums in per_period for n in sums} - {TOTAL}
        names_in_order += _label_order(found)
    at = {column: k for k, column in enumerate(FLAG_COLUMNS)}
    rows = []
    for name in names_in_order:
        for i, (before, after) in enumerate(zip(dates[:-1], dates[1:], strict=True)):
            got = per_period[i].get(name, np.zeros(len(FLAG_COLUMNS)))
            new, back = got[at["new_customers"]], got[at["reactivated_customers"]]
            rate = churn_rate(got[at["customers_start"]], got[at["customers_end"]], new + back)
            row: dict[str, Any] = {"segment": name, "period_start": before, "period_end": after}
            row.update(rate.as_dict())
            row["new_customers"], row["reactivated_customers"] = int(new), int(back)
            if with_revenue:
                lost_revenue = float(got[at["lost_revenue"]])
                row["lost_revenue"] = round(lost_revenue, 2)
                if margin is not None:
                    row["churn_loss"] = churn_loss(lost_revenue, margin)
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


def _check_boundaries(active: pd.DataFrame) -> list[Any]:
    dates = list(active.columns)
    if len(dates) < 2:
        raise InvalidInputError("need at least two period boundaries", field="active")
    return dates


def churn_by_period(
    active: pd.DataFrame,
    segments: pd.Series | pd.DataFrame | None = None,
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

    ``segments`` is either a Series customer_id → label (one label for every period) or a
    frame of labels with one column per period start (each period's customers grouped by
    their label as of its start: :func:`models.churn.segment_kpi.labels_as_of`); a customer
    without a label is in the segment ``"unknown"``. Rows for every customer carry the
    segment ``"all"``. With ``transactions``, ``lost_revenue`` is the lost customers' revenue
    over the ``active_days`` before the period, and with ``margin`` too, ``churn_loss`` =
    lost_revenue × margin.

    Columns: ``segment``, ``period_start``, ``period_end``, ``customers_start``,
    ``new_customers``, ``reactivated_customers``, ``customers_end``, ``lost_customers``
    (integers), ``churn_rate`` (lost / end), ``conventional_churn_rate`` (lost / start),
    ``churn_rate_change`` (difference to the segment's previous period, in rate units),
    ``churn_rate_change_pct`` (that difference in percent of the previous rate; NaN when the
    previous rate is 0), and ``lost_revenue`` / ``churn_loss`` when computable. A segment
    with no customer in a period has zero counts and NaN rates there.
    """
    dates = _check_boundaries(active)
    revenue = (
        window_revenue(transactions, dates[:-1], active_days) if transactions is not None else None
    )
    flags = _period_flags(active, first_seen, revenue)
    labels = _period_labels(segments, active.index, dates[:-1])
    return _rate_table(dates, flags, labels, margin, revenue is not None)


def churn_by_schemes(
    active: pd.DataFrame,
    schemes: dict[str, pd.Series | pd.DataFrame],
    *,
    transactions: pd.DataFrame | None = None,
    active_days: int = 365,
    margin: float | None = None,
    first_seen: pd.Series | None = None,
) -> pd.DataFrame:
    """:func:`churn_by_period` for several segmentations of the same customers at once
    (scheme name → segments): one long table with a ``scheme`` column first. The rows over
    every customer appear once, with scheme and segment ``"all"``."""
    dates = _check_boundaries(active)
    revenue = (
        window_revenue(transactions, dates[:-1], active_days) if transactions is not None else None
    )
    flags = _period_flags(active, first_seen, revenue)
    parts = []
    for i, (scheme, segments) in enumerate(schemes.items()):
        labels = _period_labels(segments, active.index, dates[:-1])
        table = _rate_table(dates, flags, labels, margin, revenue is not None)
        if i > 0:
            table = table[table["segment"] != TOTAL]
        parts.append(table.assign(scheme=table["segment"].where(table["segment"] == TOTAL, scheme)))
    if not parts:
        parts.append(
            _rate_table(dates, flags, None, margin, revenue is not None).assign(scheme=TOTAL)
        )
    long = pd.concat(parts, ignore_index=True)
    return long[["scheme", *[c for c in long.columns if c != "scheme"]]]


def activity(
    dates: pd.DatetimeIndex,
    *,
    transactions: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    active_days: int = 365,
) -> tuple[pd.DataFrame, pd.Series | None]:
    """(the activity matrix at ``dates``, each customer's first purchase or None) for
    :func:`churn_by_period`: contracts held when ``customers`` has ``churn_date``, otherwise
    a purchase in the last ``active_days``."""
    if customers is not None and "churn_date" in customers.columns:
        return active_from_contracts(customers, dates), None  # joining is signing up
    if transactions is None:
        raise InvalidInputError(
            "give transactions, or customers with a churn_date column", field="transactions"
        )
    ids = transactions["customer_id"].astype(str).to_numpy()
    first_seen = pd.to_datetime(transactions["timestamp"]).groupby(ids).min()
    return active_from_transactions(transactions, dates, active_days), first_seen


def churn_table(
    start: object,
    end: object,
    *,
    freq: str = "MS",
    transactions: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    segment: str | pd.Series | pd.DataFrame | None = None,
    active_days: int = 365,
    margin: float | None = None,
) -> pd.DataFrame:
    """:func:`churn_by_period` over the periods of ``freq`` boundaries from ``start`` to ``end``
    (:func:`period_boundaries`).

    Contractual when ``customers`` has ``churn_date`` (contract held at each boundary),
    otherwise from ``transactions`` (a purchase in the last ``active_days``). ``segment`` is
    a column of ``customers``, a Series customer_id → label, or a frame of each customer's
    label as of each period start (see :func:`churn_by_period`).
    """
    active, first_seen = activity(
        period_boundaries(start, end, freq),
        transactions=transactions,
        customers=customers,
        active_days=active_days,
    )
    segments: pd.Series | pd.DataFrame | None
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
