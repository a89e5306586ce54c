"""The customer view column by column: the same numbers as the pandas path, without DataFrames.

A served request holds one customer, or a batch of them. The reference implementation builds
DataFrames at every step (:func:`models.features.summarize`, :mod:`models.churn.features`,
each segmentation scheme's ``predict``, :meth:`models.clv.CLVModel.predict`,
:func:`models.churn.reasons.churn_reasons`, :mod:`models.customer_view`), which costs tens
of milliseconds for one customer. Here every step takes numpy arrays (one per column, one
row per customer) and returns arrays; the fitted models' own state and numeric cores are used
as they are.

- :func:`summarize_purchases`: purchases → the summary columns of ``summarize``. Sums are
  compensated (Kahan) sums in the row order of pandas' group-by, as pandas computes them, so
  the results are the same bit for bit.
- :func:`churn_feature_columns`: summary + customer attributes → the churn model's inputs
  (``{column: array or list}``, the form of :func:`models.churn.encoding.frame_columns`).
- :func:`segment_columns`, :func:`clv_columns`: every segmentation scheme and the CLV model.
- :func:`churn_columns`, :func:`reason_rows`: churn probability, risk band, and reasons with
  every perturbed row of a request scored in one model call.
- :func:`recommended_actions`, :func:`label_notes`, :func:`describe_segments`: the answer's
  texts.

What this path does not cover raises :class:`Unsupported` (e.g. a contractual CLV model, or
attribute values whose pandas type inference is unusual); the caller then takes the pandas
path, which stays the reference. ``tests/models/test_fast_view.py`` compares both on random
customers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np
from scipy.spatial.distance import cdist

from models import playbook as pb
from models.churn.features import DERIVED_FEATURES, MIN_GAP_DAYS, SUMMARY_FEATURES
from models.churn.reasons import ChurnTypeTable
from models.churn.risk import band_of
from models.churn.rules import DEFAULT_RULES
from models.clv._mle import Z95, delta_standard_error
from models.clv.noncontractual import CLVModel, _Indexed, check_rft
from models.features import (
    CURRENT_VALUE_DAYS,
    NON_FEATURE_ATTRIBUTES,
    SUMMARY_COLUMNS,
    implied_revenue_12m,
)
from models.segments.base import mid_rank
from models.segments.bundle import CustomerSegments
from models.segments.clusters import BehaviourClusters
from models.segments.lifecycle import LifecycleStage
from models.segments.rfm import RFMSegmenter, quintile_score
from models.segments.value import NineGrid, ValueMatrix, profit_per_purchase
from models.segments.value_index import VALUE_INDEX_COLUMN

DAY_NS = 86_400 * 1_000_000_000
Columns = dict[str, Any]  # column → numpy array (or a list of values, for text)


class Unsupported(Exception):
    """This request or model is outside the fast path: score it on the pandas path."""


def end_of_day_ns(as_of: date) -> int:
    """:func:`models.features.end_of_day` of a date, in nanoseconds since 1970."""
    return (as_of.toordinal() - date(1970, 1, 1).toordinal() + 1) * DAY_NS - 1


# --- sums as pandas' group-by computes them ---------------------------------------------------
_VECTOR_STEPS = 64  # positions summed for all groups at once; longer groups go on one by one


def grouped_sum(values: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Per group (rows ``starts[g] .. starts[g] + sizes[g]``, in order), the compensated sum
    pandas' group-by ``sum`` computes (Kahan, from 0), bit for bit."""
    total = np.zeros(len(starts))
    compensation = np.zeros(len(starts))
    if len(starts) == 0:
        return total
    longest = int(sizes.max())
    by_size = np.argsort(-sizes, kind="stable")
    ranked = sizes[by_size]
    for k in range(min(longest, _VECTOR_STEPS)):
        groups = by_size[: int(np.searchsorted(-ranked, -k, side="left"))]
        y = values[starts[groups] + k] - compensation[groups]
        t = total[groups] + y
        c = (t - total[groups]) - y
        compensation[groups] = np.where(np.isnan(c), 0.0, c)
        total[groups] = t
    for g in by_size[: int(np.searchsorted(-ranked, -_VECTOR_STEPS, side="left"))].tolist():
        s, c = float(total[g]), float(compensation[g])
        for v in values[starts[g] + _VECTOR_STEPS : starts[g] + sizes[g]].tolist():
            y = v - c
            t = s + y
            c = (t - s) - y
            if c != c:
                c = 0.0
            s = t
        total[g] = s
    return total


# --- purchases → summary ----------------------------------------------------------------------
class Purchases:
    """A request's purchases as columns: ``customer`` (position of the buyer among ``n``
    customers), ``ns`` (UTC time, nanoseconds), ``amount``, ``cost`` (NaN: unknown) and
    ``channel`` (code into ``channels``; -1: none). ``customer_rank``: each customer's place
    when the customer ids are sorted as text (default: their positions)."""

    def __init__(
        self,
        customer: np.ndarray,
        ns: np.ndarray,
        amount: np.ndarray,
        cost: np.ndarray,
        channel: np.ndarray,
        channels: Sequence[str],
        n: int,
        has_channel: bool | None = None,
        customer_rank: np.ndarray | None = None,
    ):
        self.customer, self.ns, self.amount, self.cost = customer, ns, amount, cost
        self.channel, self.channels, self.n = channel, list(channels), n
        # whether the request sent any channel (before repeats are dropped): the summary
        # then counts channels (0 for a customer without), else n_channels is missing
        self.has_channel = bool((channel >= 0).any()) if has_channel is None else has_channel
        # each customer's place in the order of the customer ids as text (pandas' group order)
        self.customer_rank = np.arange(n) if customer_rank is None else customer_rank

    def __len__(self) -> int:
        return len(self.ns)

    def repeated(self) -> np.ndarray:
        """:func:`models.features.repeated_rows` of these purchases (equal in every column
        to an earlier row of the same customer; unknown costs equal each other)."""
        n = len(self)
        out = np.zeros(n, dtype=bool)
        if n < 2:
            return out
        # a repeat has the time and buyer of another purchase: only those rows are compared
        by_time = np.lexsort((self.ns, self.customer))
        ns, buyer = self.ns[by_time], self.customer[by_time]
        same = (ns[1:] == ns[:-1]) & (buyer[1:] == buyer[:-1])
        if not same.any():
            return out
        shared = np.zeros(n, dtype=bool)
        shared[by_time[1:][same]] = True
        shared[by_time[:-1][same]] = True
        rows = np.flatnonzero(shared)  # in request order: the first of equal rows stays first
        cost = self.cost[rows]
        unknown = np.isnan(cost)
        keys = (
            self.channel[rows],
            unknown,
            np.where(unknown, 0.0, cost),
            self.amount[rows],
            self.ns[rows],
            self.customer[rows],
        )
        order = np.lexsort(keys)  # stable
        equal = np.ones(len(rows) - 1, dtype=bool)
        for key in keys:
            ordered = key[order]
            equal &= ordered[1:] == ordered[:-1]
        out[rows[order[1:]]] = equal
        return out

    def take(self, rows: np.ndarray) -> Purchases:
        return Purchases(
            self.customer[rows],
            self.ns[rows],
            self.amount[rows],
            self.cost[rows],
            self.channel[rows],
            self.channels,
            self.n,
            self.has_channel,
            self.customer_rank,
        )


def summarize_purchases(
    purchases: Purchases, as_of: date, *, trend_window_days: int = 90
) -> tuple[Columns, np.ndarray]:
    """(:func:`models.features.summarize` as columns, one row per customer of
    ``purchases.n``; whether each customer bought by ``as_of``). Customers without a
    purchase by then have NaN everywhere.

    Sums are taken as pandas' group-by takes them: ``np.add.reduceat`` over each group's
    rows when the rows arrive sorted by the group keys (always, for the sums over purchase
    days), else Kahan sums in row order (:func:`grouped_sum`)."""
    n = purchases.n
    cutoff = end_of_day_ns(as_of)
    as_of_day = cutoff // DAY_NS
    kept = purchases.ns <= cutoff
    customer = purchases.customer[kept]
    day = purchases.ns[kept] // DAY_NS
    amount = purchases.amount[kept]
    cost = purchases.cost[kept]
    costed = ~np.isnan(cost)
    # pandas groups by (customer id as text, day): rows already in that order are summed by
    # reduceat, others by its Kahan kernel
    rank = purchases.customer_rank[customer]
    in_order = bool(
        np.all((rank[1:] > rank[:-1]) | ((rank[1:] == rank[:-1]) & (day[1:] >= day[:-1])))
    )
    order = np.lexsort((day, customer))  # stable: same-day rows keep their order
    customer, day, amount = customer[order], day[order], amount[order]
    cost, costed = np.where(costed, cost, 0.0)[order], costed[order]

    # purchase days: (customer, day) groups
    new_day = np.ones(len(day), dtype=bool)
    new_day[1:] = (customer[1:] != customer[:-1]) | (day[1:] != day[:-1])
    day_starts = np.flatnonzero(new_day)
    day_sizes = np.diff(np.append(day_starts, len(day)))

    def day_sum(values: np.ndarray) -> np.ndarray:
        if in_order:
            return np.add.reduceat(values, day_starts) if len(values) else values
        return grouped_sum(values, day_starts, day_sizes)

    d_amount = day_sum(amount)
    d_cost = day_sum(cost)
    d_costed = day_sum(np.where(costed, amount, 0.0))
    d_customer = customer[day_starts]
    d_day = day[day_starts]

    # customers: groups of purchase days
    new_customer = np.ones(len(d_day), dtype=bool)
    new_customer[1:] = d_customer[1:] != d_customer[:-1]
    starts = np.flatnonzero(new_customer)
    sizes = np.diff(np.append(starts, len(d_day)))
    who = d_customer[starts]
    first_day = d_day[starts]
    last_day = d_day[starts + sizes - 1]
    is_repeat = d_day > np.repeat(first_day, sizes)
    age = as_of_day - d_day
    recent = age < trend_window_days
    earlier = (age >= trend_window_days) & (age < 2 * trend_window_days)
    customer_of_day = np.repeat(np.arange(len(starts)), sizes)

    def count(flags: np.ndarray) -> np.ndarray:
        return np.bincount(customer_of_day[flags], minlength=len(starts)).astype(float)

    def total(values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, starts) if len(values) else values

    n_purchases = sizes.astype(float)
    frequency = n_purchases - 1
    revenue = total(d_amount)
    repeat_revenue = total(np.where(is_repeat, d_amount, 0.0))
    s_recent = total(np.where(recent, d_amount, 0.0))
    s_earlier = total(np.where(earlier, d_amount, 0.0))
    revenue_12m = total(np.where(age < CURRENT_VALUE_DAYS, d_amount, 0.0))
    total_cost = total(d_cost)
    costed_revenue = total(d_costed)
    n_rows = np.bincount(customer_of_day, weights=day_sizes, minlength=len(starts))
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(frequency > 0, repeat_revenue / np.maximum(frequency, 1), 0.0)
        margin = np.where(
            costed_revenue > 0, (costed_revenue - total_cost) / costed_revenue, np.nan
        )
    profit = margin * revenue
    if purchases.has_channel:
        with_channel = purchases.channel[kept] >= 0
        pairs = np.unique(
            purchases.customer[kept][with_channel] * (len(purchases.channels) + 1)
            + purchases.channel[kept][with_channel]
        )
        per_customer = np.bincount(pairs // (len(purchases.channels) + 1), minlength=n)
        n_channels = per_customer[who].astype(float)
    else:
        n_channels = np.full(len(starts), np.nan)
    p_recent, p_earlier = count(recent), count(earlier)
    recency = (last_day - first_day).astype(float)
    tenure = (as_of_day - first_day).astype(float)
    values = {
        "frequency": frequency,
        "recency": recency,
        "T": tenure,
        "monetary_value": monetary,
        "n_purchases": n_purchases,
        "n_transactions": n_rows.astype(float),
        "total_revenue": revenue,
        "avg_order_value": revenue / n_purchases,
        "total_profit": profit,
        "profit_per_purchase": profit / n_purchases,
        "margin_rate": margin,
        "n_channels": n_channels,
        "tenure_days": tenure,
        "days_since_last": (as_of_day - last_day).astype(float),
        "purchases_recent": p_recent,
        "purchases_earlier": p_earlier,
        "spend_recent": s_recent,
        "spend_earlier": s_earlier,
        "activity_trend": _trend(p_recent, p_earlier),
        "spend_trend": _trend(s_recent, s_earlier),
        "revenue_12m": revenue_12m,
    }
    out = {}
    for name in SUMMARY_COLUMNS:
        column = np.full(n, np.nan)
        column[who] = values[name]
        out[name] = column
    bought = np.zeros(n, dtype=bool)
    bought[who] = True
    return out, bought


def _trend(recent: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    total = recent + earlier
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (recent - earlier) / np.where(total > 0, total, 1.0), 0.0)


def main_channel(purchases: Purchases, as_of: date) -> list[str | None]:
    """Each customer's channel of most purchases by ``as_of`` (ties: the first in
    alphabetical order; None without one), as ``models.churn.features._main_channel``."""
    rows = (purchases.ns <= end_of_day_ns(as_of)) & (purchases.channel >= 0)
    out: list[str | None] = [None] * purchases.n
    if not rows.any():
        return out
    names = np.asarray(purchases.channels, dtype=object)
    ranked = np.argsort(names, kind="stable")  # code → alphabetical rank
    rank = np.empty(len(names), dtype=np.int64)
    rank[ranked] = np.arange(len(names))
    width = len(names)
    keys, counts = np.unique(
        purchases.customer[rows] * width + rank[purchases.channel[rows]], return_counts=True
    )
    who, alphabetical = keys // width, keys % width
    order = np.lexsort((alphabetical, -counts, who))  # most purchases, then alphabetical
    first = np.ones(len(order), dtype=bool)
    first[1:] = who[order][1:] != who[order][:-1]
    best = order[first]
    for customer, position in zip(who[best].tolist(), alphabetical[best].tolist(), strict=True):
        out[customer] = str(names[ranked[position]])
    return out


def summary_rows(fields: Sequence[Mapping[str, Any]]) -> Columns:
    """The summary columns of customers sent as summaries (``service.scoring._summary_rows``):
    each mapping holds ``frequency``, ``recency``, ``T``, ``monetary_value`` and optionally
    ``total_revenue``, ``margin_rate``, ``n_channels``, ``activity_trend``, ``spend_trend``,
    ``revenue_12m``."""
    n = len(fields)
    out = {name: np.full(n, np.nan) for name in SUMMARY_COLUMNS}
    for i, s in enumerate(fields):
        count = s["frequency"] + 1
        revenue = s.get("total_revenue")
        revenue = s["monetary_value"] * count if revenue is None else revenue
        row = out
        row["frequency"][i] = float(s["frequency"])
        row["recency"][i] = s["recency"]
        row["T"][i] = s["T"]
        row["monetary_value"][i] = s["monetary_value"]
        row["n_purchases"][i] = float(count)
        row["total_revenue"][i] = revenue
        row["avg_order_value"][i] = revenue / count
        row["tenure_days"][i] = s["T"]
        row["days_since_last"][i] = s["T"] - s["recency"]
        for key in ("margin_rate", "n_channels", "activity_trend", "spend_trend"):
            value = s.get(key)
            if value is not None:
                row[key][i] = float(value)
        given = s.get("revenue_12m")
        row["revenue_12m"][i] = (
            implied_revenue_12m(revenue, s["T"], s["recency"]) if given is None else given
        )
        if s.get("margin_rate") is not None:  # profit as summarize gives it from costs
            row["total_profit"][i] = s["margin_rate"] * revenue
            row["profit_per_purchase"][i] = row["total_profit"][i] / count
    return out


# --- customer attributes → columns, as pandas infers them -------------------------------------
DATE_ATTRIBUTES = ("signup_date", "complaint_date", "resolution_date")
_MISSING = object()


def attribute_columns(rows: Sequence[Mapping[str, Any]]) -> Columns:
    """Per attribute name, the column ``pd.DataFrame(rows)[name]`` would be, in the form of
    :func:`models.churn.encoding.frame_columns`: an int64, float64 or bool array when pandas
    infers a number or boolean dtype, else a list of values (None where missing). Date
    attributes (timestamps or None) become int64 nanoseconds with ``_nat`` masks.
    ``customer_id`` is left out. Raises :class:`Unsupported` for date attributes that are not
    timestamps."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    names.pop("customer_id", None)
    out: Columns = {}
    for name in names:
        values = [row.get(name, _MISSING) for row in rows]
        if name in DATE_ATTRIBUTES:
            ns = np.zeros(len(values), dtype=np.int64)
            missing = np.zeros(len(values), dtype=bool)
            for i, v in enumerate(values):
                if v is _MISSING or v is None:
                    missing[i] = True
                elif hasattr(v, "value") and hasattr(v, "tz_localize"):
                    ns[i] = v.value
                else:
                    raise Unsupported(f"date attribute {name}")
            out[name] = (ns, missing)
            continue
        out[name] = _infer(values)
    return out


def _infer(values: list[Any]) -> Any:
    present = [v for v in values if v is not _MISSING and v is not None]
    complete = len(present) == len(values)
    kinds = {type(v) for v in present}
    if not present:
        return [None] * len(values)
    if kinds == {int} and complete:
        return np.array(present, dtype=np.int64)
    if kinds <= {int, float}:
        return np.array([np.nan if v is _MISSING or v is None else v for v in values], dtype=float)
    if kinds == {bool} and complete:
        return np.array(present, dtype=bool)
    if kinds == {str}:
        return [None if v is _MISSING else v for v in values]
    if bool in kinds or str in kinds:  # object columns: the values, None where missing
        return [None if v is _MISSING else v for v in values]
    raise Unsupported("attribute values of an unusual type")


def _number(column: Any, n: int) -> np.ndarray:
    """``models.churn.features._num`` of a column (absent: None) of numbers; other text
    goes to the pandas path."""
    if column is None:
        return np.full(n, np.nan)
    if isinstance(column, np.ndarray):
        return column.astype(float)
    if all(v is None for v in column):
        return np.full(n, np.nan)
    raise Unsupported("a complaint field that is not a number")


# --- churn features ---------------------------------------------------------------------------
def churn_feature_columns(
    summary: Columns,
    attributes: Columns,
    as_of: date,
    main_channel: list[str | None] | None,
    *,
    trend_window_days: int = 90,
) -> Columns:
    """``models.churn.features.churn_features`` (and ``churn_features_from_summary``) as
    columns, for every customer of ``summary``: the behaviour features, ``main_channel``
    (None: the request has no channel, so no such column) and the attributes (complaints
    as of the date, ``account_age_days`` from ``signup_date``)."""
    n = len(summary["frequency"])
    out: Columns = {name: summary[name] for name in SUMMARY_FEATURES}
    frequency, tenure = summary["frequency"], summary["tenure_days"]
    since_last = summary["days_since_last"]
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
        out["frequency_change"] = summary["purchases_recent"] - summary["purchases_earlier"]
        recent, earlier = summary["spend_recent"], summary["spend_earlier"]
        grown = tenure >= 2 * trend_window_days
        out["spend_change"] = np.where(grown & (earlier > 0), recent / earlier - 1, np.nan)
    if main_channel is not None:
        out["main_channel"] = main_channel
    if "main_channel" in attributes and main_channel is not None:
        raise Unsupported("an attribute named main_channel")
    taken = set(SUMMARY_FEATURES) | set(DERIVED_FEATURES)
    own = {
        k: v
        for k, v in attributes.items()
        if k not in NON_FEATURE_ATTRIBUTES and k not in taken and k not in DATE_ATTRIBUTES
    }
    cutoff = end_of_day_ns(as_of)
    if "complaints" in own or "complaint_resolved" in own:
        count = np.nan_to_num(_number(own.pop("complaints", None), n), nan=0.0)
        resolved = _number(own.pop("complaint_resolved", None), n)
        days = _number(own.pop("resolution_days", None), n)
        if "complaint_date" in attributes:
            ns, missing = attributes["complaint_date"]
            count = np.where(~missing & (ns > cutoff), 0.0, count)
        if "resolution_date" in attributes:
            ns, missing = attributes["resolution_date"]
            late = ~missing & (ns > cutoff)
            resolved = np.where(late, 0.0, resolved)
            days = np.where(late, np.nan, days)
        resolved = np.where(count > 0, np.nan_to_num(resolved, nan=0.0), np.nan)
        own["complaints"] = count
        own["unresolved_complaints"] = np.where(count > 0, count * (1 - resolved), 0.0)
        own["resolution_days"] = np.where((count > 0) & (resolved > 0), days, np.nan)
    if "signup_date" in attributes:
        ns, missing = attributes["signup_date"]
        age = (cutoff // DAY_NS * DAY_NS - ns) // DAY_NS
        own["account_age_days"] = np.where(missing | (age < 0), np.nan, age.astype(float))
    out.update(own)
    return out


# --- segmentation and CLV ---------------------------------------------------------------------
def _values(table: Mapping[str, Any], column: str, n: int) -> np.ndarray:
    """``models.segments.base.values``: a float column, all NaN when absent."""
    values = table.get(column)
    return np.full(n, np.nan) if values is None else np.asarray(values, dtype=float)


def check_models(models: Mapping[str, Any]) -> None:
    """Raise :class:`Unsupported` unless the fast path knows every model's kind."""
    segments, clv, churn = models["segmentation"], models["clv"], models["churn"]
    kinds = [type(m) for m in segments.schemes().values()] if hasattr(segments, "rfm_") else []
    if (
        type(segments) is not CustomerSegments
        or kinds != [RFMSegmenter, ValueMatrix, BehaviourClusters, LifecycleStage, NineGrid]
        or type(clv) is not CLVModel
        or not hasattr(churn, "predict_proba_columns")
        or getattr(churn, "fast_path_disabled_", None)
    ):
        raise Unsupported("a model without a column-wise path")


def clv_columns(model: CLVModel, summary: Columns, interval: bool = True) -> Columns:
    """:meth:`CLVModel.predict` as columns (the same purchase and spend models, delta-method
    interval and margins); without ``interval``, no ``clv_lower`` and ``clv_upper`` (the
    interval re-evaluates the model once per parameter: most of the work)."""
    model._check_fitted()
    u = float(model.time_unit_days)
    x, t_x, t = check_rft(summary["frequency"], summary["recency"] / u, summary["T"] / u)
    d = _Indexed(x, t_x, t)
    purchases, spend_model = model.purchase_model_, model.gamma_gamma_
    monetary = np.nan_to_num(np.asarray(summary["monetary_value"], dtype=float))
    margins = np.full(len(x), model.margin_)
    if model.margin_source_ == "data":
        own = np.asarray(summary["margin_rate"], dtype=float)
        margins = np.where(np.isfinite(own), own, margins)
    horizon = model.horizon_days / model.time_unit_days
    per_year = 365.25 / model.time_unit_days
    n_bg = len(purchases._param_names)
    counts_of: dict[tuple[float, ...], np.ndarray] = {}
    spend_of: dict[tuple[float, ...], np.ndarray] = {}

    def value(p: np.ndarray) -> np.ndarray:  # as CLVModel._value
        bg_key, gg_key = tuple(p[:n_bg]), tuple(p[n_bg:])
        if bg_key not in counts_of:
            counts_of[bg_key] = purchases._discounted(
                p[:n_bg], horizon, model.discount_rate, d, per_year
            )
        if gg_key not in spend_of:
            gg = dict(zip(spend_model._param_names, p[n_bg:], strict=True))
            spend_of[gg_key] = spend_model.expected_spend(d.x, monetary, gg)
        return counts_of[bg_key] * spend_of[gg_key] * margins

    log_params = model._log_params()
    clv = value(np.exp(log_params))
    bounds: Columns = {}
    if interval:
        cov = np.zeros((len(log_params), len(log_params)))
        cov[:n_bg, :n_bg] = purchases.log_covariance_
        cov[n_bg:, n_bg:] = spend_model.log_covariance_
        se = delta_standard_error(value, log_params, cov, clv)
        bounds = {"clv_lower": clv - Z95 * se, "clv_upper": clv + Z95 * se}
    params = purchases._param_array()
    alive = purchases._alive(params, d)
    px, pt, inverse = d.age_pairs
    with np.errstate(all="ignore"):  # as _PurchaseModel._expected, P(alive) computed once
        expected = purchases._expected_if_alive(params, float(horizon), px, pt)[inverse] * alive
    return {
        "expected_purchases": expected,
        "probability_alive": alive,
        "expected_spend": spend_model.expected_spend(d.x, monetary),
        "clv": clv,
        **bounds,
        "margin": margins,
    }


_VALUE_TIERS = np.array(["low", "mid", "high"])
_GROWTH_TIERS = np.array(["declining", "stable", "growing"])
_CELLS = np.array([f"{v}_value_{g}" for v in _VALUE_TIERS for g in _GROWTH_TIERS])


def segment_columns(model: CustomerSegments, table: Columns, n: int) -> Columns:
    """``CustomerSegments.predict`` as columns (``table``: the summary with
    ``probability_alive`` and ``expected_purchases``): the labels the answers use."""
    out: Columns = {}
    # RFM
    rfm = model.rfm_
    recency, frequency, monetary = (_values(table, c, n) for c in rfm.columns)
    r = 6 - quintile_score(rfm.references_[0], np.nan_to_num(recency, nan=np.inf))
    f = quintile_score(rfm.references_[1], np.nan_to_num(frequency))
    m = quintile_score(rfm.references_[2], np.nan_to_num(monetary))
    out["r_score"], out["f_score"], out["m_score"] = r, f, m
    out["rfm_code"] = (np.asarray(r) * 100 + np.asarray(f) * 10 + np.asarray(m)).astype(str)
    out["rfm_segment"] = rfm.lookup_[r, f].astype(str)
    # value matrix
    vm = model.value_matrix_
    profit, out["value_basis"] = profit_per_purchase(lambda c: _values(table, c, n), vm.margin_)
    out["value_type"] = vm._label(profit, _values(table, "frequency", n))
    # behaviour clusters
    clusters = model.clusters_
    raw = np.column_stack([_values(table, c, n) for c in clusters.features_])
    z = (clusters._scaled(raw) - clusters.mean_) / clusters.scale_
    nearest = cdist(z, clusters.centers_).argmin(axis=1) if n else np.empty(0, dtype=int)
    out["cluster"] = clusters.cluster_ids_[nearest].astype(np.int64)
    names = np.array([clusters.names_[c] for c in clusters.cluster_ids_.tolist()], dtype=object)
    out["cluster_name"] = names[nearest]
    # lifecycle
    out["lifecycle_stage"] = _lifecycle(model.lifecycle_, table, n)
    # AHP value index (models saved before it have none); the nine-grid can read it
    index_model = getattr(model, "value_index_", None)
    if index_model is not None:
        inputs = {c: _numbers(table.get(c), n) for c in index_model.columns_}
        ahp_index = index_model.index_of(inputs, n)
        table = {**table, VALUE_INDEX_COLUMN: ahp_index}
    # nine-grid
    grid = model.nine_grid_
    ranks = np.column_stack(
        [
            mid_rank(ref, _values(table, c, n))
            for c, ref in zip(grid.value_columns_, grid.references_, strict=True)
        ]
    )
    weights = np.broadcast_to(np.asarray(grid.value_weights_), ranks.shape)
    present = np.isfinite(ranks)
    weight_sum = np.where(present, weights, 0.0).sum(axis=1)
    weighted = np.where(present, ranks * weights, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        index = np.where(weight_sum > 0, weighted / weight_sum, np.nan)
    low_cut, high_cut = grid.value_thresholds_
    filled = np.nan_to_num(index, nan=-np.inf)
    value_at = np.where(filled >= high_cut, 2, np.where(filled >= low_cut, 1, 0))
    _, growth_at = grid.growth_tiers(lambda c: _values(table, c, n))
    out["value_tier"] = _VALUE_TIERS[value_at]
    out["growth_tier"] = _GROWTH_TIERS[growth_at]
    out["nine_grid"] = _CELLS[value_at * 3 + growth_at]
    out["nine_grid_strategy"] = np.array(
        [grid.strategies_[c] for c in out["nine_grid"].tolist()], dtype=object
    )
    if index_model is not None:
        out[VALUE_INDEX_COLUMN] = ahp_index
    return out


def _numbers(column: Any, n: int) -> np.ndarray:
    """A value-index input as floats (absent: missing); a column of text or mixed values
    (``as_float`` parses those) goes to the pandas path."""
    if column is None:
        return np.full(n, np.nan)
    if isinstance(column, np.ndarray) and column.dtype.kind in "biuf":
        return column.astype(float)
    raise Unsupported("a value-index column that is not numeric")


def _lifecycle(stage: LifecycleStage, table: Columns, n: int) -> np.ndarray:
    tenure = _values(table, "tenure_days", n)
    silent = _values(table, "days_since_last", n)
    count = _values(table, "n_purchases", n)
    trend = np.nan_to_num(_values(table, stage.trend_column, n), nan=0.0)
    alive = _values(table, "probability_alive", n)
    has_alive = np.isfinite(alive)
    with np.errstate(invalid="ignore", divide="ignore"):
        own = np.where(count > 1, (tenure - silent) / (count - 1), np.nan)
        gap = np.fmax(own, stage.typical_gap_days_)
        ratio = silent / np.maximum(gap, 1e-9)
    ratio_f = np.nan_to_num(ratio, nan=np.inf)
    alive_f = np.where(has_alive, alive, 1.0)
    lapsed = (alive_f < stage.lapsed_alive) | (ratio_f > stage.lapse_gap_factor)
    acquisition = np.nan_to_num(tenure, nan=np.inf) < stage.acquisition_days
    decline = (
        (alive_f < stage.decline_alive)
        | (ratio_f > stage.decline_gap_factor)
        | (trend <= stage.decline_trend)
    )
    growth = trend >= stage.growth_trend
    return np.select(
        [lapsed, acquisition, decline, growth],
        ["lapsed", "acquisition", "decline", "growth"],
        default="maturity",
    ).astype(str)


# --- churn ------------------------------------------------------------------------------------
def churn_inputs(model: Any, features: Columns, n: int) -> Columns:
    """The churn model's input columns (``features.reindex(columns=feature_names_in_)``)."""
    nan = np.full(n, np.nan)
    return {name: features.get(name, nan) for name in model.feature_names_in_}


def churn_scores(model: Any, inputs: Columns, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(encoded input matrix, churn probability)."""
    encoded = model.encoder_.transform_columns(inputs, n)
    return encoded, model.probability_from_score(model.raw_score_fast(encoded))


def with_churn(out: Columns, model: Any, p_churn: np.ndarray, high_value_threshold: float) -> None:
    """``models.customer_view.with_churn`` on columns."""
    out["churn_probability"] = p_churn
    out["risk_band"] = band_of(model, p_churn)
    clv = np.asarray(out["clv"], dtype=float)
    out["value_at_risk"] = p_churn * np.maximum(clv, 0.0)
    out["high_value"] = clv >= high_value_threshold


def contributions(model: Any, encoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(``models.churn.reasons.contributions`` as an array, the rows' raw log-odds): every
    perturbed row of every customer is scored in one model call."""
    n, k = encoded.shape
    score = getattr(model, "raw_score_fast", None) or model.raw_score
    base = score(encoded)
    baseline = np.asarray(model.baseline_, dtype=float)
    out = np.zeros((n, k))
    active = [
        j
        for j, kind in enumerate(model.feature_kinds_)
        if kind != "ignored" and np.isfinite(baseline[j])
    ]
    if n and active:
        stacked = np.repeat(encoded[None, :, :], len(active), axis=0)
        for b, j in enumerate(active):
            stacked[b, :, j] = baseline[j]
        scores = score(stacked.reshape(-1, k)).reshape(len(active), n)
        out[:, active] = (base[None, :] - scores).T
    return out, base


def _display(values: Any, row: int) -> str:
    """``models.churn.reasons._display`` of a feature column's value."""
    value = values[row]
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "missing"
    if isinstance(value, float | np.floating):
        return f"{float(value):,.4g}"
    return str(value)


def reason_rows(
    model: Any,
    inputs: Columns,
    encoded: np.ndarray,
    table: ChurnTypeTable,
    top: int = 3,
) -> tuple[np.ndarray, list[str | None], list[list[dict[str, Any]]]]:
    """(churn probability, churn type, reasons) per customer, as ``churn_reasons`` gives
    them (risk-raising drivers first, by size, then risk-lowering ones)."""
    values, base = contributions(model, encoded)
    probability = model.probability_from_score(base)
    names = [str(c) for c in model.feature_names_in_]
    key = np.where(values > 0, values, np.where(values < 0, -1e6 - values, -np.inf))
    order = np.argsort(-key, axis=1, kind="stable")[:, :top]
    described: dict[str, tuple[str, str]] = {}
    records: list[list[dict[str, Any]]] = []
    churn_type: list[str | None] = []
    for i in range(len(values)):
        reasons: list[dict[str, Any]] = []
        for j in order[i].tolist():
            c = float(values[i, j])
            if c == 0:
                continue
            feature = names[j]
            if feature not in described:
                described[feature] = (table.label(feature), table.churn_type(feature))
            label, kind = described[feature]
            reasons.append(
                {
                    "feature": feature,
                    "label": label,
                    "type": kind,
                    "direction": "raises risk" if c > 0 else "lowers risk",
                    "value": _display(inputs[feature], i),
                    "contribution": round(c, 4),
                }
            )
        records.append(reasons)
        churn_type.append(
            reasons[0]["type"] if reasons and reasons[0]["contribution"] > 0 else None
        )
    return probability, churn_type, records


def alerts(features: Columns, n: int) -> list[list[str]]:
    """``models.churn.rules.early_warnings(features)["alerts"]`` with the default rules."""
    import operator

    ops = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
    flags = []
    for rule in DEFAULT_RULES:
        column = features.get(rule.feature)
        if column is None:
            flags.append(np.zeros(n, dtype=bool))
            continue
        if not isinstance(column, np.ndarray) or rule.op not in ops:
            raise Unsupported("an early-warning rule on a text column")
        numbers = column.astype(float)
        with np.errstate(invalid="ignore"):
            hit = ops[rule.op](numbers, float(rule.value))
        flags.append(np.asarray(hit, dtype=bool) & np.isfinite(numbers))
    labels = [rule.label for rule in DEFAULT_RULES]
    matrix = np.column_stack(flags) if flags else np.zeros((n, 0), dtype=bool)
    return [[labels[j] for j in np.flatnonzero(row).tolist()] for row in matrix]


# --- the answer's texts -----------------------------------------------------------------------
def describe_segments(
    model: CustomerSegments, frame: Columns, n: int, book: dict[str, Any]
) -> list[dict[str, Any]]:
    """``CustomerSegments.describe_row`` of every customer. Every part of it is a label (or
    a score 1-5), so it is built once per distinct set of labels and shared by the customers
    who have that set (the playbook is read once per distinct label)."""
    cache: dict[tuple[str, Any], dict[str, Any]] = {}

    def entry(scheme: str, label: Any) -> dict[str, Any]:
        key = (scheme, label)
        if key not in cache:
            if scheme == "behaviour":
                clusters = model.clusters_
                cache[key] = {
                    **pb.describe_cluster(
                        label, clusters.names_[label], clusters.traits_[label], book
                    ),
                    "label": str(label),
                }
            else:
                cache[key] = pb.describe(scheme, label, book)
        return cache[key]

    columns = {
        name: np.asarray(frame[name]).tolist()
        for name in (
            "rfm_segment",
            "r_score",
            "f_score",
            "m_score",
            "rfm_code",
            "value_type",
            "value_basis",
            "cluster",
            "lifecycle_stage",
            "nine_grid",
            "nine_grid_strategy",
            "value_tier",
            "growth_tier",
        )
    }
    described: dict[tuple[Any, ...], dict[str, Any]] = {}  # per distinct set of labels
    out = []
    for key in zip(*columns.values(), strict=True):
        found = described.get(key)
        if found is None:
            c = dict(zip(columns, key, strict=True))
            found = described[key] = {
                "rfm": {
                    **entry("rfm", str(c["rfm_segment"])),
                    "r_score": int(c["r_score"]),
                    "f_score": int(c["f_score"]),
                    "m_score": int(c["m_score"]),
                    "code": str(c["rfm_code"]),
                },
                "value_matrix": {
                    **entry("value_matrix", str(c["value_type"])),
                    "basis": str(c["value_basis"]),
                },
                "behaviour": entry("behaviour", int(c["cluster"])),
                "lifecycle": entry("lifecycle", str(c["lifecycle_stage"])),
                "nine_grid": {
                    **entry("nine_grid", str(c["nine_grid"])),
                    "strategy": str(c["nine_grid_strategy"]),
                    "value_tier": str(c["value_tier"]),
                    "growth_tier": str(c["growth_tier"]),
                },
            }
        out.append(found)
    return out


def value_indices(frame: Columns, n: int) -> list[float | None]:
    """Each customer's AHP value index (None: missing, or a model saved without it)."""
    index = frame.get(VALUE_INDEX_COLUMN)
    if index is None:
        return [None] * n
    return [v if math.isfinite(v) else None for v in np.asarray(index, dtype=float).tolist()]


def recommended_actions(
    frame: Columns, rows: Sequence[int], book: dict[str, Any]
) -> list[dict[str, Any]]:
    """``models.customer_view.recommended_actions`` of the customers at ``rows`` (the columns
    read as Python values once; a play and its text are built once per distinct key)."""
    rows = list(rows)
    if not rows:
        return []
    take = np.asarray(rows, dtype=np.int64)

    def column(name: str) -> list[Any]:
        return np.asarray(frame[name])[take].tolist()

    segment, band, high = column("rfm_segment"), column("risk_band"), column("high_value")
    clv, p_churn, at_risk = column("clv"), column("churn_probability"), column("value_at_risk")
    r, f, m = column("r_score"), column("f_score"), column("m_score")
    plays: dict[tuple[str, str, bool], dict[str, Any]] = {}
    texts: dict[tuple[Any, ...], dict[str, Any]] = {}
    out = []
    for k in range(len(rows)):
        key = (str(segment[k]), str(band[k]), bool(high[k]))
        play = plays.get(key)
        if play is None:
            play = plays[key] = pb.recommend(*key, book)
        if play["source"] == "high_value_high_risk":
            reason = (
                f"Predicted CLV {clv[k]:,.2f} is in the top fifth of customers and churn risk "
                f"is high (P {p_churn[k]:.2f}): {at_risk[k]:,.2f} of value at risk."
            )
            out.append({**play, "reason": reason})
            continue
        scores = (key, r[k], f[k], m[k])
        action = texts.get(scores)
        if action is None:
            reason = f"RFM {segment[k]} (R{r[k]} F{f[k]} M{m[k]}): {play['reason']}"
            action = texts[scores] = {**play, "reason": reason}
        out.append(dict(action))
    return out


def label_notes(frame: Columns, n: int) -> list[list[str]]:
    """``models.customer_view.label_notes`` on columns."""
    from models.customer_view import LABEL_NOTES

    r = np.asarray(frame["r_score"], dtype=float)
    lapsing = np.array(
        [str(v).lower().startswith("lapsing") for v in frame["cluster_name"]], dtype=bool
    )
    high = np.asarray(frame["high_value"], dtype=bool)
    tier = np.asarray(frame["value_tier"]).astype(str)
    alive = np.asarray(frame["probability_alive"], dtype=float)
    rules = ((r >= 4) & lapsing, high & (tier == "low"), (tier == "high") & (alive < 0.2))
    out: list[list[str]] = [[] for _ in range(n)]
    names = ("r_score", "cluster_name", "high_value", "value_tier", "probability_alive", "clv")
    for (_, text), applies in zip(LABEL_NOTES, rules, strict=True):
        for i in np.flatnonzero(applies).tolist():
            values = {c: _plain(frame[c][i]) for c in names}
            out[i].append(text.format(**values))
    return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


__all__ = [
    "Purchases",
    "Unsupported",
    "alerts",
    "attribute_columns",
    "check_models",
    "churn_feature_columns",
    "churn_inputs",
    "churn_scores",
    "clv_columns",
    "describe_segments",
    "label_notes",
    "main_channel",
    "reason_rows",
    "recommended_actions",
    "segment_columns",
    "summarize_purchases",
    "summary_rows",
    "value_indices",
    "with_churn",
]
