"""Customer lifetime value: BG/NBD and Pareto/NBD purchases, Gamma-Gamma spend, discounted CLV.

Own vectorised numpy/scipy code (not ``lifetimes``): log-space likelihoods, fits on collapsed
(distinct-row) data with weights, an analytic gradient for BG/NBD and Gamma-Gamma, Newton
polish to the published precision, and standard errors from the Hessian. The discrete-time
and contractual models (BG/BB, shifted-beta-geometric) live in :mod:`models.clv.discrete`.

References: Fader, Hardie & Lee (2005) "Counting your customers the easy way" (BG/NBD);
Schmittlein, Morrison & Colombo (1987) and Fader & Hardie (2005) "A note on deriving the
Pareto/NBD model" (Pareto/NBD); Fader, Hardie & Lee (2005) "RFM and CLV" (Gamma-Gamma).

Time is in one unit throughout a model (the unit of ``recency`` and ``T`` at fit time,
e.g. weeks); discount rates are annual and converted with ``periods_per_year``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import special
from sklearn.base import BaseEstimator

from models.clv._mle import (
    Z95,
    MLEModel,
    as_array,
    check_weights,
    collapse,
    delta_standard_error,
)
from models.exceptions import InvalidInputError, NotFittedError

__all__ = [
    "CLV_INPUT_COLUMNS",
    "BGNBD",
    "CLVModel",
    "GammaGamma",
    "ParetoNBD",
    "check_rft",
]

WEEKS_PER_YEAR = 365.25 / 7
# What the registered CLV model takes (non-contractual models use the first four; margins and
# the contractual model use the rest): the training pipeline's input example and the service's
# OpenAPI example both use this list.
CLV_INPUT_COLUMNS = [
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "margin_rate",
    "tenure_days",
    "total_revenue",
]


def check_rft(frequency: Any, recency: Any, T: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate (frequency, recency, T): finite, frequency ≥ 0, 0 ≤ recency ≤ T."""
    x = as_array("frequency", frequency)
    t_x = as_array("recency", recency)
    t = as_array("T", T)
    if not (len(x) == len(t_x) == len(t)):
        raise InvalidInputError("frequency, recency and T must have the same length")
    checks = (
        ("frequency", x < 0, "is negative"),
        ("frequency", x != np.floor(x), "is not a whole number"),
        ("recency", t_x < 0, "is negative"),
        ("recency", t_x > t + 1e-9, "is greater than T"),
        ("recency", (x == 0) & (t_x > 0), "is positive for a customer with frequency 0"),
    )
    for field, mask, what in checks:
        if mask.any():
            rows = np.flatnonzero(mask)[:5].tolist()
            raise InvalidInputError(f"{field} {what} (rows {rows})", field=field, rows=rows)
    return x, t_x, t


# discounted_purchases evaluates all months at once up to this many customers
_BROADCAST_ROWS = 4096


class _Indexed:
    """Rows plus their distinct values per column, so per-value work is done once."""

    def __init__(self, x: np.ndarray, t_x: np.ndarray, t: np.ndarray):
        self.x, self.t_x, self.t = x, t_x, t
        self.ux, self.ix = np.unique(x, return_inverse=True)
        self.ut, self.it = np.unique(t_x, return_inverse=True)
        self.uT, self.iT = np.unique(t, return_inverse=True)


class _PurchaseModel(MLEModel):
    """Common API of the continuous-time purchase models (BG/NBD, Pareto/NBD)."""

    def __init__(self, initial_params: dict[str, float] | None = None):
        self.initial_params = initial_params

    def _initial(self, t: np.ndarray) -> dict[str, float]:
        raise NotImplementedError

    def fit(self, frequency: Any, recency: Any, T: Any, weights: Any = None) -> Any:
        """Maximum-likelihood fit; identical rows are collapsed into weights. Returns self."""
        x, t_x, t = check_rft(frequency, recency, T)
        w = check_weights(weights, len(x))
        (x, t_x, t), w = collapse(x, t_x, t, weights=w)
        init = self.initial_params or self._initial(t)
        self._fit_mle(_Indexed(x, t_x, t), w, np.log([init[n] for n in self._param_names]))
        return self

    def log_likelihood_rows(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """Per-customer log-likelihood at the fitted parameters."""
        x, t_x, t = check_rft(frequency, recency, T)
        return self._loglik_rows(self._param_array(), _Indexed(x, t_x, t))

    def _log_odds_dead(self, params: np.ndarray, x, t_x, t) -> np.ndarray:
        raise NotImplementedError

    def _conditional_expectation(self, params: np.ndarray, horizon, x, t_x, t) -> np.ndarray:
        raise NotImplementedError

    def probability_alive(
        self, frequency: Any, recency: Any, T: Any, params: dict[str, float] | None = None
    ) -> np.ndarray:
        """P(the customer is still active at T | history), 0–1."""
        x, t_x, t = check_rft(frequency, recency, T)
        with np.errstate(all="ignore"):
            return special.expit(-self._log_odds_dead(self._param_array(params), x, t_x, t))

    def expected_purchases(
        self, t: Any, frequency: Any, recency: Any, T: Any, params: dict[str, float] | None = None
    ) -> np.ndarray:
        """Expected repeat purchases in the next ``t`` time units, given the history."""
        x, t_x, big_t = check_rft(frequency, recency, T)
        horizon = np.asarray(t, dtype=float)
        with np.errstate(all="ignore"):
            return self._conditional_expectation(self._param_array(params), horizon, x, t_x, big_t)

    def discounted_purchases(
        self,
        params: np.ndarray,
        horizon: float,
        discount_rate: float,
        x: np.ndarray,
        t_x: np.ndarray,
        t: np.ndarray,
        periods_per_year: float = WEEKS_PER_YEAR,
    ) -> np.ndarray:
        """Σ over months of the expected purchases in each month × its discount factor.

        Up to :data:`_BROADCAST_ROWS` customers, all months are evaluated in one broadcast
        call (a served request's few rows: one call instead of one per month); the sum is
        accumulated month by month either way, so both give the same numbers bit for bit.
        """
        n_steps = max(1, int(round(12 * horizon / periods_per_year)))
        step = horizon / n_steps
        if np.size(x) <= _BROADCAST_ROWS:
            ends = np.array([k * step for k in range(1, n_steps + 1)])
            factors = np.array(
                [
                    (1 + discount_rate) ** (-(k * step) / periods_per_year)
                    for k in range(1, n_steps + 1)
                ]
            )
            column = (np.asarray(x)[:, None], np.asarray(t_x)[:, None], np.asarray(t)[:, None])
            with np.errstate(all="ignore"):
                cumulative = self._conditional_expectation(params, ends[None, :], *column)
            cumulative = np.broadcast_to(cumulative, (np.size(x), n_steps))
            monthly = np.diff(cumulative, axis=1, prepend=0.0) * factors
            return np.add.accumulate(monthly, axis=1)[:, -1]
        return self._discounted_purchases_loop(
            params, n_steps, step, discount_rate, x, t_x, t, periods_per_year
        )

    def _discounted_purchases_loop(
        self, params, n_steps, step, discount_rate, x, t_x, t, periods_per_year
    ) -> np.ndarray:
        """:meth:`discounted_purchases` month by month (memory of one month at a time)."""
        previous = np.zeros_like(x, dtype=float)
        total = np.zeros_like(x, dtype=float)
        with np.errstate(all="ignore"):
            for k in range(1, n_steps + 1):
                cumulative = self._conditional_expectation(params, k * step, x, t_x, t)
                factor = (1 + discount_rate) ** (-(k * step) / periods_per_year)
                total += (cumulative - previous) * factor
                previous = cumulative
        return total

    def clv(
        self,
        horizon: float,
        discount_rate: float,
        margin: Any,
        frequency: Any,
        recency: Any,
        T: Any,
        spend: Any,
        periods_per_year: float = WEEKS_PER_YEAR,
    ) -> pd.DataFrame:
        """Discounted CLV over ``horizon`` time units with its 95 % interval.

        ``spend`` is the expected spend per purchase (currency; e.g. from
        :meth:`GammaGamma.expected_spend`), ``margin`` the profit share of spend and
        ``discount_rate`` annual. The interval reflects this model's parameter uncertainty
        (delta method); returns columns ``clv``, ``clv_lower``, ``clv_upper``.
        """
        x, t_x, t = check_rft(frequency, recency, T)
        value_per_purchase = np.asarray(spend, dtype=float) * np.asarray(margin, dtype=float)

        def fn(p: np.ndarray) -> np.ndarray:
            purchases = self.discounted_purchases(
                p, horizon, discount_rate, x, t_x, t, periods_per_year
            )
            return purchases * value_per_purchase

        value, low, high = self.delta_interval(fn)
        return pd.DataFrame({"clv": value, "clv_lower": low, "clv_upper": high})


class BGNBD(_PurchaseModel):
    """Beta-geometric/NBD model of repeat purchases (non-contractual, continuous time).

    ``fit(frequency, recency, T, weights=None)``: repeat purchases, time of the last purchase
    since the first, and time since the first purchase, in one time unit (e.g. weeks).
    ``params_``: ``r``, ``alpha`` (Gamma purchase-rate heterogeneity), ``a``, ``b`` (Beta
    dropout heterogeneity).
    """

    _param_names = ("r", "alpha", "a", "b")

    def _initial(self, t: np.ndarray) -> dict[str, float]:
        return {"r": 0.5, "alpha": max(float(np.median(t)), 1.0), "a": 1.5, "b": 3.0}

    @staticmethod
    def _pieces(params: np.ndarray, d: _Indexed):
        r, alpha, a, b = params
        ux = d.ux
        repeat = ux > 0
        x_term = (
            special.gammaln(r + ux)
            - special.gammaln(r)
            + r * np.log(alpha)
            + special.betaln(a, b + ux)
            - special.betaln(a, b)
        )
        log_bx1 = np.log(np.where(repeat, b + ux - 1, 1.0))
        ln_a_t = np.log(alpha + d.uT)[d.iT]
        ln_a_tx = np.log(alpha + d.ut)[d.it]
        rx = r + d.x
        a3 = -rx * ln_a_t
        a4 = np.where(repeat[d.ix], np.log(a) - log_bx1[d.ix] - rx * ln_a_tx, -np.inf)
        return x_term, a3, a4, ln_a_t, ln_a_tx

    def _loglik_rows(self, params: np.ndarray, d: _Indexed) -> np.ndarray:
        x_term, a3, a4, _, _ = self._pieces(params, d)
        return x_term[d.ix] + np.logaddexp(a3, a4)

    def _loglik_grad(self, params: np.ndarray, d: _Indexed, w: np.ndarray) -> np.ndarray:
        r, alpha, a, b = params
        _, a3, a4, ln_a_t, ln_a_tx = self._pieces(params, d)
        total = np.logaddexp(a3, a4)
        w4 = np.exp(a4 - total)
        w3 = 1.0 - w4
        ux = d.ux
        wx = np.bincount(d.ix, weights=w, minlength=len(ux))
        rx = r + d.x
        inv_t = (1.0 / (alpha + d.uT))[d.iT]
        inv_tx = (1.0 / (alpha + d.ut))[d.it]
        inv_bx1 = np.where(ux > 0, 1.0 / np.where(ux > 0, b + ux - 1, 1.0), 0.0)[d.ix]
        ww3, ww4 = w * w3, w * w4
        g_r = np.dot(wx, special.digamma(r + ux) - special.digamma(r) + np.log(alpha))
        g_r -= np.dot(ww3, ln_a_t) + np.dot(ww4, ln_a_tx)
        g_alpha = wx.sum() * r / alpha - np.dot(ww3, rx * inv_t) - np.dot(ww4, rx * inv_tx)
        dab = special.digamma(a + b)
        g_a = np.dot(wx, dab - special.digamma(a + b + ux)) + ww4.sum() / a
        g_b = np.dot(
            wx, dab + special.digamma(b + ux) - special.digamma(b) - special.digamma(a + b + ux)
        )
        g_b -= np.dot(ww4, inv_bx1)
        return np.array([g_r, g_alpha, g_a, g_b]) * params

    def _log_odds_dead(self, params: np.ndarray, x, t_x, t) -> np.ndarray:
        r, alpha, a, b = params
        safe = np.where(x > 0, b + x - 1, 1.0)
        return np.where(
            x > 0,
            np.log(a) - np.log(safe) + (r + x) * (np.log(alpha + t) - np.log(alpha + t_x)),
            -np.inf,
        )

    def _conditional_expectation(self, params: np.ndarray, horizon, x, t_x, t) -> np.ndarray:
        r, alpha, a, b = params
        # Pfaff's transformation keeps 2F1 bounded on long histories: (1−z)^(r+x)·2F1(r+x,
        # b+x; a+b+x−1; z) = 2F1(r+x, a−1; a+b+x−1; −horizon/(α+T)).
        hyp = special.hyp2f1(r + x, a - 1, a + b + x - 1, -horizon / (alpha + t))
        numer = (a + b + x - 1) / (a - 1) * (1 - hyp)
        return numer * special.expit(-self._log_odds_dead(params, x, t_x, t))

    def expected_purchases_new(self, t: Any, params: dict[str, float] | None = None) -> np.ndarray:
        """E[X(t)]: repeat purchases in ``(0, t]`` of a customer just acquired."""
        r, alpha, a, b = self._param_array(params)
        t = np.asarray(t, dtype=float)
        hyp = special.hyp2f1(r, a - 1, a + b - 1, -t / alpha)
        return (a + b - 1) / (a - 1) * (1 - hyp)


class ParetoNBD(_PurchaseModel):
    """Pareto/NBD model of repeat purchases (non-contractual, continuous time).

    Same inputs as :class:`BGNBD`; ``params_``: ``r``, ``alpha`` (Gamma purchase rates),
    ``s``, ``beta`` (Gamma dropout rates: lifetimes are exponential).
    """

    _param_names = ("r", "alpha", "s", "beta")

    def _initial(self, t: np.ndarray) -> dict[str, float]:
        scale = max(float(np.median(t)), 1.0)
        return {"r": 0.5, "alpha": scale, "s": 0.5, "beta": scale}

    @staticmethod
    def _log_a0(params: np.ndarray, x, t_x, t) -> np.ndarray:
        r, alpha, s, beta = params
        big = r + s + x
        if alpha >= beta:
            top, second = alpha, s + 1
        else:
            top, second = beta, r + x
        diff = abs(alpha - beta)

        def log_f(y):
            return np.log(special.hyp2f1(big, second, big + 1, diff / (top + y))) - big * np.log(
                top + y
            )

        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            lf_tx, lf_t = log_f(t_x), log_f(t)
            gap = np.minimum(lf_t - lf_tx, 0.0)
            return lf_tx + np.log(-np.expm1(gap))  # log(F(t_x) − F(T)), −inf when t_x = T

    def _loglik_rows(self, params: np.ndarray, d: _Indexed) -> np.ndarray:
        r, alpha, s, beta = params
        x, t_x, t = d.x, d.t_x, d.t
        a1 = -(r + x) * np.log(alpha + t) - s * np.log(beta + t)
        a2 = np.log(s) - np.log(r + s + x) + self._log_a0(params, x, t_x, t)
        head = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        return head + np.logaddexp(a1, a2)

    def _log_odds_dead(self, params: np.ndarray, x, t_x, t) -> np.ndarray:
        r, alpha, s, beta = params
        return (
            np.log(s)
            - np.log(r + s + x)
            + (r + x) * np.log(alpha + t)
            + s * np.log(beta + t)
            + self._log_a0(params, x, t_x, t)
        )

    def _conditional_expectation(self, params: np.ndarray, horizon, x, t_x, t) -> np.ndarray:
        r, alpha, s, beta = params
        ratio = (beta + t) / (beta + t + horizon)
        factor = (r + x) * (beta + t) / ((alpha + t) * (s - 1)) * (1 - ratio ** (s - 1))
        return factor * special.expit(-self._log_odds_dead(params, x, t_x, t))

    def expected_purchases_new(self, t: Any, params: dict[str, float] | None = None) -> np.ndarray:
        """E[X(t)]: repeat purchases in ``(0, t]`` of a customer just acquired."""
        r, alpha, s, beta = self._param_array(params)
        t = np.asarray(t, dtype=float)
        return r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))


class GammaGamma(MLEModel):
    """Gamma-Gamma model of the mean spend per purchase (for repeat buyers).

    ``fit(frequency, monetary, weights=None)``: repeat purchases (> 0) and the mean spend of
    those repeat purchases (currency, > 0). ``params_``: ``p``, ``q``, ``gamma``.
    """

    _param_names = ("p", "q", "gamma")

    def __init__(self, initial_params: dict[str, float] | None = None):
        self.initial_params = initial_params

    @staticmethod
    def _check(frequency: Any, monetary: Any, *, fitting: bool) -> tuple[np.ndarray, np.ndarray]:
        x = as_array("frequency", frequency)
        m = as_array("monetary_value", monetary)
        if len(x) != len(m):
            raise InvalidInputError("frequency and monetary_value must have the same length")
        if (x < 0).any() or (m < 0).any():
            field = "frequency" if (x < 0).any() else "monetary_value"
            raise InvalidInputError(f"{field} is negative", field=field)
        if fitting and ((x <= 0) | (m <= 0)).any():
            rows = np.flatnonzero((x <= 0) | (m <= 0))[:5].tolist()
            raise InvalidInputError(
                f"Gamma-Gamma is fitted on repeat buyers with positive spend only (rows {rows})",
                field="monetary_value",
                rows=rows,
            )
        return x, m

    def fit(self, frequency: Any, monetary: Any, weights: Any = None) -> GammaGamma:
        """Maximum-likelihood fit on repeat buyers; returns self."""
        x, m = self._check(frequency, monetary, fitting=True)
        (x, m), w = collapse(x, m, weights=weights)
        init = self.initial_params or {"p": 2.0, "q": 3.0, "gamma": float(np.average(m, weights=w))}
        self._fit_mle((x, m), w, np.log([init[n] for n in self._param_names]))
        return self

    def _loglik_rows(self, params: np.ndarray, data) -> np.ndarray:
        p, q, gamma = params
        x, m = data
        px = p * x
        return (
            special.gammaln(px + q)
            - special.gammaln(px)
            - special.gammaln(q)
            + q * np.log(gamma)
            + (px - 1) * np.log(m)
            + px * np.log(x)
            - (px + q) * np.log(gamma + x * m)
        )

    def _loglik_grad(self, params: np.ndarray, data, w: np.ndarray) -> np.ndarray:
        p, q, gamma = params
        x, m = data
        px = p * x
        log_gxm = np.log(gamma + x * m)
        dg = special.digamma(px + q)
        g_p = np.dot(w, x * (dg - special.digamma(px) + np.log(m) + np.log(x) - log_gxm))
        g_q = np.dot(w, dg - special.digamma(q) + np.log(gamma) - log_gxm)
        g_gamma = np.dot(w, q / gamma - (px + q) / (gamma + x * m))
        return np.array([g_p, g_q, g_gamma]) * params

    def expected_spend(
        self, frequency: Any, monetary: Any, params: dict[str, float] | None = None
    ) -> np.ndarray:
        """E[mean spend per purchase | history] (currency); the population mean when x = 0."""
        x, m = self._check(frequency, monetary, fitting=False)
        p, q, gamma = self._param_array(params)
        return (p * (gamma + x * m)) / (p * x + q - 1)


PURCHASE_MODELS: dict[str, type[_PurchaseModel]] = {"bgnbd": BGNBD, "paretonbd": ParetoNBD}


def learn_margin(summary: pd.DataFrame, margin: float | None) -> tuple[float, str]:
    """(margin, source): the configured one, else profit/revenue over customers with known
    costs, else 1.0 (CLV in revenue)."""
    if margin is not None:
        return float(margin), "configured"
    if "total_profit" in summary and summary["total_profit"].notna().any():
        known = summary["total_profit"].notna()
        profit = float(summary.loc[known, "total_profit"].sum())
        return profit / max(float(summary.loc[known, "total_revenue"].sum()), 1e-12), "data"
    return 1.0, "none: CLV is revenue, no cost data"


def clv_frame(
    index: pd.Index,
    *,
    expected_purchases: np.ndarray,
    probability_alive: np.ndarray,
    expected_spend: np.ndarray,
    clv: np.ndarray,
    se: np.ndarray,
    margins: np.ndarray,
) -> pd.DataFrame:
    """The CLV models' output table, with the 95 % interval from the standard error."""
    return pd.DataFrame(
        {
            "expected_purchases": expected_purchases,
            "probability_alive": probability_alive,
            "expected_spend": expected_spend,
            "clv": clv,
            "clv_lower": clv - Z95 * se,
            "clv_upper": clv + Z95 * se,
            "margin": margins,
        },
        index=index,
    )


def customer_margins(summary: pd.DataFrame, margin: float, source: str) -> np.ndarray:
    """Each customer's own margin rate when margins come from the data, else ``margin``."""
    margins = np.full(len(summary), margin)
    if source == "data" and "margin_rate" in summary:
        own = summary["margin_rate"].to_numpy(dtype=float)
        margins = np.where(np.isfinite(own), own, margins)
    return margins


class CLVModel(BaseEstimator):
    """Discounted customer lifetime value: a purchase model + Gamma-Gamma spend.

    ``fit`` and ``predict`` take the per-customer summary of :mod:`models.features`
    (``frequency``, ``recency`` and ``T`` in days, ``monetary_value``; ``margin_rate`` and
    ``total_profit``/``total_revenue`` when the data had costs).

    - ``purchase_model``: ``"bgnbd"`` or ``"paretonbd"``.
    - ``time_unit_days``: the models' time unit (7 = weeks, as in the literature).
    - ``horizon_days``: how far ahead CLV and expected purchases look.
    - ``discount_rate``: annual discount rate (0.1 = 10 %), applied monthly.
    - ``margin``: profit margin applied to spend; ``None`` learns it from the data's costs
      (each customer's own margin, else the overall margin) and falls back to 1.0 (CLV in
      revenue) when there are no costs. ``margin_source_`` records which.

    Fitted: ``purchase_model_``, ``gamma_gamma_``, ``margin_``, ``margin_source_`` and
    ``high_value_threshold_`` (80th percentile of the training customers' CLV).
    """

    def __init__(
        self,
        purchase_model: str = "bgnbd",
        time_unit_days: float = 7.0,
        horizon_days: int = 365,
        discount_rate: float = 0.10,
        margin: float | None = None,
    ):
        self.purchase_model = purchase_model
        self.time_unit_days = time_unit_days
        self.horizon_days = horizon_days
        self.discount_rate = discount_rate
        self.margin = margin

    def _rft(self, summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        for column in ("frequency", "recency", "T", "monetary_value"):
            if column not in summary.columns:
                raise InvalidInputError(f"missing the column '{column}'", field=column)
        u = float(self.time_unit_days)
        return check_rft(
            summary["frequency"].to_numpy(dtype=float),
            summary["recency"].to_numpy(dtype=float) / u,
            summary["T"].to_numpy(dtype=float) / u,
        )

    def fit(self, summary: pd.DataFrame, y: Any = None) -> CLVModel:
        """Fit the purchase model on all customers and Gamma-Gamma on repeat buyers."""
        if self.purchase_model not in PURCHASE_MODELS:
            raise InvalidInputError(
                f"purchase_model must be one of {sorted(PURCHASE_MODELS)}, got {self.purchase_model!r}",
                field="purchase_model",
            )
        x, t_x, t = self._rft(summary)
        self.purchase_model_ = PURCHASE_MODELS[self.purchase_model]().fit(x, t_x, t)
        monetary = summary["monetary_value"].to_numpy(dtype=float)
        repeat = (x > 0) & (monetary > 0)
        if repeat.sum() < 10:
            raise InvalidInputError(
                f"only {int(repeat.sum())} repeat buyers with positive spend: too few to fit "
                "the spend model (need 10)",
                field="monetary_value",
            )
        self.gamma_gamma_ = GammaGamma().fit(x[repeat], monetary[repeat])
        self.margin_, self.margin_source_ = learn_margin(summary, self.margin)
        # "High value" for recommendations: the top fifth of the training population's CLV.
        self.high_value_threshold_ = float(np.quantile(self.predict(summary)["clv"], 0.8))
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "purchase_model_"):
            raise NotFittedError("CLVModel is not fitted; call fit first")

    @property
    def bgnbd_(self) -> _PurchaseModel:
        """The fitted purchase model (kept under its historical name)."""
        self._check_fitted()
        return self.purchase_model_

    def predict(self, summary: pd.DataFrame) -> pd.DataFrame:
        """Per customer: expected purchases and spend over the horizon, P(alive), CLV ± 95 %.

        Columns: ``expected_purchases`` (count in ``horizon_days``), ``probability_alive``
        (0–1), ``expected_spend`` (currency per purchase), ``clv`` (discounted profit over
        the horizon, currency), ``clv_lower`` and ``clv_upper`` (95 % interval from the
        parameters' sampling uncertainty, delta method), ``margin`` (applied).
        """
        self._check_fitted()
        x, t_x, t = self._rft(summary)
        monetary = np.nan_to_num(summary["monetary_value"].to_numpy(dtype=float))
        margins = customer_margins(summary, self.margin_, self.margin_source_)
        purchases, spend_model = self.purchase_model_, self.gamma_gamma_
        horizon = self.horizon_days / self.time_unit_days
        per_year = 365.25 / self.time_unit_days
        spend = spend_model.expected_spend(x, monetary)
        n_bg = len(purchases._param_names)

        # The delta method moves one parameter at a time: the purchase part is unchanged when
        # a spend parameter moves and vice versa, so each part is computed once per distinct
        # parameter set (5 + 4 evaluations instead of 8 + 8; the same numbers).
        counts_of: dict[tuple[float, ...], np.ndarray] = {}
        spend_of: dict[tuple[float, ...], np.ndarray] = {}

        def fn(p: np.ndarray) -> np.ndarray:
            bg_key, gg_key = tuple(p[:n_bg]), tuple(p[n_bg:])
            if bg_key not in counts_of:
                counts_of[bg_key] = purchases.discounted_purchases(
                    p[:n_bg], horizon, self.discount_rate, x, t_x, t, per_year
                )
            if gg_key not in spend_of:
                gg = dict(zip(spend_model._param_names, p[n_bg:], strict=True))
                spend_of[gg_key] = spend_model.expected_spend(x, monetary, gg)
            return counts_of[bg_key] * spend_of[gg_key] * margins

        log_params = np.r_[purchases.log_params_, spend_model.log_params_]
        cov = np.zeros((len(log_params), len(log_params)))
        cov[:n_bg, :n_bg] = purchases.log_covariance_
        cov[n_bg:, n_bg:] = spend_model.log_covariance_
        clv = fn(np.exp(log_params))
        se = delta_standard_error(fn, log_params, cov, clv)
        return clv_frame(
            summary.index,
            expected_purchases=purchases.expected_purchases(horizon, x, t_x, t),
            probability_alive=purchases.probability_alive(x, t_x, t),
            expected_spend=spend,
            clv=clv,
            se=se,
            margins=margins,
        )

    def params(self) -> dict[str, float]:
        """All fitted parameters, prefixed by model."""
        self._check_fitted()
        out = {f"{self.purchase_model}_{k}": v for k, v in self.purchase_model_.params_.items()}
        out.update({f"gg_{k}": v for k, v in self.gamma_gamma_.params_.items()})
        out["margin"] = self.margin_
        return out
