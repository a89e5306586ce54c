"""CLV for discrete-opportunity businesses: BG/BB transactions per period × Gamma-Gamma spend.

In a discrete-opportunity business each customer transacts or not in each period: yearly
donations, subscriptions renewed per month. :class:`DiscreteCLV` turns purchase history into
per-period opportunities, fits the BG/BB model (Fader, Hardie & Shang 2010) on them, and
values the customer as the discounted sum of the expected transactions of each coming period
× the expected spend (Gamma-Gamma, as :class:`models.clv.CLVModel`) × the margin.

**Periods** have equal lengths (:data:`PERIOD_DAYS`: week 7 days, month 365.25/12, quarter
365.25/4, year 365.25) and are counted back from the end of the ``as_of`` day: the latest
period ends at ``as_of``, so every period counted is complete. Period 0 holds the customer's
first purchase (it is not an opportunity); for each customer

- ``periods`` (n): the periods after the first, ``⌊tenure_days / length⌋``;
- ``period_frequency`` (x): those of them with at least one purchase;
- ``period_recency`` (t_x): the last of them with a purchase (0 when none).

From purchases these are exact (:func:`period_summary`). **A summary in days** (``frequency``,
``recency``, ``T``, no purchases) is converted (:func:`periods_from_days`): n = ⌊T / length⌋
and t_x = n − ⌊(T − recency) / length⌋ (0 when frequency is 0) are exact, as the periods are
counted back from ``as_of``; x = min(frequency, t_x) is exact when no two repeat purchases
fall in one period, and an upper bound otherwise. Rows of a table whose period columns are
missing (NaN) are converted; rows that have them use them.

A customer's transaction in a period is one or more purchase days; ``purchases_per_period_``
(repeat purchase days per purchasing period in the training data, 1.0 for strictly discrete
data) turns expected transacting periods into expected purchases, so ``expected_purchases``
and ``expected_spend`` (per purchase) mean what they mean for the other CLV models, and the
holdout compares all of them on the same purchases.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import special
from sklearn.base import BaseEstimator

from models.clv._mle import delta_standard_error, distinct_codes
from models.clv.discrete import BGBB
from models.clv.noncontractual import (
    GammaGamma,
    _check_repeat_buyers,
    check_rft,
    clv_frame,
    customer_margins,
    learn_margin,
)
from models.exceptions import InvalidInputError, NotFittedError
from models.features import end_of_day, require_columns

__all__ = [
    "PERIOD_COLUMNS",
    "PERIOD_DAYS",
    "DiscreteCLV",
    "detect_period",
    "input_columns",
    "input_example",
    "period_days",
    "period_summary",
    "periods_from_days",
    "with_period_columns",
]

PERIOD_DAYS: dict[str, float] = {
    "week": 7.0,
    "month": 365.25 / 12,
    "quarter": 365.25 / 4,
    "year": 365.25,
}
# The per-period history columns a DiscreteCLV model reads beside the summary (optional:
# missing values are converted from the summary's days).
PERIOD_COLUMNS = ["period_frequency", "period_recency", "periods"]

# Discrete-looking data (:func:`detect_period`): this share of the gaps between a customer's
# purchase days within DETECT_TOLERANCE of a period of a whole number of periods.
DETECT_SHARE = 0.8
DETECT_TOLERANCE = 0.1
DETECT_MIN_GAPS = 50
DETECT_CUSTOMERS = 100_000


def period_days(period: str) -> float:
    """The length of ``period`` in days; a clear error for an unknown name."""
    if period not in PERIOD_DAYS:
        raise InvalidInputError(
            f"period must be one of {', '.join(PERIOD_DAYS)}, got {period!r}", field="period"
        )
    return PERIOD_DAYS[period]


def period_summary(transactions: pd.DataFrame, as_of: object, period: str) -> pd.DataFrame:
    """Per customer with a purchase on or before ``as_of``: :data:`PERIOD_COLUMNS` (floats),
    indexed by ``customer_id`` (text) and sorted by it, as :func:`models.features.summarize`.

    Periods are ``period`` long, counted back from the end of the ``as_of`` day (module text).
    """
    length = period_days(period)
    require_columns(transactions, ("customer_id", "timestamp"))
    cutoff = end_of_day(as_of)
    stamps = pd.to_datetime(transactions["timestamp"])
    keep = (stamps <= cutoff).to_numpy()
    if not keep.any():
        return pd.DataFrame(columns=PERIOD_COLUMNS, index=pd.Index([], name="customer_id"))
    days_back = (cutoff.normalize() - stamps[keep].dt.normalize()).dt.days.to_numpy()
    back = np.floor(days_back / length).astype(np.int64)
    frame = pd.DataFrame(
        {"customer_id": transactions.loc[keep, "customer_id"].astype(str).to_numpy(), "back": back}
    ).drop_duplicates()
    per = frame.groupby("customer_id", sort=True)["back"].agg(["max", "min", "size"])
    # The first purchase's period is the one furthest back (n of them after it); every other
    # distinct period holding a purchase is a repeat one.
    n = per["max"].to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "period_frequency": per["size"].to_numpy(dtype=float) - 1,
            "period_recency": n - per["min"].to_numpy(dtype=float),
            "periods": n,
        },
        index=per.index.astype(str).rename("customer_id"),
    )


def periods_from_days(
    frequency: Any, recency: Any, T: Any, period: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, n) of a summary in days (module text: n and t_x exact, x an upper bound)."""
    length = period_days(period)
    f, r, t = check_rft(frequency, recency, T)
    n = np.floor(t / length)
    t_x = np.where(f > 0, n - np.floor((t - r) / length), 0.0)
    return np.minimum(f, t_x), t_x, n


def input_columns(model: Any, base: list[str]) -> list[str]:
    """The CLV model's input columns: ``base`` (the summary's), and :data:`PERIOD_COLUMNS`
    for a :class:`DiscreteCLV`."""
    return [*base, *PERIOD_COLUMNS] if isinstance(model, DiscreteCLV) else list(base)


def input_example(model: Any, summary: pd.DataFrame, base: list[str]) -> pd.DataFrame:
    """The registered model's input example: the first five rows of ``summary`` with
    :func:`input_columns`. For a :class:`DiscreteCLV` the last row's period columns are
    missing, as for a customer sent as a summary in days (converted), so that the signature
    marks them optional: a caller may send them, or not."""
    example = summary.head(5)[input_columns(model, base)]
    if isinstance(model, DiscreteCLV) and len(example) > 1:
        example = example.copy()
        example.loc[example.index[-1], PERIOD_COLUMNS] = np.nan
    return example


def with_period_columns(
    model: Any, summary: pd.DataFrame, transactions: pd.DataFrame, as_of: object
) -> pd.DataFrame:
    """``summary`` with the exact :data:`PERIOD_COLUMNS` of its customers from
    ``transactions`` when ``model`` is a :class:`DiscreteCLV` (customers without purchases
    there keep missing values: converted from the summary's days); else ``summary`` as it
    is."""
    if not isinstance(model, DiscreteCLV):
        return summary
    exact = period_summary(transactions, as_of, model.period)
    return summary.drop(columns=PERIOD_COLUMNS, errors="ignore").join(exact, how="left")


def detect_period(transactions: pd.DataFrame, as_of: object) -> tuple[str | None, float]:
    """(the period the purchases keep to, the share of gaps that fit it), or (None, best share).

    The data look discrete when at least :data:`DETECT_SHARE` of the gaps between a customer's
    consecutive purchase days (of at least :data:`DETECT_MIN_GAPS` gaps) lie within
    :data:`DETECT_TOLERANCE` of a period of a whole number (≥ 1) of periods: monthly renewals
    (gaps of 28 to 31 days, or 59 to 62 after a skipped month), yearly gifts on similar dates.
    The longest such period wins (yearly gaps are also whole numbers of months). Purchases at
    random times fit a period by chance about a fifth of the time. The gaps of at most
    :data:`DETECT_CUSTOMERS` customers are read (the first ones in the file).
    """
    stamps = pd.to_datetime(transactions["timestamp"])
    keep = (stamps <= end_of_day(as_of)).to_numpy()
    codes, _ = pd.factorize(transactions["customer_id"].astype(str).to_numpy()[keep])
    days = stamps[keep].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)
    sample = codes < DETECT_CUSTOMERS
    codes, days = codes[sample].astype(np.int64), days[sample]
    if len(days) < 2:
        return None, 0.0
    start = int(days.min())
    span = int(days.max()) - start + 1
    pairs = np.unique(codes * span + (days - start))  # distinct days, by customer then day
    who, day = pairs // span, pairs % span
    gaps = np.diff(day)[who[1:] == who[:-1]]
    if len(gaps) < DETECT_MIN_GAPS:
        return None, 0.0
    best = 0.0
    for name in sorted(PERIOD_DAYS, key=PERIOD_DAYS.__getitem__, reverse=True):
        length = PERIOD_DAYS[name]
        whole = np.round(gaps / length)
        fits = (whole >= 1) & (np.abs(gaps - whole * length) <= DETECT_TOLERANCE * length)
        share = float(fits.mean())
        if share >= DETECT_SHARE:
            return name, share
        best = max(best, share)
    return None, best


def _check_periods(x: np.ndarray, t_x: np.ndarray, n: np.ndarray, rows: np.ndarray) -> None:
    """The given period columns (at ``rows``) describe a possible history; else an error
    naming the column and the first rows."""
    names = dict(zip(("x", "t_x", "n"), PERIOD_COLUMNS, strict=True))
    values = {"x": x[rows], "t_x": t_x[rows], "n": n[rows]}
    problems = [
        (names[k], (v < 0) | (v != np.floor(v)), "is not a whole number ≥ 0")
        for k, v in values.items()
    ]
    problems += [
        (names["x"], values["x"] > values["t_x"], f"is greater than {names['t_x']}"),
        (names["t_x"], values["t_x"] > values["n"], f"is greater than {names['n']}"),
        (
            names["t_x"],
            (values["x"] == 0) & (values["t_x"] > 0),
            f"is positive with {names['x']} 0",
        ),
        (
            names["x"],
            (values["x"] > 0) & (values["t_x"] == 0),
            f"is positive with {names['t_x']} 0",
        ),
    ]
    for field, mask, what in problems:
        if mask.any():
            bad = rows[np.flatnonzero(mask)][:5].tolist()
            raise InvalidInputError(f"{field} {what} (rows {bad})", field=field, rows=bad)


def period_weights(periods: float) -> np.ndarray:
    """Weights of periods 1, 2, ... in a span of ``periods`` (fractional: the last period
    counts for its fraction)."""
    whole = int(np.floor(periods + 1e-9))
    part = periods - whole
    return np.r_[np.ones(whole), [part] if part > 1e-9 else []]


class _Rows:
    """(x, t_x, n) rows and their distinct patterns: the per-period forecasts depend on the
    pattern only (a million customers have a few thousand)."""

    def __init__(self, x: np.ndarray, t_x: np.ndarray, n: np.ndarray):
        self.x, self.t_x, self.n = x, t_x, n
        size = int(n.max(initial=0)) + 1
        key = (x.astype(np.int64) * size + t_x.astype(np.int64)) * size + n.astype(np.int64)
        codes, self.inverse = distinct_codes(key, size**3)
        self.ux = (codes // (size * size)).astype(float)
        self.ut = (codes // size % size).astype(float)
        self.un = (codes % size).astype(float)


class DiscreteCLV(BaseEstimator):
    """BG/BB + Gamma-Gamma CLV; ``fit`` and ``predict`` take the summary of
    :func:`models.features.summarize` (days), with :data:`PERIOD_COLUMNS` where known
    (:func:`with_period_columns`); the module text says how days become periods.

    - ``period``: ``week``, ``month``, ``quarter`` or ``year`` (:data:`PERIOD_DAYS`).
    - ``horizon_days``: CLV horizon, in whole periods: round(horizon_days / period length),
      at least one (365 days: 12 months, 52 weeks, 4 quarters, 1 year).
    - ``discount_rate``: annual; a period k ahead is discounted by (1 + rate)^(−k·length/365.25)
      (its transactions counted at its end).
    - ``margin``: as :class:`models.clv.CLVModel`.

    ``predict`` returns the columns of :meth:`models.clv.CLVModel.predict`:
    ``expected_purchases`` (over the horizon: expected transacting periods ×
    ``purchases_per_period_``), ``probability_alive`` (alive at the next period),
    ``expected_spend`` (per purchase), ``clv`` with its 95 % interval, ``margin``.

    Fitted: ``bgbb_``, ``gamma_gamma_``, ``purchases_per_period_``, ``margin_``,
    ``margin_source_``, ``high_value_threshold_`` (80th percentile of training CLV).
    """

    purchase_model = "bgbb"  # the name the training run and the model card use
    bgbb_: BGBB
    gamma_gamma_: GammaGamma

    def __init__(
        self,
        period: str = "month",
        horizon_days: int = 365,
        discount_rate: float = 0.10,
        margin: float | None = None,
    ):
        self.period = period
        self.horizon_days = horizon_days
        self.discount_rate = discount_rate
        self.margin = margin

    # --- periods --------------------------------------------------------------------------
    @property
    def period_days(self) -> float:
        return period_days(self.period)

    @property
    def horizon_periods(self) -> int:
        return max(1, int(round(self.horizon_days / self.period_days)))

    def periods_of(self, summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, t_x, n) per row: the period columns where all three are known, else converted
        from the summary's days."""
        for column in ("frequency", "recency", "T"):
            if column not in summary.columns:
                raise InvalidInputError(f"missing the column '{column}'", field=column)
        x, t_x, n = periods_from_days(
            summary["frequency"].to_numpy(dtype=float),
            summary["recency"].to_numpy(dtype=float),
            summary["T"].to_numpy(dtype=float),
            self.period,
        )
        if not set(PERIOD_COLUMNS) <= set(summary.columns):
            return x, t_x, n
        given = [summary[c].to_numpy(dtype=float, na_value=np.nan) for c in PERIOD_COLUMNS]
        known = np.isfinite(given[0]) & np.isfinite(given[1]) & np.isfinite(given[2])
        if known.any():
            rows = np.flatnonzero(known)
            _check_periods(given[0], given[1], given[2], rows)
            x, t_x, n = x.copy(), t_x.copy(), n.copy()
            x[rows], t_x[rows], n[rows] = given[0][rows], given[1][rows], given[2][rows]
        return x, t_x, n

    # --- fit ------------------------------------------------------------------------------
    def fit(
        self, summary: pd.DataFrame, y: Any = None, *, start_from: DiscreteCLV | None = None
    ) -> DiscreteCLV:
        """Fit BG/BB on every customer's periods and Gamma-Gamma on the repeat buyers.

        ``start_from``: a fitted model (e.g. on the calibration period) whose parameters
        start both fits."""
        x, t_x, n = self.periods_of(summary)
        observed = int((n >= 2).sum())  # with one opportunity, dropout is not identified
        if observed < 20:
            raise InvalidInputError(
                f"BG/BB needs at least 20 customers with two whole {self.period}s after their "
                f"first purchase's; {observed} of {len(n)} have them: use a shorter period "
                f"than --period {self.period}, or more history",
                field="period",
            )
        frequency = summary["frequency"].to_numpy(dtype=float)
        monetary = summary["monetary_value"].to_numpy(dtype=float)
        repeat = (frequency > 0) & (monetary > 0)
        _check_repeat_buyers(int(repeat.sum()))
        bgbb_start = gg_start = None
        if start_from is not None:
            start_from._check_fitted()
            bgbb_start = dict(start_from.bgbb_.params_)
            gg_start = dict(start_from.gamma_gamma_.params_)
        self.bgbb_ = BGBB(initial_params=bgbb_start).fit(x, t_x, n)
        self.gamma_gamma_ = GammaGamma(initial_params=gg_start).fit(
            frequency[repeat], monetary[repeat]
        )
        buying = x > 0
        self.purchases_per_period_ = (
            float(frequency[buying].sum() / x[buying].sum()) if buying.any() else 1.0
        )
        self.margin_, self.margin_source_ = learn_margin(summary, self.margin)
        value, _ = self._value(summary, _Rows(x, t_x, n))
        self.high_value_threshold_ = float(np.quantile(value(np.exp(self._log_params())), 0.8))
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "bgbb_"):
            raise NotFittedError("DiscreteCLV is not fitted; call fit first")

    def _log_params(self) -> np.ndarray:
        return np.r_[self.bgbb_.log_params_, self.gamma_gamma_.log_params_]

    # --- forecasts ------------------------------------------------------------------------
    def _period_terms(self, params: np.ndarray, rows: _Rows, periods: int) -> np.ndarray:
        """P(alive and transacting in period n + k | history), k = 1..``periods``, per
        distinct pattern (patterns × periods)."""
        alpha, beta, gamma, delta = params
        x, t_x, n = rows.ux, rows.ut, rows.un
        with np.errstate(all="ignore"):
            log_l = self.bgbb_._loglik_rows(params, (x, t_x, n))
            head = (
                special.betaln(alpha + x + 1, beta + n - x)
                - special.betaln(alpha, beta)
                - special.betaln(gamma, delta)
                - log_l
            )
            k = np.arange(1, periods + 1, dtype=float)
            return np.exp(head[:, None] + special.betaln(gamma, delta + n[:, None] + k[None, :]))

    def _transactions(
        self, params: np.ndarray, rows: _Rows, periods: float, discounted: bool
    ) -> np.ndarray:
        """Expected transacting periods in the next ``periods`` (fractional allowed), per
        row; ``discounted``: each period's by its discount factor."""
        weights = period_weights(periods)
        if discounted:
            k = np.arange(1, len(weights) + 1)
            weights = weights * (1 + self.discount_rate) ** (-k * self.period_days / 365.25)
        # a sum per row, not a matrix product: a customer's number is the same in any batch
        per_pattern = (self._period_terms(params, rows, len(weights)) * weights).sum(axis=1)
        return per_pattern[rows.inverse]

    def forecast_purchases(self, days: float, summary: pd.DataFrame) -> np.ndarray:
        """Expected purchase days in the next ``days`` days (``days`` / period length
        periods, the last one in part) × ``purchases_per_period_``: what the holdout
        compares with the purchases that happened."""
        self._check_fitted()
        rows = _Rows(*self.periods_of(summary))
        periods = float(days) / self.period_days
        expected = self._transactions(self.bgbb_._param_array(), rows, periods, False)
        return expected * self.purchases_per_period_

    def expected_purchases_new(self, days: Any) -> np.ndarray:
        """Expected repeat purchases of a new customer within ``days`` of the first purchase
        (whole periods elapsed × ``purchases_per_period_``)."""
        self._check_fitted()
        periods = np.floor(np.asarray(days, dtype=float) / self.period_days)
        return self.bgbb_.expected_purchases_new(periods) * self.purchases_per_period_

    def _value(
        self, summary: pd.DataFrame, rows: _Rows
    ) -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, np.ndarray]]:
        """(CLV per customer as a function of the BG/BB and Gamma-Gamma parameters, the spend
        and margins it uses); each part is computed once per distinct parameter set."""
        frequency = summary["frequency"].to_numpy(dtype=float)
        monetary = np.nan_to_num(summary["monetary_value"].to_numpy(dtype=float))
        margins = customer_margins(summary, self.margin_, self.margin_source_)
        per_period = self.purchases_per_period_
        counts_of: dict[tuple[float, ...], np.ndarray] = {}
        spend_of: dict[tuple[float, ...], np.ndarray] = {}

        def value(p: np.ndarray) -> np.ndarray:
            bg_key, gg_key = tuple(p[:4]), tuple(p[4:])
            if bg_key not in counts_of:
                counts_of[bg_key] = self._transactions(p[:4], rows, self.horizon_periods, True)
            if gg_key not in spend_of:
                gg = dict(zip(self.gamma_gamma_._param_names, p[4:], strict=True))
                spend_of[gg_key] = self.gamma_gamma_.expected_spend(frequency, monetary, gg)
            return counts_of[bg_key] * per_period * spend_of[gg_key] * margins

        return value, {"frequency": frequency, "monetary": monetary, "margins": margins}

    def predict(self, summary: pd.DataFrame) -> pd.DataFrame:
        """Per customer: the columns of :meth:`models.clv.CLVModel.predict` (class text)."""
        self._check_fitted()
        for column in ("monetary_value",):
            if column not in summary.columns:
                raise InvalidInputError(f"missing the column '{column}'", field=column)
        rows = _Rows(*self.periods_of(summary))
        value, parts = self._value(summary, rows)
        log_params = self._log_params()
        cov = np.zeros((7, 7))
        cov[:4, :4] = self.bgbb_.log_covariance_
        cov[4:, 4:] = self.gamma_gamma_.log_covariance_
        clv = value(np.exp(log_params))
        se = delta_standard_error(value, log_params, cov, clv)
        params = self.bgbb_._param_array()
        expected = self._transactions(params, rows, self.horizon_periods, False)
        alive = self.bgbb_.probability_alive(rows.ux, rows.ut, rows.un)[rows.inverse]
        return clv_frame(
            summary.index,
            expected_purchases=expected * self.purchases_per_period_,
            probability_alive=alive,
            expected_spend=self.gamma_gamma_.expected_spend(parts["frequency"], parts["monetary"]),
            clv=clv,
            se=se,
            margins=parts["margins"],
        )

    def params(self) -> dict[str, float]:
        """All fitted parameters, prefixed by model."""
        self._check_fitted()
        out = {f"bgbb_{k}": v for k, v in self.bgbb_.params_.items()}
        out.update({f"gg_{k}": v for k, v in self.gamma_gamma_.params_.items()})
        out["purchases_per_period"] = self.purchases_per_period_
        out["margin"] = self.margin_
        return out
