"""One feature function for training and serving: transactions → per-customer summary.

The summary is computed *as of* a date: purchases after the end of that day are ignored, and
all ages are measured to it. Purchases of the same customer on the same calendar day count as
one purchase (their amounts are summed), the convention of the CLV literature (Fader, Hardie &
Lee 2005) and of the CDNOW reference summary.

Columns of :func:`summarize` (time columns in ``time_unit_days`` units, default days):

=====================  ================================================================
``frequency``          repeat purchases: distinct purchase days − 1
``recency``            time from the first to the last purchase day
``T``                  time from the first purchase day to ``as_of`` (the customer's age)
``monetary_value``     mean amount of the repeat purchase days (0 when ``frequency`` = 0)
``n_purchases``        distinct purchase days (``frequency`` + 1)
``n_transactions``     transaction rows (before same-day merging)
``total_revenue``      sum of amounts (currency)
``avg_order_value``    total_revenue / n_purchases (currency)
``total_profit``       margin_rate × total_revenue (NaN when no cost is known)
``profit_per_purchase`` total_profit / n_purchases (NaN when no cost column)
``margin_rate``        (revenue − cost) / revenue over the purchases with a known cost
``n_channels``         distinct channels used (NaN when no channel column)
``tenure_days``        days from the first purchase to ``as_of``
``days_since_last``    days from the last purchase to ``as_of``
``purchases_recent``   purchase days in the last ``trend_window_days``
``purchases_earlier``  purchase days in the ``trend_window_days`` before those
``spend_recent``       revenue in the last ``trend_window_days``
``spend_earlier``      revenue in the window before
``activity_trend``     (recent − earlier) / (recent + earlier) of purchase days, in [−1, 1]
``spend_trend``        the same for revenue, in [−1, 1]
``revenue_12m``        revenue in the last :data:`CURRENT_VALUE_DAYS` (365) days up to
                       ``as_of``: the basis of the customer's current value
=====================  ================================================================
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.exceptions import InvalidInputError

SUMMARY_COLUMNS: list[str] = [
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "n_purchases",
    "n_transactions",
    "total_revenue",
    "avg_order_value",
    "total_profit",
    "profit_per_purchase",
    "margin_rate",
    "n_channels",
    "tenure_days",
    "days_since_last",
    "purchases_recent",
    "purchases_earlier",
    "spend_recent",
    "spend_earlier",
    "activity_trend",
    "spend_trend",
    "revenue_12m",
]

# The window of the current value (the last 12 months): revenue_12m.
CURRENT_VALUE_DAYS = 365

# Customer-table columns that describe the outcome or identity, never model inputs.
NON_FEATURE_ATTRIBUTES = frozenset({"customer_id", "signup_date", "churned", "churn_date"})


def repeated_rows(transactions: pd.DataFrame) -> np.ndarray:
    """The one rule for repeated purchases, in batch (``training.data.load_transactions``)
    and online (the service's feature building): True for each row equal in every column to
    an earlier row (missing values equal each other), False for the first occurrence.

    Repeats are dropped before the features are built unless the caller keeps them
    (``--keep-duplicates``, ``"keep_duplicates": true``): an exact repeat is more often a
    double export than a second purchase, but data without transaction ids (CDNOW) can hold
    real ones. Same-day purchases that differ in any column are never repeats.
    """
    if transactions.empty:
        return np.zeros(0, dtype=bool)
    return transactions.duplicated(keep="first").to_numpy(dtype=bool)


def end_of_day(as_of: object) -> pd.Timestamp:
    """The last instant of the ``as_of`` day (a date means "up to and including that day")."""
    ts = pd.Timestamp(as_of)  # type: ignore[arg-type]
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.normalize() + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")


def implied_revenue_12m(total_revenue: float, T: float, recency: float) -> float:
    """The ``revenue_12m`` a summary without it implies (``T``, ``recency`` in days): all the
    revenue when the first purchase is within the last :data:`CURRENT_VALUE_DAYS` days, none
    when the last purchase is before them, else unknown (NaN)."""
    if T < CURRENT_VALUE_DAYS:
        return float(total_revenue)
    if T - recency >= CURRENT_VALUE_DAYS:
        return 0.0
    return math.nan


def _trend(recent: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    total = recent + earlier
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (recent - earlier) / np.where(total > 0, total, 1.0), 0.0)


def require_columns(
    frame: pd.DataFrame, columns: tuple[str, ...], what: str = "transactions"
) -> None:
    """An :class:`InvalidInputError` naming the first of ``columns`` that ``frame`` (the
    user's ``what``) lacks."""
    for column in columns:
        if column not in frame.columns:
            raise InvalidInputError(f"{what} lack the column '{column}'", field=column)


def summarize(
    transactions: pd.DataFrame,
    as_of: object,
    *,
    time_unit_days: float = 1.0,
    trend_window_days: int = 90,
) -> pd.DataFrame:
    """Summarise ``transactions`` per customer as of the end of the ``as_of`` day.

    ``transactions`` needs ``customer_id``, ``timestamp`` and ``amount``; ``cost`` and
    ``channel`` are used when present. Returns one row per customer with at least one purchase
    on or before ``as_of``, indexed by ``customer_id`` and sorted by it, with
    :data:`SUMMARY_COLUMNS`. ``recency`` and ``T`` are in units of ``time_unit_days`` days
    (7 gives weeks, as in the CLV literature).
    """
    require_columns(transactions, ("customer_id", "timestamp", "amount"))
    if time_unit_days <= 0:
        raise InvalidInputError("time_unit_days must be positive", field="time_unit_days")
    cutoff = end_of_day(as_of)
    as_of_day = cutoff.normalize()

    has_cost = "cost" in transactions.columns
    has_channel = "channel" in transactions.columns
    columns = ["customer_id", "timestamp", "amount"] + (["cost"] if has_cost else [])
    columns += ["channel"] if has_channel else []
    tx = transactions[columns]
    timestamps = pd.to_datetime(tx["timestamp"])
    tx = tx.assign(timestamp=timestamps)[timestamps <= cutoff]
    if tx.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS, index=pd.Index([], name="customer_id"))

    day = tx["timestamp"].dt.normalize()
    tx = tx.assign(customer_id=tx["customer_id"].astype(str), day=day)
    agg = {"amount": ("amount", "sum"), "n_rows": ("amount", "size")}
    if has_cost:
        # Profit is measured on the purchases whose cost is known and extrapolated by margin.
        costed = tx["cost"].notna()
        tx = tx.assign(cost=tx["cost"].fillna(0.0), costed_amount=tx["amount"].where(costed, 0.0))
        agg["cost"] = ("cost", "sum")
        agg["costed_amount"] = ("costed_amount", "sum")
    channels = None
    if has_channel:
        rows = tx[["customer_id", "channel"]].dropna(subset=["channel"])
        channels = rows.groupby("customer_id")["channel"].nunique()
        del rows
    days = tx.groupby(["customer_id", "day"], sort=True).agg(**agg).reset_index()
    del tx, day, timestamps  # memory: the purchase days are all that is read from here on

    first = days.groupby("customer_id", sort=True)["day"].transform("min")
    is_repeat = days["day"] > first
    age_days = (as_of_day - days["day"]).dt.days.to_numpy()
    recent = age_days < trend_window_days
    earlier = (age_days >= trend_window_days) & (age_days < 2 * trend_window_days)
    amount = days["amount"].to_numpy(dtype=float)
    days = days.assign(
        repeat_amount=np.where(is_repeat, amount, 0.0),
        is_repeat=is_repeat.astype(int),
        recent=recent.astype(int),
        earlier=earlier.astype(int),
        spend_recent=np.where(recent, amount, 0.0),
        spend_earlier=np.where(earlier, amount, 0.0),
        revenue_12m=np.where(age_days < CURRENT_VALUE_DAYS, amount, 0.0),
    )
    del first, is_repeat, age_days, recent, earlier, amount
    per = days.groupby("customer_id", sort=True).agg(
        first_day=("day", "min"),
        last_day=("day", "max"),
        n_purchases=("day", "size"),
        n_transactions=("n_rows", "sum"),
        total_revenue=("amount", "sum"),
        repeat_revenue=("repeat_amount", "sum"),
        purchases_recent=("recent", "sum"),
        purchases_earlier=("earlier", "sum"),
        spend_recent=("spend_recent", "sum"),
        spend_earlier=("spend_earlier", "sum"),
        revenue_12m=("revenue_12m", "sum"),
        **(
            {"total_cost": ("cost", "sum"), "costed_revenue": ("costed_amount", "sum")}
            if has_cost
            else {}
        ),
    )
    del days

    n_purchases = per["n_purchases"].to_numpy(dtype=float)
    frequency = n_purchases - 1
    recency_days = (per["last_day"] - per["first_day"]).dt.days.to_numpy(dtype=float)
    tenure_days = (as_of_day - per["first_day"]).dt.days.to_numpy(dtype=float)
    revenue = per["total_revenue"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(frequency > 0, per["repeat_revenue"] / np.maximum(frequency, 1), 0.0)
    if has_cost:
        costed_revenue = per["costed_revenue"].to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            margin = np.where(
                costed_revenue > 0,
                (costed_revenue - per["total_cost"].to_numpy(dtype=float)) / costed_revenue,
                np.nan,
            )
        profit = margin * revenue
    else:
        profit = np.full(len(per), np.nan)
        margin = np.full(len(per), np.nan)
    if channels is not None:
        n_channels = channels.reindex(per.index).fillna(0).to_numpy(dtype=float)
    else:
        n_channels = np.full(len(per), np.nan)

    p_recent = per["purchases_recent"].to_numpy(dtype=float)
    p_earlier = per["purchases_earlier"].to_numpy(dtype=float)
    s_recent = per["spend_recent"].to_numpy(dtype=float)
    s_earlier = per["spend_earlier"].to_numpy(dtype=float)
    out = pd.DataFrame(
        {
            "frequency": frequency,
            "recency": recency_days / time_unit_days,
            "T": tenure_days / time_unit_days,
            "monetary_value": monetary,
            "n_purchases": n_purchases,
            "n_transactions": per["n_transactions"].to_numpy(dtype=float),
            "total_revenue": revenue,
            "avg_order_value": revenue / n_purchases,
            "total_profit": profit,
            "profit_per_purchase": profit / n_purchases,
            "margin_rate": margin,
            "n_channels": n_channels,
            "tenure_days": tenure_days,
            "days_since_last": (as_of_day - per["last_day"]).dt.days.to_numpy(dtype=float),
            "purchases_recent": p_recent,
            "purchases_earlier": p_earlier,
            "spend_recent": s_recent,
            "spend_earlier": s_earlier,
            "activity_trend": _trend(p_recent, p_earlier),
            "spend_trend": _trend(s_recent, s_earlier),
            "revenue_12m": per["revenue_12m"].to_numpy(dtype=float),
        },
        index=per.index.astype(str).rename("customer_id"),
    )
    return out


def customer_features(summary: pd.DataFrame, customers: pd.DataFrame | None) -> pd.DataFrame:
    """The summary joined with the customer table's attributes (the churn model's inputs).

    Identity and outcome columns (``signup_date``, ``churned``, ``churn_date``) are left out.
    Customers absent from the customer table get missing attributes.
    """
    if customers is None or customers.empty:
        return summary.copy()
    attributes = customers.drop(
        columns=[c for c in customers.columns if c in NON_FEATURE_ATTRIBUTES]
    ).set_axis(customers["customer_id"].astype(str).rename("customer_id"), axis=0)
    attributes = attributes.drop(columns=[c for c in attributes.columns if c in summary.columns])
    return summary.join(attributes, how="left")
