"""Discrete-time and contractual retention models.

- :class:`BGBB`: beta-geometric/beta-Bernoulli (Fader, Hardie & Shang 2010) for repeat
  transactions at discrete opportunities (yearly donations, annual events).
- :class:`ShiftedBetaGeometric`: sBG (Fader & Hardie 2007) for contractual retention: a
  lost customer never returns ("lost for good", Dwyer 1997; see docs/METHODS.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from models.clv._mle import MLEModel, as_array, check_weights, collapse
from models.exceptions import InvalidInputError


class _Patterns:
    """(x, t_x, n) rows as whole numbers with their distinct (x, t_x) pairs: the index
    tables :meth:`BGBB._loglik_rows` reads (built once per fit, not per evaluation)."""

    def __init__(self, x: Any, t_x: Any, n: Any):
        self.x = np.asarray(x).astype(np.int64)
        self.t_x = np.asarray(t_x).astype(np.int64)
        self.n = np.asarray(n).astype(np.int64)
        self.gap = self.n - self.t_x  # opportunities after the last transaction
        self.size = int(self.n.max(initial=0))
        width = self.size + 1
        pairs, self.pair = np.unique(self.x * width + self.t_x, return_inverse=True)
        self.pair = self.pair.reshape(-1)
        self.px, pt = pairs // width, pairs % width
        longest = np.zeros(len(pairs), dtype=np.int64)
        np.maximum.at(longest, self.pair, self.gap)
        i = np.arange(max(int(longest.max(initial=0)), 1))
        self.valid = i[None, :] < longest[:, None]
        # indexes of β + t_x − x + i and of δ + t_x + i, kept in the tables' range
        self.start_b = np.minimum((pt - self.px)[:, None] + i[None, :], self.size)
        self.start_g = np.minimum(pt[:, None] + i[None, :], self.size)


class BGBB(MLEModel):
    """BG/BB model: ``fit(frequency, recency, n_periods, weights=None)``.

    ``frequency`` = transactions in the ``n_periods`` opportunities after the first,
    ``recency`` = the opportunity of the last one (0 when none). ``params_``: ``alpha``,
    ``beta`` (Beta transaction propensity), ``gamma``, ``delta`` (Beta dropout propensity).
    """

    _param_names = ("alpha", "beta", "gamma", "delta")

    def __init__(self, initial_params: dict[str, float] | None = None):
        self.initial_params = initial_params

    @staticmethod
    def _check(frequency: Any, recency: Any, n_periods: Any) -> tuple[np.ndarray, ...]:
        x = as_array("frequency", frequency)
        t_x = as_array("recency", recency)
        n = as_array("n_periods", n_periods)
        for name, arr in (("frequency", x), ("recency", t_x), ("n_periods", n)):
            if ((arr < 0) | (arr != np.floor(arr))).any():
                raise InvalidInputError(f"{name} must be whole numbers ≥ 0", field=name)
        problems = (
            ("frequency", x > t_x, "is greater than recency"),
            ("recency", t_x > n, "is greater than n_periods"),
            ("recency", (x == 0) & (t_x > 0), "is positive for a customer with frequency 0"),
            ("frequency", (x > 0) & (t_x == 0), "is positive but recency is 0"),
        )
        for field, mask, what in problems:
            if mask.any():
                rows = np.flatnonzero(mask)[:5].tolist()
                raise InvalidInputError(f"{field} {what} (rows {rows})", field=field, rows=rows)
        return x, t_x, n

    def fit(self, frequency: Any, recency: Any, n_periods: Any, weights: Any = None) -> BGBB:
        """Maximum-likelihood fit; returns self."""
        x, t_x, n = self._check(frequency, recency, n_periods)
        w = check_weights(weights, len(x))
        data, w = collapse(x, t_x, n, weights=w)
        init = self.initial_params or {"alpha": 1.0, "beta": 1.0, "gamma": 1.0, "delta": 1.0}
        self._fit_mle(_Patterns(*data), w, np.log([init[k] for k in self._param_names]))
        return self

    def _loglik_rows(self, params: np.ndarray, data: Any) -> np.ndarray:
        """Per-row log-likelihood: "alive through n" plus, for each opportunity t_x + i
        (i < n − t_x), "left after it". The Beta functions are sums of log-gamma tables over
        the whole numbers up to max n, and the second part's sums over i are cumulated once
        per distinct (x, t_x) (:class:`_Patterns`): a row costs a few look-ups."""
        d = data if isinstance(data, _Patterns) else _Patterns(*data)
        alpha, beta, gamma, delta = params
        size = d.size
        k = np.arange(size + 2, dtype=float)
        lg_a = special.gammaln(alpha + k)
        lg_b = special.gammaln(beta + k)
        lg_ab = special.gammaln(alpha + beta + k)
        lg_d = special.gammaln(delta + k)
        lg_gd = special.gammaln(gamma + delta + k)
        base = special.betaln(alpha, beta) + special.betaln(gamma, delta)
        x, n = d.x, d.n
        alive = (
            lg_a[x] + lg_b[n - x] - lg_ab[n] + special.gammaln(gamma) + lg_d[n] - lg_gd[n] - base
        )
        # left after opportunity t_x + i: B(α+x, β+t_x−x+i)·B(γ+1, δ+t_x+i), cumulated over i
        g = -lg_ab[: size + 1] + lg_d[: size + 1] - lg_gd[1 : size + 2]
        terms = lg_b[d.start_b] + g[d.start_g]
        terms[~d.valid] = -np.inf
        cumulated = np.logaddexp.accumulate(terms, axis=1)
        head = lg_a[d.px] + special.gammaln(gamma + 1) - base
        left = np.full(len(x), -np.inf)
        some = d.gap > 0
        left[some] = head[d.pair[some]] + cumulated[d.pair[some], d.gap[some] - 1]
        return np.logaddexp(alive, left)

    def probability_alive(
        self, frequency: Any, recency: Any, n_periods: Any, params: dict[str, float] | None = None
    ) -> np.ndarray:
        """P(alive at opportunity n + 1 | history)."""
        x, t_x, n = self._check(frequency, recency, n_periods)
        p = self._param_array(params)
        alpha, beta, gamma, delta = p
        log_alive = (
            special.betaln(alpha + x, beta + n - x)
            - special.betaln(alpha, beta)
            + special.betaln(gamma, delta + n + 1)
            - special.betaln(gamma, delta)
        )
        return np.exp(log_alive - self._loglik_rows(p, (x, t_x, n)))

    def expected_purchases(
        self,
        t: Any,
        frequency: Any,
        recency: Any,
        n_periods: Any,
        params: dict[str, float] | None = None,
    ) -> np.ndarray:
        """Expected transactions in the next ``t`` opportunities, given the history."""
        x, t_x, n = self._check(frequency, recency, n_periods)
        p = self._param_array(params)
        alpha, beta, gamma, delta = p
        t = np.asarray(t, dtype=float)
        log_l = self._loglik_rows(p, (x, t_x, n))
        log_front = (
            special.betaln(alpha + x + 1, beta + n - x)
            - special.betaln(alpha, beta)
            + np.log(delta / (gamma - 1) if gamma > 1 else np.nan)
            + special.gammaln(gamma + delta)
            - special.gammaln(1 + delta)
        )
        bracket = np.exp(
            special.gammaln(1 + delta + n) - special.gammaln(gamma + delta + n)
        ) - np.exp(special.gammaln(1 + delta + n + t) - special.gammaln(gamma + delta + n + t))
        if gamma <= 1:  # the closed form needs gamma > 1; sum the periods instead
            return self._expected_by_sum(p, t, x, t_x, n)
        return np.exp(log_front - log_l) * bracket

    def _expected_by_sum(self, p: np.ndarray, t, x, t_x, n) -> np.ndarray:
        alpha, beta, gamma, delta = p
        log_l = self._loglik_rows(p, (x, t_x, n))
        total = np.zeros_like(x, dtype=float)
        for k in range(1, int(np.max(t)) + 1):
            # P(alive at n+k and transact) = B(α+x+1, β+n−x)/B(α,β) · B(γ, δ+n+k)/B(γ,δ) / L
            log_term = (
                special.betaln(alpha + x + 1, beta + n - x)
                - special.betaln(alpha, beta)
                + special.betaln(gamma, delta + n + k)
                - special.betaln(gamma, delta)
            )
            total += np.where(k <= t, np.exp(log_term - log_l), 0.0)
        return total

    def expected_purchases_new(self, n: Any, params: dict[str, float] | None = None) -> np.ndarray:
        """E[X(n)]: transactions in the first ``n`` opportunities of a new customer."""
        alpha, beta, gamma, delta = self._param_array(params)
        n = np.asarray(n, dtype=float)
        total = np.zeros_like(n)
        for k in range(1, int(np.max(n)) + 1):
            alive = np.exp(special.betaln(gamma, delta + k) - special.betaln(gamma, delta))
            total += np.where(k <= n, alpha / (alpha + beta) * alive, 0.0)
        return total


class ShiftedBetaGeometric(MLEModel):
    """sBG contractual retention: ``fit(active)``, ``active[t]`` = customers still active at
    the start of period t (``active[0]`` = the cohort). ``params_``: ``alpha``, ``beta``.
    """

    _param_names = ("alpha", "beta")

    def __init__(self, initial_params: dict[str, float] | None = None):
        self.initial_params = initial_params

    def fit(self, active: Any) -> ShiftedBetaGeometric:
        """Maximum-likelihood fit on one cohort's survivor counts; returns self."""
        counts = as_array("active", active)
        if len(counts) < 2:
            raise InvalidInputError(
                "active needs the cohort size and at least one period", field="active"
            )
        if (counts < 0).any() or (np.diff(counts) > 0).any():
            raise InvalidInputError(
                "active must be non-negative and never increase (lost customers do not return)",
                field="active",
            )
        periods = np.arange(1, len(counts))
        lost = counts[:-1] - counts[1:]
        data = (periods, lost, counts[-1], len(counts) - 1)
        init = self.initial_params or {"alpha": 1.0, "beta": 1.0}
        self._fit_mle(data, np.ones(1), np.log([init[k] for k in self._param_names]))
        self.n_obs_ = float(counts[0])
        return self

    def fit_durations(
        self, duration: Any, churned: Any, weights: Any = None
    ) -> ShiftedBetaGeometric:
        """Fit on individual customers with different observation lengths.

        ``duration``: whole periods each customer was observed (≥ 1 for churned customers:
        the period in which they left); ``churned``: 1 if they left, 0 if still active
        (right-censored after ``duration`` periods). Returns self.
        """
        d = as_array("duration", duration)
        c = as_array("churned", churned)
        if len(d) != len(c):
            raise InvalidInputError("duration and churned must have the same length")
        if ((d < 0) | (d != np.floor(d))).any():
            raise InvalidInputError("duration must be whole periods ≥ 0", field="duration")
        if (~np.isin(c, (0, 1))).any() or ((c == 1) & (d < 1)).any():
            raise InvalidInputError(
                "churned must be 0/1, with duration ≥ 1 when 1", field="churned"
            )
        (d, c), w = collapse(d, c, weights=weights)
        lost = np.where(c == 1, w, 0.0)
        kept = np.where(c == 0, w, 0.0)
        init = self.initial_params or {"alpha": 1.0, "beta": 1.0}
        self._fit_mle(
            ("durations", d, lost, kept), np.ones(1), np.log([init[k] for k in self._param_names])
        )
        self.n_obs_ = float(w.sum())
        return self

    def _loglik_rows(self, params: np.ndarray, data) -> np.ndarray:
        alpha, beta = params
        if isinstance(data[0], str):  # ("durations", duration, lost, kept)
            _, d, lost, kept = data
            log_p = special.betaln(alpha + 1, beta + np.maximum(d, 1) - 1) - special.betaln(
                alpha, beta
            )
            log_s = special.betaln(alpha, beta + d) - special.betaln(alpha, beta)
            return np.array([np.dot(lost, log_p) + np.dot(kept, log_s)])
        periods, lost, survivors, last = data
        log_p = special.betaln(alpha + 1, beta + periods - 1) - special.betaln(alpha, beta)
        log_s = special.betaln(alpha, beta + last) - special.betaln(alpha, beta)
        return np.array([np.dot(lost, log_p) + survivors * log_s])

    def churn_probability(self, t: Any, params: dict[str, float] | None = None) -> np.ndarray:
        """P(T = t): the share of the cohort lost in period t (t ≥ 1)."""
        alpha, beta = self._param_array(params)
        t = np.asarray(t, dtype=float)
        return np.exp(special.betaln(alpha + 1, beta + t - 1) - special.betaln(alpha, beta))

    def survival(self, t: Any, params: dict[str, float] | None = None) -> np.ndarray:
        """S(t): the share of the cohort still active after t periods (S(0) = 1)."""
        alpha, beta = self._param_array(params)
        t = np.asarray(t, dtype=float)
        return np.exp(special.betaln(alpha, beta + t) - special.betaln(alpha, beta))

    def retention_rate(self, t: Any, params: dict[str, float] | None = None) -> np.ndarray:
        """r(t) = S(t)/S(t−1) = (β + t − 1)/(α + β + t − 1): retention rises with tenure."""
        alpha, beta = self._param_array(params)
        t = np.asarray(t, dtype=float)
        return (beta + t - 1) / (alpha + beta + t - 1)

    def discounted_expected_lifetime(self, discount_rate: float) -> float:
        """DEL = Σ_{t≥0} S(t)/(1+d)^t = 2F1(1, β; α+β; 1/(1+d)) (periods)."""
        alpha, beta = self._param_array()
        return float(special.hyp2f1(1, beta, alpha + beta, 1 / (1 + discount_rate)))

    def clv(
        self, horizon: int, discount_rate: float, margin: float, value_per_period: float = 1.0
    ) -> dict[str, float]:
        """Discounted value of a new customer over ``horizon`` periods, paid at each period's
        start while active: margin × value × Σ_{t<horizon} S(t)/(1+d)^t, with a 95 % interval
        (delta method). ``discount_rate`` is per period."""
        periods = np.arange(int(horizon))
        factor = (1 + discount_rate) ** -periods

        def fn(p: np.ndarray) -> np.ndarray:
            s = self.survival(periods, dict(zip(self._param_names, p, strict=True)))
            return np.array([margin * value_per_period * float(np.dot(s, factor))])

        value, low, high = self.delta_interval(fn)
        return {"clv": float(value[0]), "clv_lower": float(low[0]), "clv_upper": float(high[0])}

    def retention_table(self, periods: int) -> pd.DataFrame:
        """Survival, churn probability and retention rate for periods 1..``periods``."""
        t = np.arange(1, periods + 1)
        return pd.DataFrame(
            {
                "period": t,
                "survival": self.survival(t),
                "churn_probability": self.churn_probability(t),
                "retention_rate": self.retention_rate(t),
            }
        )
