"""Churn features as of a date, from transactions up to that date and the customer table.

On top of the shared summary (:func:`models.features.summarize`) the churn model gets these
signals of change and complaints (see docs/METHODS.md, section 4):

=========================  ================================================================
``mean_gap_days``          the customer's usual gap between purchase days
                           ((tenure − days since last) / repeat purchases; NaN without repeat)
``gap_ratio``              days since the last purchase / usual gap: the change in recency;
                           > 2 is "no purchase for twice the usual gap"
``frequency_change``       purchase days in the last window − in the window before (change in
                           frequency)
``spend_change``           spend in the last window / the window before − 1 (the
                           3-month ARPU trend; NaN when the customer is younger than two
                           windows or spent nothing before)
``complaints``             complaints on record (customer table), as of the date
``unresolved_complaints``  complaints not resolved as of the date
``resolution_days``        days taken to resolve (customer table)
``account_age_days``       days from ``signup_date`` to the date (contract tenure)
``main_channel``           the channel of most purchases (when transactions have ``channel``)
=========================  ================================================================

plus every other customer attribute (numeric or categorical) and, from the summary,
``frequency``, ``monetary_value``, ``n_transactions``, ``total_revenue``,
``avg_order_value``, ``total_profit``, ``profit_per_purchase``, ``margin_rate``,
``n_channels``, ``tenure_days``, ``days_since_last``, ``purchases_recent``,
``purchases_earlier``, ``spend_recent``, ``spend_earlier``, ``activity_trend``,
``spend_trend`` (``T``, ``recency`` and ``n_purchases`` duplicate these and are left out).

Leakage: transactions after the date are ignored. The customer table is a snapshot, so a
complaint made after the date would leak; when the table has ``complaint_date`` those
complaints are not counted, and when it has ``resolution_date`` a complaint resolved after the
date counts as unresolved. Without these columns the complaint fields are taken as they are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.churn.encoding import coerce_numeric
from models.features import NON_FEATURE_ATTRIBUTES, SUMMARY_COLUMNS, end_of_day, summarize

# The shared summary without what the derived gap features replace (recency, T, n_purchases)
# and the basis of the current value (revenue_12m: value reporting; the 90-day windows carry
# the recent spend).
SUMMARY_FEATURES: list[str] = [
    c for c in SUMMARY_COLUMNS if c not in ("recency", "T", "n_purchases", "revenue_12m")
]
DERIVED_FEATURES: list[str] = ["mean_gap_days", "gap_ratio", "frequency_change", "spend_change"]
# The shortest usual gap: purchases are counted by day.
MIN_GAP_DAYS = 1.0
COMPLAINT_FEATURES: list[str] = ["complaints", "unresolved_complaints", "resolution_days"]
# dated columns of the customer table used to keep complaint fields as of the date
_DATED = ("complaint_date", "resolution_date")
# Customer-table columns read as dates (a request's attributes are parsed and checked first).
DATE_ATTRIBUTES = ("signup_date", *_DATED)


def _num(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    values = coerce_numeric(frame[column])
    if values is None:
        return np.full(len(frame), np.nan)
    return values.to_numpy(dtype=float)


def _behaviour(summary: pd.DataFrame, trend_window_days: int) -> pd.DataFrame:
    out = summary[[c for c in SUMMARY_FEATURES if c in summary.columns]].copy()
    if summary.shape[1] == 0:  # contractual data without purchases: attributes only
        return out
    frequency = _num(summary, "frequency")
    tenure = _num(summary, "tenure_days")
    since_last = _num(summary, "days_since_last")
    with np.errstate(invalid="ignore", divide="ignore"):
        # purchase days are at least a day apart (a summary sent with repeat purchases but a
        # recency of 0 would make the gap 0 and the ratio infinite)
        gap = np.where(
            frequency > 0,
            np.maximum((tenure - since_last) / np.maximum(frequency, 1), MIN_GAP_DAYS),
            np.nan,
        )
        out["mean_gap_days"] = gap
        out["gap_ratio"] = since_last / gap
        out["frequency_change"] = _num(summary, "purchases_recent") - _num(
            summary, "purchases_earlier"
        )
        recent, earlier = _num(summary, "spend_recent"), _num(summary, "spend_earlier")
        grown = tenure >= 2 * trend_window_days
        out["spend_change"] = np.where(grown & (earlier > 0), recent / earlier - 1, np.nan)
    return out


def _complaints(attributes: pd.DataFrame, cutoff: pd.Timestamp | None) -> pd.DataFrame:
    """Complaint fields as of ``cutoff``; the raw complaint columns are replaced."""
    count = np.nan_to_num(_num(attributes, "complaints"), nan=0.0)
    resolved = _num(attributes, "complaint_resolved")
    days = _num(attributes, "resolution_days")
    if cutoff is not None and "complaint_date" in attributes.columns:
        later = (pd.to_datetime(attributes["complaint_date"]) > cutoff).to_numpy()
        count = np.where(later, 0.0, count)
    if cutoff is not None and "resolution_date" in attributes.columns:
        late = (pd.to_datetime(attributes["resolution_date"]) > cutoff).to_numpy()
        resolved = np.where(late, 0.0, resolved)
        days = np.where(late, np.nan, days)
    resolved = np.where(count > 0, np.nan_to_num(resolved, nan=0.0), np.nan)
    out = attributes.drop(
        columns=[c for c in ("complaints", "complaint_resolved", *_DATED) if c in attributes]
    )
    out["complaints"] = count
    out["unresolved_complaints"] = np.where(count > 0, count * (1 - resolved), 0.0)
    out["resolution_days"] = np.where((count > 0) & (resolved > 0), days, np.nan)
    return out


def churn_features_from_summary(
    summary: pd.DataFrame,
    customers: pd.DataFrame | None = None,
    as_of: object | None = None,
    *,
    trend_window_days: int = 90,
) -> pd.DataFrame:
    """Churn features of the customers of ``summary`` (its index), joined with attributes.

    ``summary`` is :func:`models.features.summarize` output as of ``as_of`` (columns it
    lacks give missing features, so a partial summary still scores). ``as_of`` dates the
    customer-table fields (``signup_date`` → ``account_age_days``, complaint dates); without it
    those are taken as they are. Identity and outcome columns are never features.
    """
    cutoff = end_of_day(as_of) if as_of is not None else None
    out = _behaviour(summary, trend_window_days)
    out.index = out.index.astype(str).rename("customer_id")
    if customers is None or customers.empty or "customer_id" not in customers.columns:
        return out
    table = customers.drop_duplicates("customer_id", keep="last")
    table = table.set_axis(table["customer_id"].astype(str).rename("customer_id"))
    table = table.reindex(out.index)
    attributes = table.drop(
        columns=[c for c in table.columns if c in NON_FEATURE_ATTRIBUTES or c in out.columns]
    )
    if {"complaints", "complaint_resolved"} & set(attributes.columns):
        attributes = _complaints(attributes, cutoff)
    if "signup_date" in table.columns and cutoff is not None:
        age = (cutoff.normalize() - pd.to_datetime(table["signup_date"])).dt.days
        attributes["account_age_days"] = age.where(age >= 0).to_numpy(dtype=float, na_value=np.nan)
    return out.join(attributes.drop(columns=[c for c in _DATED if c in attributes]))


# Up to this many distinct channels the main channel is counted in one customers × channels
# array; beyond (free-text channels), by a group-by.
_DENSE_CHANNELS = 64


def _main_channel(transactions: pd.DataFrame, cutoff: pd.Timestamp) -> pd.Series:
    """Each customer's channel of most purchases up to ``cutoff`` (ties: the first channel in
    alphabetical order), indexed by customer id."""
    stamps = pd.to_datetime(transactions["timestamp"])
    rows = transactions.loc[stamps <= cutoff, ["customer_id", "channel"]].dropna()
    if rows.empty:
        return pd.Series(dtype="str", name="main_channel")
    channel, channels = pd.factorize(rows["channel"])
    if len(channels) <= _DENSE_CHANNELS and pd.api.types.is_string_dtype(rows["channel"]):
        customer, customers = pd.factorize(rows["customer_id"].astype(str))
        ranked = np.argsort(np.asarray(channels, dtype=object), kind="stable")
        rank = np.empty(len(channels), dtype=np.int64)
        rank[ranked] = np.arange(len(channels))
        per_channel = np.bincount(
            customer * len(channels) + rank[channel], minlength=len(customers) * len(channels)
        ).reshape(len(customers), len(channels))
        best = np.asarray(channels, dtype=object)[ranked][per_channel.argmax(axis=1)]
        return pd.Series(
            pd.array(best, dtype="str"),
            index=pd.Index(customers, dtype="str", name="customer_id"),
            name="main_channel",
        )
    rows = rows.assign(customer_id=rows["customer_id"].astype(str), channel=rows["channel"])
    counts = rows.groupby(["customer_id", "channel"], sort=True).size().reset_index(name="n")
    counts = counts.sort_values(["customer_id", "n", "channel"], ascending=[True, False, True])
    first = counts.drop_duplicates("customer_id")
    return pd.Series(
        first["channel"].astype(str).to_numpy(), index=first["customer_id"], name="main_channel"
    )


def churn_features(
    transactions: pd.DataFrame,
    as_of: object,
    customers: pd.DataFrame | None = None,
    *,
    trend_window_days: int = 90,
    summary: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Churn features as of the end of ``as_of`` for every customer who bought by then.

    Computed from purchases up to ``as_of`` only (later ones cannot change a value), the
    customer table's attributes, and ``main_channel`` when transactions have ``channel``.
    Indexed by ``customer_id``, sorted. ``summary``: :func:`models.features.summarize` of
    the same transactions as of the same date and trend window, when already computed.
    """
    cutoff = end_of_day(as_of)
    if summary is None:
        summary = summarize(transactions, cutoff, trend_window_days=trend_window_days)
    out = churn_features_from_summary(
        summary, customers, cutoff, trend_window_days=trend_window_days
    )
    if "channel" in transactions.columns and len(out):
        out.insert(
            min(len(SUMMARY_FEATURES) + len(DERIVED_FEATURES), out.shape[1]),
            "main_channel",
            _main_channel(transactions, cutoff).reindex(out.index),
        )
    return out
