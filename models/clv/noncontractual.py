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

from collections.abc import Callable
from functools import cached_property
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
    distinct_codes,
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


def time_scale(t: np.ndarray, w: np.ndarray) -> float:
    """The customers' mean age: fits run on ages in this unit, so the optimiser sees the same
    numbers whatever the caller's time unit (days or weeks give the same path)."""
    total = float(w.sum())
    mean = float(np.dot(w, t)) / total if total > 0 else 0.0
    return mean if np.isfinite(mean) and mean > 0 else 1.0


def _distinct_pairs(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes of the distinct (first, second) pairs, each row's pair) from per-column codes."""
    n_second = int(second.max(initial=0)) + 1
    key = first.astype(np.int64) * n_second + second
    return distinct_codes(key, (int(first.max(initial=0)) + 1) * n_second)


class _Indexed:
    """Rows (x, t_x, T) with their distinct values per column, so per-value work is done once.

    The distinct (x, y) pairs are built on first use: a row's hypergeometric terms depend on
    it through (x, t_x) and (x, T) only, and a million customers have some 10⁴ such pairs.
    """

    def __init__(self, x: np.ndarray, t_x: np.ndarray, t: np.ndarray):
        self.x, self.t_x, self.t = x, t_x, t
        self.ux, self.ix = np.unique(x, return_inverse=True)
        self.ut, self.it = np.unique(t_x, return_inverse=True)
        self.uT, self.iT = np.unique(t, return_inverse=True)

    @cached_property
    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(x, y, row → pair of (x, t_x), row → pair of (x, T)) over the distinct pairs of
        both kinds together."""
        uy, iy = np.unique(np.r_[self.ut, self.uT], return_inverse=True)
        y_codes = np.r_[iy[: len(self.ut)][self.it], iy[len(self.ut) :][self.iT]]
        codes, inverse = _distinct_pairs(np.r_[self.ix, self.ix], y_codes)
        n_y, n = len(uy), len(self.x)
        return self.ux[codes // n_y], uy[codes % n_y], inverse[:n], inverse[n:]

    @cached_property
    def age_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, T, row → pair) over the distinct (x, T) pairs (what forecasts depend on)."""
        codes, inverse = _distinct_pairs(self.ix, self.iT)
        n_t = len(self.uT)
        return self.ux[codes // n_t], self.uT[codes % n_t], inverse


class _PurchaseModel(MLEModel):
    """Common API of the continuous-time purchase models (BG/NBD, Pareto/NBD).

    A model gives the log-odds that a customer has dropped out (``_log_odds_dead``) and the
    expected purchases of an active customer (``_expected_if_alive``); forecasts are their
    product. Parameters named in ``_time_params`` are in time units (rates' scales).
    """

    _time_params: tuple[str, ...] = ("alpha",)

    def __init__(self, initial_params: dict[str, float] | None = None):
        self.initial_params = initial_params

    def _initial(self, d: _Indexed, w: np.ndarray) -> dict[str, float]:
        """Starting values on data whose mean age is 1."""
        raise NotImplementedError

    def fit(self, frequency: Any, recency: Any, T: Any, weights: Any = None) -> Any:
        """Maximum-likelihood fit; identical rows are collapsed into weights. Returns self.

        The fit runs on ages divided by the mean age (:func:`time_scale`); the parameters and
        log-likelihood are reported in the caller's time unit. ``initial_params`` (caller's
        unit, e.g. an earlier fit's ``params_``) start the optimiser near the optimum.
        """
        x, t_x, t = check_rft(frequency, recency, T)
        w = check_weights(weights, len(x))
        (x, t_x, t), w = collapse(x, t_x, t, weights=w)
        scale = time_scale(t, w)
        d = _Indexed(x, t_x / scale, t / scale)
        shift = np.array(
            [np.log(scale) if name in self._time_params else 0.0 for name in self._param_names]
        )
        if self.initial_params:
            x0 = np.log([self.initial_params[n] for n in self._param_names]) - shift
        else:
            init = self._initial(d, w)
            x0 = np.log([init[n] for n in self._param_names])
        # A rate per scaled unit is `scale` times the rate per unit: λ^x in each row's
        # likelihood gives the log-likelihood in the caller's unit −Σ w·x·log(scale).
        offset = -float(np.dot(w, x)) * np.log(scale)
        self._fit_mle(d, w, x0, shift=shift, log_likelihood_offset=offset)
        return self

    def log_likelihood_rows(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """Per-customer log-likelihood at the fitted parameters."""
        x, t_x, t = check_rft(frequency, recency, T)
        with np.errstate(all="ignore"):
            return self._loglik_rows(self._param_array(), _Indexed(x, t_x, t))

    def _log_odds_dead(self, params: np.ndarray, d: _Indexed) -> np.ndarray:
        raise NotImplementedError

    def _expected_if_alive(self, params: np.ndarray, horizon: Any, x: Any, t: Any) -> np.ndarray:
        """E[purchases in the next ``horizon`` | active at T, x purchases] (broadcasts)."""
        raise NotImplementedError

    def _alive(self, params: np.ndarray, d: _Indexed) -> np.ndarray:
        with np.errstate(all="ignore"):
            return special.expit(-self._log_odds_dead(params, d))

    def _expected(self, params: np.ndarray, horizon: Any, d: _Indexed) -> np.ndarray:
        """E[purchases in the next ``horizon`` | history] per row of ``d``."""
        with np.errstate(all="ignore"):
            if np.ndim(horizon) == 0:  # once per distinct (x, T)
                px, pt, inverse = d.age_pairs
                per_pair = self._expected_if_alive(params, float(horizon), px, pt)
                return per_pair[inverse] * self._alive(params, d)
            return self._expected_if_alive(params, horizon, d.x, d.t) * self._alive(params, d)

    def probability_alive(
        self, frequency: Any, recency: Any, T: Any, params: dict[str, float] | None = None
    ) -> np.ndarray:
        """P(the customer is still active at T | history), 0–1."""
        x, t_x, t = check_rft(frequency, recency, T)
        return self._alive(self._param_array(params), _Indexed(x, t_x, t))

    def expected_purchases(
        self, t: Any, frequency: Any, recency: Any, T: Any, params: dict[str, float] | None = None
    ) -> np.ndarray:
        """Expected repeat purchases in the next ``t`` time units, given the history."""
        x, t_x, big_t = check_rft(frequency, recency, T)
        horizon = np.asarray(t, dtype=float)
        return self._expected(self._param_array(params), horizon, _Indexed(x, t_x, big_t))

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
        """Σ over months of the expected purchases in each month × its discount factor."""
        return self._discounted(
            params, horizon, discount_rate, _Indexed(*check_rft(x, t_x, t)), periods_per_year
        )

    def _discounted(
        self,
        params: np.ndarray,
        horizon: float,
        discount_rate: float,
        d: _Indexed,
        periods_per_year: float,
    ) -> np.ndarray:
        """:meth:`discounted_purchases` on indexed rows. The expected purchases up to each
        month end are P(alive) × a function of (x, T): the discounted monthly increments are
        summed once per distinct (x, T) and multiplied by P(alive) per row."""
        n_steps = max(1, int(round(12 * horizon / periods_per_year)))
        ends = horizon / n_steps * np.arange(1, n_steps + 1)
        factors = (1 + discount_rate) ** (-ends / periods_per_year)
        px, pt, inverse = d.age_pairs
        with np.errstate(all="ignore"):
            cumulative = self._expected_if_alive(params, ends[None, :], px[:, None], pt[:, None])
        cumulative = np.broadcast_to(cumulative, (len(px), n_steps))
        # np.diff(cumulative, axis=1, prepend=0.0), without its concatenation
        steps = np.empty(cumulative.shape)
        steps[:, :1] = cumulative[:, :1] - 0.0
        np.subtract(cumulative[:, 1:], cumulative[:, :-1], out=steps[:, 1:])
        per_pair = steps @ factors
        return per_pair[inverse] * self._alive(params, d)

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
        d = _Indexed(*check_rft(frequency, recency, T))
        value_per_purchase = np.asarray(spend, dtype=float) * np.asarray(margin, dtype=float)

        def fn(p: np.ndarray) -> np.ndarray:
            purchases = self._discounted(p, horizon, discount_rate, d, periods_per_year)
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

    def _initial(self, d: _Indexed, w: np.ndarray) -> dict[str, float]:
        return {"r": 0.5, "alpha": 1.0, "a": 1.5, "b": 3.0}

    @staticmethod
    def _terms(params: np.ndarray, d: _Indexed) -> dict[str, np.ndarray]:
        """Per distinct x: ``head``; per row: ``a3`` (log of "no dropout after the last
        purchase", from the pair (x, T)) and ``a4`` (log of "dropped out at the last purchase",
        from the pair (x, t_x); −inf when x = 0)."""
        r, alpha, a, b = params
        ux = d.ux
        head = (
            special.gammaln(r + ux)
            - special.gammaln(r)
            + r * np.log(alpha)
            + special.betaln(a, b + ux)
            - special.betaln(a, b)
        )
        px, py, i_tx, i_t = d.pairs
        rate_term = -(r + px) * np.log(alpha + py)
        a4_pair = np.where(
            px > 0, np.log(a) - np.log(np.where(px > 0, b + px - 1, 1.0)) + rate_term, -np.inf
        )
        return {"head": head, "a3": rate_term[i_t], "a4": a4_pair[i_tx]}

    def _loglik_rows(self, params: np.ndarray, d: _Indexed) -> np.ndarray:
        terms = self._terms(params, d)
        return terms["head"][d.ix] + np.logaddexp(terms["a3"], terms["a4"])

    def _loglik_and_grad(
        self, params: np.ndarray, d: _Indexed, w: np.ndarray
    ) -> tuple[float, np.ndarray]:
        r, alpha, a, b = params
        terms = self._terms(params, d)
        total = np.logaddexp(terms["a3"], terms["a4"])
        ux = d.ux
        wx = np.bincount(d.ix, weights=w, minlength=len(ux))
        value = float(np.dot(wx, terms["head"]) + np.dot(w, total))
        # Row weights of the two terms, summed per pair: the rest is per pair or per x.
        px, py, i_tx, i_t = d.pairs
        w4 = w * np.exp(terms["a4"] - total)
        dropped = np.bincount(i_tx, weights=w4, minlength=len(px))
        either = dropped + np.bincount(i_t, weights=w - w4, minlength=len(px))
        n = wx.sum()
        g_r = np.dot(wx, special.digamma(r + ux) - special.digamma(r)) + n * np.log(alpha)
        g_r -= np.dot(either, np.log(alpha + py))
        g_alpha = n * r / alpha - np.dot(either, (r + px) / (alpha + py))
        dab = special.digamma(a + b)
        g_a = np.dot(wx, dab - special.digamma(a + b + ux)) + dropped.sum() / a
        g_b = np.dot(
            wx, dab + special.digamma(b + ux) - special.digamma(b) - special.digamma(a + b + ux)
        )
        g_b -= np.dot(dropped, np.where(px > 0, 1.0 / np.where(px > 0, b + px - 1, 1.0), 0.0))
        return value, np.array([g_r, g_alpha, g_a, g_b]) * params

    def _log_odds_dead(self, params: np.ndarray, d: _Indexed) -> np.ndarray:
        terms = self._terms(params, d)
        return terms["a4"] - terms["a3"]

    def _expected_if_alive(self, params: np.ndarray, horizon: Any, x: Any, t: Any) -> np.ndarray:
        r, alpha, a, b = params
        # Pfaff's transformation keeps 2F1 bounded on long histories: (1−z)^(r+x)·2F1(r+x,
        # b+x; a+b+x−1; z) = 2F1(r+x, a−1; a+b+x−1; −horizon/(α+T)).
        hyp = special.hyp2f1(r + x, a - 1, a + b + x - 1, -horizon / (alpha + t))
        return (a + b + x - 1) / (a - 1) * (1 - hyp)

    def expected_purchases_new(self, t: Any, params: dict[str, float] | None = None) -> np.ndarray:
        """E[X(t)]: repeat purchases in ``(0, t]`` of a customer just acquired."""
        r, alpha, a, b = self._param_array(params)
        t = np.asarray(t, dtype=float)
        hyp = special.hyp2f1(r, a - 1, a + b - 1, -t / alpha)
        return (a + b - 1) / (a - 1) * (1 - hyp)


def _log_tail(a_exp: Any, b_exp: Any, alpha: float, beta: float, y: Any) -> np.ndarray:
    """log ∫_y^∞ (α+τ)^(−a_exp)·(β+τ)^(−b_exp) dτ in closed form (a hypergeometric 2F1; the
    argument is in [0, 1) whichever of α, β is larger)."""
    p = a_exp + b_exp - 1
    if alpha >= beta:
        top, second = alpha, b_exp
    else:
        top, second = beta, a_exp
    z = abs(alpha - beta) / (top + y)
    return np.log(special.hyp2f1(p, second, p + 1, z)) - np.log(p) - p * np.log(top + y)


class ParetoNBD(_PurchaseModel):
    """Pareto/NBD model of repeat purchases (non-contractual, continuous time).

    Same inputs as :class:`BGNBD`; ``params_``: ``r``, ``alpha`` (Gamma purchase rates),
    ``s``, ``beta`` (Gamma dropout rates: lifetimes are exponential).

    Likelihood (Fader & Hardie 2005): a customer who bought x times, last at t_x, and is
    watched to T either is still active at T or dropped out at some τ in (t_x, T]:

        L = Γ(r+x) α^r β^s / Γ(r) · [(α+T)^−(r+x) (β+T)^−s + s ∫_{t_x}^T (α+τ)^−(r+x) (β+τ)^−(s+1) dτ]

    The integral is a difference of two closed-form tails (:func:`_log_tail`), each a function
    of one (x, y) pair, so the hypergeometric work is done once per distinct pair. Its
    derivatives in α and β are tails with the exponent raised by one; those in r and s are
    central differences of the tails.
    """

    _param_names = ("r", "alpha", "s", "beta")
    _time_params = ("alpha", "beta")

    def _initial(self, d: _Indexed, w: np.ndarray) -> dict[str, float]:
        return {"r": 0.5, "alpha": 1.0, "s": 0.5, "beta": 1.0}

    def _terms(self, params: np.ndarray, d: _Indexed) -> dict[str, np.ndarray]:
        """Per distinct x: ``head``; per pair: ``tail`` and ``a1`` (the still-active term, used
        at pairs (x, T)); per row: ``l_tx``, ``l_T`` (the tails), ``a1`` and ``a2`` (log of
        s × the integral)."""
        r, alpha, s, beta = params
        px, py, i_tx, i_t = d.pairs
        tail = _log_tail(r + px, s + 1, alpha, beta, py)
        a1_pair = -(r + px) * np.log(alpha + py) - s * np.log(beta + py)
        l_tx, l_t = tail[i_tx], tail[i_t]
        gap = np.minimum(l_t - l_tx, 0.0)
        a2 = np.log(s) + l_tx + np.log(-np.expm1(gap))  # −inf when t_x = T
        ux = d.ux
        head = special.gammaln(r + ux) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        return {
            "head": head,
            "tail": tail,
            "a1_pair": a1_pair,
            "l_tx": l_tx,
            "l_T": l_t,
            "a1": a1_pair[i_t],
            "a2": a2,
        }

    def _loglik_rows(self, params: np.ndarray, d: _Indexed) -> np.ndarray:
        terms = self._terms(params, d)
        return terms["head"][d.ix] + np.logaddexp(terms["a1"], terms["a2"])

    @staticmethod
    def _tail_gradient(params: np.ndarray, px: np.ndarray, py: np.ndarray, tail: np.ndarray):
        """∂ log tail / ∂(r, α, s, β) per pair."""
        r, alpha, s, beta = params
        a_exp, b_exp = r + px, s + 1
        h_r, h_s = 1e-4 * min(1.0, r), 1e-4 * min(1.0, s)
        d_r = (
            _log_tail(a_exp + h_r, b_exp, alpha, beta, py)
            - _log_tail(a_exp - h_r, b_exp, alpha, beta, py)
        ) / (2 * h_r)
        d_s = (
            _log_tail(a_exp, b_exp + h_s, alpha, beta, py)
            - _log_tail(a_exp, b_exp - h_s, alpha, beta, py)
        ) / (2 * h_s)
        d_alpha = -a_exp * np.exp(_log_tail(a_exp + 1, b_exp, alpha, beta, py) - tail)
        d_beta = -b_exp * np.exp(_log_tail(a_exp, b_exp + 1, alpha, beta, py) - tail)
        return d_r, d_alpha, d_s, d_beta

    def _loglik_and_grad(
        self, params: np.ndarray, d: _Indexed, w: np.ndarray
    ) -> tuple[float, np.ndarray]:
        r, alpha, s, beta = params
        terms = self._terms(params, d)
        total = np.logaddexp(terms["a1"], terms["a2"])
        wx = np.bincount(d.ix, weights=w, minlength=len(d.ux))
        value = float(np.dot(wx, terms["head"]) + np.dot(w, total))

        px, py, i_tx, i_t = d.pairs
        n_pairs = len(px)
        w_active = w * np.exp(terms["a1"] - total)  # weight of "still active at T"
        w_dropped = float(w.sum() - w_active.sum())
        # Σ w·w₂·∂log(integral) = Σ over pairs of ∂log tail × (these per-pair sums): the
        # integral is tail(t_x) − tail(T) and w₂/integral = s/e^total, so nothing cancels.
        at_tx = w * np.exp(np.log(s) + terms["l_tx"] - total)
        at_t = at_tx * np.exp(np.minimum(terms["l_T"] - terms["l_tx"], 0.0))
        coef = np.bincount(i_tx, weights=at_tx, minlength=n_pairs)
        coef -= np.bincount(i_t, weights=at_t, minlength=n_pairs)
        active = np.bincount(i_t, weights=w_active, minlength=n_pairs)
        d_r, d_alpha, d_s, d_beta = self._tail_gradient(params, px, py, terms["tail"])
        n = wx.sum()
        g_r = np.dot(wx, special.digamma(r + d.ux) - special.digamma(r)) + n * np.log(alpha)
        g_r += np.dot(coef, d_r) - np.dot(active, np.log(alpha + py))
        g_alpha = n * r / alpha + np.dot(coef, d_alpha) - np.dot(active, (r + px) / (alpha + py))
        g_s = n * np.log(beta) + w_dropped / s + np.dot(coef, d_s)
        g_s -= np.dot(active, np.log(beta + py))
        g_beta = n * s / beta + np.dot(coef, d_beta) - np.dot(active, s / (beta + py))
        return value, np.array([g_r, g_alpha, g_s, g_beta]) * params

    def _log_odds_dead(self, params: np.ndarray, d: _Indexed) -> np.ndarray:
        # the "a2" − "a1" of _terms, computed as there, without the terms it does not need
        r, alpha, s, beta = params
        px, py, i_tx, i_t = d.pairs
        tail = _log_tail(r + px, s + 1, alpha, beta, py)
        a1_pair = -(r + px) * np.log(alpha + py) - s * np.log(beta + py)
        l_tx, l_t = tail[i_tx], tail[i_t]
        gap = np.minimum(l_t - l_tx, 0.0)
        a2 = np.log(s) + l_tx + np.log(-np.expm1(gap))
        return a2 - a1_pair[i_t]

    def _expected_if_alive(self, params: np.ndarray, horizon: Any, x: Any, t: Any) -> np.ndarray:
        r, alpha, s, beta = params
        ratio = (beta + t) / (beta + t + horizon)
        return (r + x) * (beta + t) / ((alpha + t) * (s - 1)) * (1 - ratio ** (s - 1))

    def expected_purchases_new(self, t: Any, params: dict[str, float] | None = None) -> np.ndarray:
        """E[X(t)]: repeat purchases in ``(0, t]`` of a customer just acquired."""
        r, alpha, s, beta = self._param_array(params)
        t = np.asarray(t, dtype=float)
        return r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))


class _SpendData:
    """Repeat buyers' (x, mean spend m) with weights, and the sums per distinct x that the
    Gamma-Gamma likelihood needs (only log(γ + x·m) is evaluated per row)."""

    def __init__(self, x: np.ndarray, m: np.ndarray, w: np.ndarray):
        self.x, self.m = x, m
        self.log_m = np.log(m)
        self.ux, ix = np.unique(x, return_inverse=True)
        self.wx = np.bincount(ix, weights=w, minlength=len(self.ux))
        self.w_log_m = np.bincount(ix, weights=w * self.log_m, minlength=len(self.ux))
        self.wx_rows = w * x


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
        self._fit_mle(_SpendData(x, m, w), w, np.log([init[n] for n in self._param_names]))
        return self

    def _loglik_rows(self, params: np.ndarray, data: _SpendData) -> np.ndarray:
        p, q, gamma = params
        x, m = data.x, data.m
        px = p * x
        return (
            special.gammaln(px + q)
            - special.gammaln(px)
            - special.gammaln(q)
            + q * np.log(gamma)
            + (px - 1) * data.log_m
            + px * np.log(x)
            - (px + q) * np.log(gamma + x * m)
        )

    def _loglik_and_grad(
        self, params: np.ndarray, data: _SpendData, w: np.ndarray
    ) -> tuple[float, np.ndarray]:
        # Everything but log(γ + x·m) is a function of x or a constant sum: per distinct x.
        p, q, gamma = params
        ux, wx = data.ux, data.wx
        pux = p * ux
        log_gxm = np.log(gamma + data.x * data.m)
        sum_log = float(np.dot(w, log_gxm))
        sum_x_log = float(np.dot(data.wx_rows, log_gxm))
        value = (
            np.dot(wx, special.gammaln(pux + q) - special.gammaln(pux) + pux * np.log(ux))
            - wx.sum() * (special.gammaln(q) - q * np.log(gamma))
            + p * np.dot(ux, data.w_log_m)
            - data.w_log_m.sum()
            - p * sum_x_log
            - q * sum_log
        )
        dg = special.digamma(pux + q)
        g_p = np.dot(wx * ux, dg - special.digamma(pux) + np.log(ux))
        g_p += np.dot(ux, data.w_log_m) - sum_x_log
        g_q = np.dot(wx, dg) - wx.sum() * (special.digamma(q) - np.log(gamma)) - sum_log
        inverse = 1.0 / (gamma + data.x * data.m)
        g_gamma = wx.sum() * q / gamma - p * np.dot(data.wx_rows, inverse) - q * np.dot(w, inverse)
        return float(value), np.array([g_p, g_q, g_gamma]) * params

    def expected_spend(
        self, frequency: Any, monetary: Any, params: dict[str, float] | None = None
    ) -> np.ndarray:
        """E[mean spend per purchase | history] (currency); the population mean when x = 0."""
        x, m = self._check(frequency, monetary, fitting=False)
        p, q, gamma = self._param_array(params)
        return (p * (gamma + x * m)) / (p * x + q - 1)


PURCHASE_MODELS: dict[str, type[_PurchaseModel]] = {"bgnbd": BGNBD, "paretonbd": ParetoNBD}


def _check_repeat_buyers(n: int) -> None:
    if n < 10:
        raise InvalidInputError(
            f"only {n} repeat buyers with positive spend: too few to fit the spend model (need 10)",
            field="monetary_value",
        )


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

    purchase_model_: _PurchaseModel
    gamma_gamma_: GammaGamma

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

    def fit(
        self,
        summary: pd.DataFrame,
        y: Any = None,
        *,
        purchases: _PurchaseModel | None = None,
        start_from: CLVModel | None = None,
    ) -> CLVModel:
        """Fit the purchase model on all customers and Gamma-Gamma on repeat buyers.

        ``purchases``: a purchase model already fitted on this summary (in ``time_unit_days``
        units), used as it is. ``start_from``: a fitted model (e.g. on an earlier period)
        whose parameters start both fits, which then take a few steps instead of a search.
        """
        self._check_purchase_model()
        x, t_x, t = self._rft(summary)
        monetary = summary["monetary_value"].to_numpy(dtype=float)
        repeat = (x > 0) & (monetary > 0)
        _check_repeat_buyers(int(repeat.sum()))
        purchase_start, spend_start = self._starts(start_from)
        if purchases is None:
            model = PURCHASE_MODELS[self.purchase_model](initial_params=purchase_start)
            purchases = model.fit(x, t_x, t)
        self.purchase_model_ = purchases
        self.gamma_gamma_ = GammaGamma(initial_params=spend_start).fit(x[repeat], monetary[repeat])
        self.margin_, self.margin_source_ = learn_margin(summary, self.margin)
        # "High value" for recommendations: the top fifth of the training population's CLV.
        value, _ = self._value(summary, _Indexed(x, t_x, t))
        self.high_value_threshold_ = float(np.quantile(value(np.exp(self._log_params())), 0.8))
        return self

    def fit_statistics(
        self,
        purchases: pd.DataFrame,
        spend: pd.DataFrame,
        margin: tuple[float, str],
        reference: pd.DataFrame,
        *,
        start_from: CLVModel | None = None,
    ) -> CLVModel:
        """Fit on sufficient statistics of a customer base too large to hold per customer.

        ``purchases``: the distinct (``frequency``, ``recency``, ``T``) of every customer
        (days, as in the summary) with their ``count``; ``spend``: the distinct
        (``frequency``, ``monetary_value``) of the repeat buyers with positive spend, with
        ``count``; ``margin``: (margin, source) of :func:`learn_margin` over every customer;
        ``reference``: a summary (a sample of the customers) on which the high-value
        threshold (80th percentile of CLV) is placed. On the same customers this gives the
        parameters :meth:`fit` gives (the fits collapse rows into the same weights).
        """
        self._check_purchase_model()
        x, t_x, t = self._rft(purchases.assign(monetary_value=0.0))
        spend_x = spend["frequency"].to_numpy(dtype=float)
        spend_m = spend["monetary_value"].to_numpy(dtype=float)
        spend_w = spend["count"].to_numpy(dtype=float)
        _check_repeat_buyers(int(spend_w.sum()))
        purchase_start, spend_start = self._starts(start_from)
        model = PURCHASE_MODELS[self.purchase_model](initial_params=purchase_start)
        self.purchase_model_ = model.fit(
            x, t_x, t, weights=purchases["count"].to_numpy(dtype=float)
        )
        self.gamma_gamma_ = GammaGamma(initial_params=spend_start).fit(
            spend_x, spend_m, weights=spend_w
        )
        self.margin_, self.margin_source_ = margin
        value, _ = self._value(reference, _Indexed(*self._rft(reference)))
        self.high_value_threshold_ = float(np.quantile(value(np.exp(self._log_params())), 0.8))
        return self

    def _check_purchase_model(self) -> None:
        if self.purchase_model not in PURCHASE_MODELS:
            raise InvalidInputError(
                f"purchase_model must be one of {sorted(PURCHASE_MODELS)}, got {self.purchase_model!r}",
                field="purchase_model",
            )

    def _starts(
        self, start_from: CLVModel | None
    ) -> tuple[dict[str, float] | None, dict[str, float] | None]:
        """Start values of the purchase and spend fits from an earlier fit (None: search)."""
        if start_from is None:
            return None, None
        start_from._check_fitted()
        spend_start = dict(start_from.gamma_gamma_.params_)
        purchase_start = None
        if start_from.purchase_model == self.purchase_model:
            purchase_start = dict(start_from.purchase_model_.params_)
        return purchase_start, spend_start

    def _check_fitted(self) -> None:
        if not hasattr(self, "purchase_model_"):
            raise NotFittedError("CLVModel is not fitted; call fit first")

    @property
    def bgnbd_(self) -> _PurchaseModel:
        """The fitted purchase model (kept under its historical name)."""
        self._check_fitted()
        return self.purchase_model_

    def _log_params(self) -> np.ndarray:
        return np.r_[self.purchase_model_.log_params_, self.gamma_gamma_.log_params_]

    def _value(
        self, summary: pd.DataFrame, d: _Indexed
    ) -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, np.ndarray]]:
        """(CLV per customer as a function of the parameters of both models, the spend and
        margins it uses)."""
        monetary = np.nan_to_num(summary["monetary_value"].to_numpy(dtype=float))
        margins = customer_margins(summary, self.margin_, self.margin_source_)
        purchases, spend_model = self.purchase_model_, self.gamma_gamma_
        horizon = self.horizon_days / self.time_unit_days
        per_year = 365.25 / self.time_unit_days
        n_bg = len(purchases._param_names)

        # The delta method moves one parameter at a time: the purchase part is unchanged when
        # a spend parameter moves and vice versa, so each part is computed once per distinct
        # parameter set (5 + 4 evaluations instead of 8 + 8; the same numbers).
        counts_of: dict[tuple[float, ...], np.ndarray] = {}
        spend_of: dict[tuple[float, ...], np.ndarray] = {}

        def value(p: np.ndarray) -> np.ndarray:
            bg_key, gg_key = tuple(p[:n_bg]), tuple(p[n_bg:])
            if bg_key not in counts_of:
                counts_of[bg_key] = purchases._discounted(
                    p[:n_bg], horizon, self.discount_rate, d, per_year
                )
            if gg_key not in spend_of:
                gg = dict(zip(spend_model._param_names, p[n_bg:], strict=True))
                spend_of[gg_key] = spend_model.expected_spend(d.x, monetary, gg)
            return counts_of[bg_key] * spend_of[gg_key] * margins

        return value, {"monetary": monetary, "margins": margins}

    def predict(self, summary: pd.DataFrame) -> pd.DataFrame:
        """Per customer: expected purchases and spend over the horizon, P(alive), CLV ± 95 %.

        Columns: ``expected_purchases`` (count in ``horizon_days``), ``probability_alive``
        (0–1), ``expected_spend`` (currency per purchase), ``clv`` (discounted profit over
        the horizon, currency), ``clv_lower`` and ``clv_upper`` (95 % interval from the
        parameters' sampling uncertainty, delta method), ``margin`` (applied).
        """
        self._check_fitted()
        d = _Indexed(*self._rft(summary))
        purchases, spend_model = self.purchase_model_, self.gamma_gamma_
        value, parts = self._value(summary, d)
        n_bg = len(purchases._param_names)
        log_params = self._log_params()
        cov = np.zeros((len(log_params), len(log_params)))
        cov[:n_bg, :n_bg] = purchases.log_covariance_
        cov[n_bg:, n_bg:] = spend_model.log_covariance_
        clv = value(np.exp(log_params))
        se = delta_standard_error(value, log_params, cov, clv)
        params = purchases._param_array()
        return clv_frame(
            summary.index,
            expected_purchases=purchases._expected(
                params, self.horizon_days / self.time_unit_days, d
            ),
            probability_alive=purchases._alive(params, d),
            expected_spend=spend_model.expected_spend(d.x, parts["monetary"]),
            clv=clv,
            se=se,
            margins=parts["margins"],
        )

    def params(self) -> dict[str, float]:
        """All fitted parameters, prefixed by model."""
        self._check_fitted()
        out = {f"{self.purchase_model}_{k}": v for k, v in self.purchase_model_.params_.items()}
        out.update({f"gg_{k}": v for k, v in self.gamma_gamma_.params_.items()})
        out["margin"] = self.margin_
        return out
