"""Campaign history as data: who was sent which offer when, and what they did afterwards.

A **campaigns file** (CSV or Parquet, read like the other inputs: see :mod:`training.data`
for file types, column-name matching, row numbering, value rules and quarantine) has one row
per customer contacted (or held out) in a campaign:

=================  ========================================================================
``customer_id``    required; text, stripped (leading zeros kept)
``campaign_id``    required; text, stripped
``sent_at``        required; the date (or date-time) the offer went out, in the accepted
                   date formats
``treatment``      required; the offer id, or ``control`` (any case) for the randomised
                   control group that got nothing
``cost``           optional; the contact's cost in currency units (a number >= 0; blank is
                   unknown)
``channel``        optional; text
``planned_offer``  optional; text. On a control row, the offer the customer would have got
                   had they not been held out (a planned campaign whose control group is
                   drawn from every offer's customers); on an offer's row blank or the offer
                   itself. When every control row of a campaign has one, the campaign report
                   compares each offer with the customers held out from it
=================  ========================================================================

Every other column is kept as read. A customer appears at most once per campaign.

Row problems (each row gets the first that applies, in this order):
``missing_customer_id``, ``missing_campaign_id``, ``bad_sent_at``, ``missing_treatment``,
``bad_cost`` (not a number), ``negative_cost``, ``bad_planned_offer`` (neither blank nor
the row's own offer; ``control`` on a control row), ``duplicate`` (a row identical to an
earlier one, e.g. an export run twice: always set aside in the quarantine file, never an
error, like repeated purchases), ``duplicate_assignment`` (a ``(customer_id, campaign_id)``
pair seen on an earlier row with something else different; the first is kept). With
``bad_rows="error"`` any of them but ``duplicate`` raises :class:`training.data.DataError` naming the file,
column, rows, values and count; with ``bad_rows="quarantine"`` the rows go to
``<quarantine_dir>/<file stem>_quarantine.csv`` with their ``_line`` and ``_reason``.

Outcomes are not a file: :func:`campaign_outcomes` reads them off the transactions after
``sent_at`` (retained = a purchase within the response window; spend and margin in it), and
:func:`uplift_training_frame` adds the customer's features as of the day before ``sent_at``,
the input of :mod:`models.uplift`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from models.churn.features import churn_features
from models.exceptions import InvalidInputError
from models.features import require_columns, summarize
from training.data import (
    CAMPAIGN_REASONS,
    DataError,
    LoadReport,
    Where,
    _as_text,
    _check_policy,
    _clean_text,
    _finish,
    _match_columns,
    _parse_datetimes,
    _parse_numbers,
    _Problems,
    _read_raw,
    _Reasons,
)

__all__ = [
    "CAMPAIGN_COLUMNS",
    "CONTROL",
    "DEFAULT_WINDOW_DAYS",
    "DataError",
    "OUTCOME_COLUMNS",
    "campaign_outcomes",
    "feature_columns",
    "load_campaigns",
    "uplift_training_frame",
]

CONTROL = "control"
DEFAULT_WINDOW_DAYS = 60
CAMPAIGN_COLUMNS = (
    ("customer_id", "campaign_id", "sent_at", "treatment"),
    ("cost", "channel", "planned_offer"),
)
# What campaign_outcomes adds to each campaign row.
OUTCOME_COLUMNS = ("retained", "n_purchases", "spend", "margin")


def _campaign_reasons(cols: dict[str, str]) -> Where:
    where: Where = {
        "missing_customer_id": ("customer_id", cols["customer_id"], "missing_customer_id"),
        "missing_campaign_id": ("campaign_id", cols["campaign_id"], "missing_campaign_id"),
        "bad_sent_at": ("sent_at", cols["sent_at"], "bad_sent_at"),
        "missing_treatment": ("treatment", cols["treatment"], "missing_treatment"),
        "duplicate": ("customer_id", None, "duplicate"),
        "duplicate_assignment": ("customer_id", cols["customer_id"], "duplicate_assignment"),
    }
    if "cost" in cols:
        where["bad_cost"] = ("cost", cols["cost"], "bad_cost")
        where["negative_cost"] = ("cost", cols["cost"], "negative_cost")
    if "planned_offer" in cols:
        where["bad_planned_offer"] = (
            "planned_offer",
            cols["planned_offer"],
            "bad_planned_offer",
        )
    return where


def load_campaigns(
    path: str | Path,
    *,
    bad_rows: str = "error",
    quarantine_dir: str | Path | None = None,
) -> tuple[pd.DataFrame, LoadReport]:
    """Load a campaigns file and validate it (see the module docstring for the columns and
    the row rules).

    Returns the frame -- ``customer_id``, ``campaign_id`` (str), ``sent_at`` (naive
    datetime64[ns]), ``treatment`` (str; the control group is always spelled ``control``),
    then ``cost``
    (float64, NaN when blank) and ``channel`` (str) when given, then the other columns --
    sorted by campaign, send time and customer with a fresh RangeIndex, and a
    :class:`training.data.LoadReport`.
    """
    _check_policy(bad_rows)
    raw = _read_raw(path)
    cols = _match_columns(raw.path, list(raw.frame.columns), *CAMPAIGN_COLUMNS)
    frame = raw.frame
    reasons = _Reasons(frame.index)

    customer_id = _as_text(frame[cols["customer_id"]])
    reasons.flag("missing_customer_id", customer_id.isna())
    campaign_id = _as_text(frame[cols["campaign_id"]])
    reasons.flag("missing_campaign_id", campaign_id.isna())
    sent_at, _ = _parse_datetimes(frame[cols["sent_at"]])
    reasons.flag("bad_sent_at", sent_at.isna())
    treatment = _as_text(frame[cols["treatment"]], na_tokens=True)
    reasons.flag("missing_treatment", treatment.isna())
    treatment = treatment.mask(treatment.str.lower() == CONTROL, CONTROL)

    parsed = pd.DataFrame(
        {
            "customer_id": customer_id,
            "campaign_id": campaign_id,
            "sent_at": sent_at,
            "treatment": treatment,
        },
        index=frame.index,
    )
    used = {cols[n] for n in ("customer_id", "campaign_id", "sent_at", "treatment")}
    if "cost" in cols:
        cost, given, _ = _parse_numbers(frame[cols["cost"]], cols["cost"])
        reasons.flag("bad_cost", given & cost.isna())
        reasons.flag("negative_cost", cost < 0)
        parsed["cost"] = cost
        used.add(cols["cost"])
    if "channel" in cols:
        parsed["channel"] = _clean_text(frame[cols["channel"]].astype("str"))
        used.add(cols["channel"])
    if "planned_offer" in cols:
        planned = _as_text(frame[cols["planned_offer"]], na_tokens=True)
        is_control = (treatment == CONTROL).fillna(False)
        reasons.flag(
            "bad_planned_offer",
            planned.notna()
            & (
                (is_control & (planned.str.lower() == CONTROL)).fillna(False)
                | (~is_control & treatment.notna() & (planned != treatment)).fillna(False)
            ),
        )
        parsed["planned_offer"] = planned.mask(~is_control, treatment)  # an offer's row: itself
        used.add(cols["planned_offer"])
    csv = raw.unit == "line"
    for name in frame.columns:
        if name not in used:
            values = frame[name]
            parsed[name] = values.mask(values == "") if csv else values

    reason = reasons.series()
    usable = (reason == "").to_numpy().copy()
    # an identical row again (an export run twice) is set aside like a repeated purchase;
    # the same customer twice in a campaign with anything else different is an error
    identical = np.zeros(len(frame), dtype=bool)
    identical[usable] = parsed[usable].astype("str").duplicated(keep="first").to_numpy()
    reason = reason.mask(identical, "duplicate")
    usable &= ~identical
    pair = customer_id.astype("str") + "\x00" + campaign_id.astype("str")
    repeated = np.zeros(len(frame), dtype=bool)
    repeated[usable] = pair[usable].duplicated(keep="first").to_numpy()
    reason = reason.mask(repeated, "duplicate_assignment")
    problems = _Problems(raw, reason, _campaign_reasons(cols), order=CAMPAIGN_REASONS)
    shown = customer_id.astype("str") + " in campaign " + campaign_id.astype("str")
    return _finish(
        problems,
        parsed,
        bad_rows=bad_rows,
        quarantine_dir=quarantine_dir,
        sort_by=["campaign_id", "sent_at", "customer_id"],
        shown_values={"duplicate_assignment": shown},
    )


# --------------------------------------------------------------------------------------------
# Outcomes
# --------------------------------------------------------------------------------------------


def data_margin_rate(transactions: pd.DataFrame) -> float | None:
    """(revenue − cost) / revenue over the purchases with a known cost, or None without
    costs: the rate :func:`models.clv.noncontractual.learn_margin` learns from the data."""
    if "cost" not in transactions.columns:
        return None
    known = transactions["cost"].notna().to_numpy()
    revenue = float(transactions["amount"].to_numpy(dtype=float)[known].sum())
    if not known.any() or revenue <= 0:
        return None
    return (revenue - float(transactions["cost"].to_numpy(dtype=float)[known].sum())) / revenue


def campaign_outcomes(
    campaigns: pd.DataFrame,
    transactions: pd.DataFrame,
    *,
    window_days: int = DEFAULT_WINDOW_DAYS,
    margin_rate: float | None = None,
) -> pd.DataFrame:
    """Each campaign row's outcome in the response window ``(sent_at, sent_at + window_days]``
    (a purchase at the very instant of ``sent_at`` is before the contact; a date-only
    ``sent_at`` is midnight, so purchases later that day count).

    Returns the campaign rows (same order, fresh RangeIndex, every input column) plus:

    * ``retained`` (bool): at least one purchase in the window;
    * ``n_purchases`` (int): transaction rows in the window;
    * ``spend`` (float): the sum of their amounts, currency units;
    * ``margin`` (float): their profit, ``amount − cost`` for purchases with a known
      ``cost``; purchases without one count ``amount × rate``, the rate being
      ``margin_rate`` when given, else the data's own margin rate over the purchases with a
      cost (:func:`data_margin_rate`), else 1.0 (margin is spend, as the CLV model does
      without cost data). ``frame.attrs["margin_rate"]`` records the rate used and
      ``frame.attrs["window_days"]`` the window.

    A customer with no transactions at all is not retained and spent 0.
    """
    require_columns(campaigns, ("customer_id", "sent_at"), "campaigns")
    require_columns(transactions, ("customer_id", "timestamp", "amount"), "transactions")
    if isinstance(window_days, bool) or not isinstance(window_days, int | np.integer):
        raise InvalidInputError("window_days must be a whole number of days", field="window_days")
    if window_days < 1:
        raise InvalidInputError("window_days must be >= 1", field="window_days")
    rate = margin_rate if margin_rate is not None else data_margin_rate(transactions)
    rate = 1.0 if rate is None else float(rate)

    n = len(campaigns)
    sent = pd.to_datetime(campaigns["sent_at"]).to_numpy(dtype="datetime64[ns]")
    rows = pd.DataFrame(
        {
            "_row": np.arange(n),
            "customer_id": campaigns["customer_id"].astype("str").to_numpy(),
            "_sent": sent,
        }
    )
    amount = transactions["amount"].to_numpy(dtype=float)
    if "cost" in transactions.columns:
        cost = transactions["cost"].to_numpy(dtype=float)
        profit = np.where(np.isnan(cost), amount * rate, amount - cost)
    else:
        profit = amount * rate
    tx = pd.DataFrame(
        {
            "customer_id": transactions["customer_id"].astype("str").to_numpy(),
            "_time": pd.to_datetime(transactions["timestamp"]).to_numpy(dtype="datetime64[ns]"),
            "_amount": amount,
            "_profit": profit,
        }
    )
    joined = rows.merge(tx, on="customer_id", how="inner", sort=False)
    end = joined["_sent"] + pd.Timedelta(days=int(window_days))
    inside = (joined["_time"] > joined["_sent"]) & (joined["_time"] <= end)
    hit = joined.loc[inside.to_numpy(), ["_row", "_amount", "_profit"]]
    position = hit["_row"].to_numpy()
    n_purchases = np.bincount(position, minlength=n)
    spend = np.bincount(position, weights=hit["_amount"].to_numpy(), minlength=n)
    margin = np.bincount(position, weights=hit["_profit"].to_numpy(), minlength=n)

    out = campaigns.reset_index(drop=True).copy()
    out["retained"] = n_purchases > 0
    out["n_purchases"] = n_purchases.astype(np.int64)
    out["spend"] = np.round(spend, 2)
    out["margin"] = np.round(margin, 2)
    out.attrs["margin_rate"] = rate
    out.attrs["window_days"] = int(window_days)
    return out


# --------------------------------------------------------------------------------------------
# Training frame for the uplift models
# --------------------------------------------------------------------------------------------

AsOfRule = str | Callable[[pd.Timestamp], pd.Timestamp]


def feature_day(sent_at: pd.Timestamp, as_of_rule: AsOfRule = "day_before") -> pd.Timestamp:
    """The date the features of a contact sent at ``sent_at`` are computed as of:
    ``"day_before"`` (default) is the calendar day before the send day, so nothing of the
    send day (the contact itself, a same-day reaction) reaches the features; a callable maps
    the send time to the date itself."""
    stamp = pd.Timestamp(sent_at)
    if callable(as_of_rule):
        return pd.Timestamp(as_of_rule(stamp)).normalize()
    if as_of_rule == "day_before":
        return stamp.normalize() - pd.Timedelta(days=1)
    raise InvalidInputError(
        f"as_of_rule must be 'day_before' or a function of the send time, got {as_of_rule!r}",
        field="as_of_rule",
    )


def uplift_training_frame(
    campaigns: pd.DataFrame,
    transactions: pd.DataFrame,
    customers: pd.DataFrame | None = None,
    as_of_rule: AsOfRule = "day_before",
    *,
    window_days: int = DEFAULT_WINDOW_DAYS,
    margin_rate: float | None = None,
    trend_window_days: int = 90,
) -> pd.DataFrame:
    """One row per campaign row: the campaign columns, the outcomes of
    :func:`campaign_outcomes` and the customer's churn features
    (:func:`models.churn.features.churn_features`: the shared summary, gap and trend
    features, complaints as of the date, customer attributes, ``main_channel``) as of
    :func:`feature_day` of its ``sent_at``.

    Campaign rows with the same feature day share one feature computation. A customer with
    no purchase by the feature day gets missing features (a contact before the first
    purchase). The feature columns are listed in ``frame.attrs["features"]`` (also
    :func:`feature_columns`); the treatment is the ``treatment`` column (``control`` or an
    offer id), the outcomes ``retained``, ``spend`` and ``margin``.
    """
    require_columns(campaigns, ("customer_id", "sent_at", "treatment"), "campaigns")
    outcomes = campaign_outcomes(
        campaigns, transactions, window_days=window_days, margin_rate=margin_rate
    )
    sent_days = pd.to_datetime(outcomes["sent_at"]).map(lambda s: feature_day(s, as_of_rule))
    parts: list[pd.DataFrame] = []
    customer_ids = outcomes["customer_id"].astype("str")
    for day in sorted(set(sent_days)):
        rows = np.flatnonzero((sent_days == day).to_numpy())
        ids = customer_ids.iloc[rows]
        mine = transactions[transactions["customer_id"].astype("str").isin(set(ids))]
        summary = summarize(mine, day, trend_window_days=trend_window_days)
        features = churn_features(
            mine, day, customers, trend_window_days=trend_window_days, summary=summary
        )
        part = features.reindex(ids.to_numpy())
        part.index = pd.Index(rows, name=None)
        parts.append(part)
    features = pd.concat(parts).sort_index() if parts else pd.DataFrame(index=outcomes.index)
    features = features.drop(columns=[c for c in features.columns if c in outcomes.columns])
    frame = pd.concat([outcomes, features.set_axis(outcomes.index)], axis=1)
    frame.attrs["features"] = list(features.columns)
    frame.attrs["window_days"] = outcomes.attrs["window_days"]
    frame.attrs["margin_rate"] = outcomes.attrs["margin_rate"]
    return frame


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The feature columns of an :func:`uplift_training_frame` (its ``attrs["features"]``,
    or every column that is not a campaign or outcome column when the attrs were lost)."""
    if "features" in frame.attrs:
        return [c for c in frame.attrs["features"] if c in frame.columns]
    known = {*CAMPAIGN_COLUMNS[0], *CAMPAIGN_COLUMNS[1]}
    return [c for c in frame.columns if c not in known and c not in OUTCOME_COLUMNS]
