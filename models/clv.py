"""Customer lifetime value: BG/NBD purchases, Gamma-Gamma spend, discounted CLV.

Own vectorised numpy/scipy code (not ``lifetimes``). Every likelihood is computed in log
space; fits collapse identical input rows into weights, so a fit costs what the distinct
(frequency, recency, T) tuples cost. Parameters are estimated on the log scale (they are all
positive); standard errors come from the numerical Hessian of the log-likelihood there and
are mapped back with the delta method.

References: Fader, Hardie & Lee (2005) "Counting your customers the easy way" (BG/NBD);
Fader, Hardie & Lee (2005) "RFM and CLV" (Gamma-Gamma).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special
from sklearn.base import BaseEstimator

from models.exceptions import ConvergenceError, InvalidInputError, NotFittedError

Z95 = 1.959963984540054


def _as_array(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=float).reshape(-1)
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr))[:5].tolist()
        raise InvalidInputError(f"{name} has missing or infinite values (rows {bad})", field=name)
    return arr


def check_rft(frequency: Any, recency: Any, T: Any) -> tuple[np.ndarray, ...]:
    """Validate (frequency, recency, T) arrays: finite, frequency ≥ 0, 0 ≤ recency ≤ T."""
    x, t_x, t = (
        _as_array(n, v) for n, v in (("frequency", frequency), ("recency", recency), ("T", T))
    )
    if not (len(x) == len(t_x) == len(t)):
        raise InvalidInputError("frequency, recency and T must have the same length")
    checks = (
        ("frequency", x < 0, "is negative"),
        ("recency", t_x < 0, "is negative"),
        ("recency", t_x > t + 1e-9, "is greater than T"),
        ("recency", (x == 0) & (t_x > 0), "is positive for a customer with frequency 0"),
    )
    for field, mask, what in checks:
        if mask.any():
            rows = np.flatnonzero(mask)[:5].tolist()
            raise InvalidInputError(f"{field} {what} (rows {rows})", field=field, rows=rows)
    return x, t_x, t


def collapse(*columns: np.ndarray, weights: Any = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Collapse identical rows into unique rows with summed weights."""
    stacked = np.column_stack(columns)
    w = np.ones(len(stacked)) if weights is None else _as_array("weights", weights)
    if len(w) != len(stacked):
        raise InvalidInputError("weights must have one value per row", field="weights")
    if (w < 0).any():
        raise InvalidInputError("weights must be non-negative", field="weights")
    unique, inverse = np.unique(stacked, axis=0, return_inverse=True)
    summed = np.bincount(inverse.reshape(-1), weights=w, minlength=len(unique))
    return [unique[:, i] for i in range(unique.shape[1])], summed


def numerical_hessian(f: Any, x0: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of a scalar function ``f`` at ``x0``."""
    n = len(x0)
    h = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            ei = np.zeros(n)
            ej = np.zeros(n)
            ei[i] = step
            ej[j] = step
            val = (f(x0 + ei + ej) - f(x0 + ei - ej) - f(x0 - ei + ej) + f(x0 - ei - ej)) / (
                4 * step * step
            )
            h[i, j] = h[j, i] = val
    return h


class _MLEModel(BaseEstimator):
    """Shared maximum-likelihood machinery: log-parameter fit, Hessian, intervals."""

    _param_names: tuple[str, ...] = ()

    def _negll(self, log_params: np.ndarray, data: list[np.ndarray], w: np.ndarray) -> float:
        ll = self._loglik_rows(np.exp(log_params), data)
        value = -float(np.dot(w, ll))
        return value if np.isfinite(value) else 1e300

    def _loglik_rows(self, params: np.ndarray, data: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def _fit_mle(self, data: list[np.ndarray], w: np.ndarray, x0: np.ndarray) -> None:
        # Penalty-free MLE on log params; BFGS then Nelder-Mead polish for published precision.
        result = optimize.minimize(
            self._negll, x0, args=(data, w), method="L-BFGS-B", options={"maxiter": 2000}
        )
        polish = optimize.minimize(
            self._negll,
            result.x,
            args=(data, w),
            method="Nelder-Mead",
            options={"xatol": 1e-9, "fatol": 1e-10, "maxiter": 20000, "maxfev": 40000},
        )
        best = polish if polish.fun <= result.fun else result
        if not np.all(np.isfinite(best.x)) or best.fun >= 1e299:
            raise ConvergenceError(f"{type(self).__name__} fit did not converge: {best.message}")
        self.log_params_ = best.x
        self.params_ = dict(zip(self._param_names, np.exp(best.x).tolist(), strict=True))
        self.log_likelihood_ = -float(best.fun)
        self.n_obs_ = float(w.sum())
        hess = numerical_hessian(lambda p: self._negll(p, data, w), best.x)
        try:
            cov = np.linalg.inv(hess)
        except np.linalg.LinAlgError:
            cov = np.full_like(hess, np.nan)
        if not np.all(np.isfinite(np.diag(cov))) or np.any(np.diag(cov) < 0):
            cov = np.full_like(hess, np.nan)
        self.log_covariance_ = cov
        se_log = np.sqrt(np.diag(cov))
        values = np.exp(best.x)
        self.standard_errors_ = dict(
            zip(self._param_names, (values * se_log).tolist(), strict=True)
        )
        self.confidence_intervals_ = {
            name: (float(np.exp(lp - Z95 * s)), float(np.exp(lp + Z95 * s)))
            for name, lp, s in zip(self._param_names, best.x, se_log, strict=True)
        }

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit first")

    def _param_array(self, params: dict[str, float] | None = None) -> np.ndarray:
        self._check_fitted()
        p = self.params_ if params is None else params
        return np.array([p[n] for n in self._param_names], dtype=float)

    def sample_params(self, n: int, random_state: int | None = 0) -> np.ndarray:
        """Draw ``n`` parameter vectors from the asymptotic (log-normal) sampling distribution."""
        self._check_fitted()
        rng = np.random.default_rng(random_state)
        cov = np.nan_to_num(self.log_covariance_)
        return np.exp(rng.multivariate_normal(self.log_params_, cov, size=n))


class BGNBD(_MLEModel):
    """Beta-geometric/NBD model of repeat purchases (non-contractual, continuous time).

    Inputs per customer: ``frequency`` (repeat purchases), ``recency`` (time of the last
    purchase since the first) and ``T`` (time since the first purchase), in one time unit
    (e.g. weeks). Fitted ``params_``: ``r``, ``alpha`` (purchase-rate heterogeneity, Gamma),
    ``a``, ``b`` (dropout heterogeneity, Beta).
    """

    _param_names = ("r", "alpha", "a", "b")

    def __init__(self, initial_params: dict[str, float] | None = None):
        self.initial_params = initial_params

    def fit(self, frequency: Any, recency: Any, T: Any, weights: Any = None) -> BGNBD:
        """Maximum-likelihood fit; returns self."""
        x, t_x, t = check_rft(frequency, recency, T)
        data, w = collapse(x, t_x, t, weights=weights)
        init = self.initial_params or {
            "r": 0.5,
            "alpha": max(float(np.mean(t)), 1.0),
            "a": 1.0,
            "b": 1.0,
        }
        self._fit_mle(data, w, np.log([init[n] for n in self._param_names]))
        return self

    def _loglik_rows(self, params: np.ndarray, data: list[np.ndarray]) -> np.ndarray:
        r, alpha, a, b = params
        x, t_x, t = data
        a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
        a2 = special.betaln(a, b + x) - special.betaln(a, b)
        a3 = -(r + x) * np.log(alpha + t)
        with np.errstate(divide="ignore", invalid="ignore"):
            a4 = np.where(
                x > 0,
                np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
                -np.inf,
            )
        return a1 + a2 + np.logaddexp(a3, a4)

    def log_likelihood_rows(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """Per-customer log-likelihood at the fitted parameters."""
        x, t_x, t = check_rft(frequency, recency, T)
        return self._loglik_rows(self._param_array(), [x, t_x, t])

    def _log_odds_dead(self, params: np.ndarray, x, t_x, t) -> np.ndarray:
        r, alpha, a, b = params
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(
                x > 0,
                np.log(a)
                - np.log(np.maximum(b + x - 1, 1e-300))
                + (r + x) * (np.log(alpha + t) - np.log(alpha + t_x)),
                -np.inf,
            )

    def probability_alive(
        self, frequency: Any, recency: Any, T: Any, params: dict[str, float] | None = None
    ) -> np.ndarray:
        """P(still active at T | history)."""
        x, t_x, t = check_rft(frequency, recency, T)
        return special.expit(-self._log_odds_dead(self._param_array(params), x, t_x, t))

    def expected_purchases(
        self,
        t: Any,
        frequency: Any,
        recency: Any,
        T: Any,
        params: dict[str, float] | None = None,
    ) -> np.ndarray:
        """Expected repeat purchases in the next ``t`` time units, given the history."""
        x, t_x, big_t = check_rft(frequency, recency, T)
        return self._conditional_expectation(
            self._param_array(params), np.asarray(t, float), x, t_x, big_t
        )

    def _conditional_expectation(self, params: np.ndarray, t, x, t_x, big_t) -> np.ndarray:
        r, alpha, a, b = params
        z = t / (alpha + big_t + t)
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
        log_ratio = (r + x) * (np.log(alpha + big_t) - np.log(alpha + big_t + t))
        numer = (a + b + x - 1) / (a - 1) * (1 - np.exp(log_ratio) * hyp)
        return numer * special.expit(-self._log_odds_dead(params, x, t_x, big_t))

    def expected_purchases_new(self, t: Any, params: dict[str, float] | None = None) -> np.ndarray:
        """Expected repeat purchases in ``(0, t]`` of a customer just acquired (E[X(t)])."""
        r, alpha, a, b = self._param_array(params)
        t = np.asarray(t, dtype=float)
        hyp = special.hyp2f1(r, b, a + b - 1, t / (alpha + t))
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp)


class GammaGamma(_MLEModel):
    """Gamma-Gamma model of the mean spend per purchase (for repeat buyers).

    Inputs: ``frequency`` (repeat purchases, > 0) and ``monetary`` (mean spend of those
    repeat purchases, currency). Fitted ``params_``: ``p``, ``q``, ``gamma``.
    """

    _param_names = ("p", "q", "gamma")

    def __init__(self, initial_params: dict[str, float] | None = None):
        self.initial_params = initial_params

    @staticmethod
    def _check(frequency: Any, monetary: Any, *, fitting: bool) -> tuple[np.ndarray, np.ndarray]:
        x = _as_array("frequency", frequency)
        m = _as_array("monetary_value", monetary)
        if len(x) != len(m):
            raise InvalidInputError("frequency and monetary_value must have the same length")
        if (x < 0).any():
            raise InvalidInputError("frequency is negative", field="frequency")
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
        data, w = collapse(x, m, weights=weights)
        mean, var = float(np.mean(m)), float(np.var(m)) or 1.0
        init = self.initial_params or {"p": 2.0, "q": 3.0, "gamma": mean}
        del var
        self._fit_mle(data, w, np.log([init[n] for n in self._param_names]))
        return self

    def _loglik_rows(self, params: np.ndarray, data: list[np.ndarray]) -> np.ndarray:
        p, q, gamma = params
        x, m = data
        return (
            special.gammaln(p * x + q)
            - special.gammaln(p * x)
            - special.gammaln(q)
            + q * np.log(gamma)
            + (p * x - 1) * np.log(m)
            + p * x * np.log(x)
            - (p * x + q) * np.log(gamma + x * m)
        )

    def expected_spend(
        self, frequency: Any, monetary: Any, params: dict[str, float] | None = None
    ) -> np.ndarray:
        """E[mean spend per purchase | history] (currency); the population mean when x = 0."""
        x, m = self._check(frequency, monetary, fitting=False)
        p, q, gamma = self._param_array(params)
        return (p * (gamma + x * m)) / (p * x + q - 1)


class CLVModel(BaseEstimator):
    """Discounted customer lifetime value from BG/NBD + Gamma-Gamma.

    ``fit`` and ``predict`` take the per-customer summary of :mod:`models.features`
    (``frequency``, ``recency`` and ``T`` in days, ``monetary_value``; ``margin_rate`` and
    ``total_profit``/``total_revenue`` when the data had costs).

    - ``time_unit_days``: the models' time unit (7 = weeks, as in the literature).
    - ``horizon_days``: how far ahead CLV and expected purchases look.
    - ``discount_rate``: annual discount rate (0.1 = 10 %), applied monthly.
    - ``margin``: profit margin applied to spend; ``None`` learns it from the data's costs
      (each customer's own margin, else the overall margin) and falls back to 1.0 (CLV in
      revenue) when there are no costs. ``margin_source_`` records which.

    Fitted: ``bgnbd_``, ``gamma_gamma_``, ``margin_``, ``margin_source_`` and
    ``high_value_threshold_`` (80th percentile of the training customers' CLV).
    """

    def __init__(
        self,
        time_unit_days: float = 7.0,
        horizon_days: int = 365,
        discount_rate: float = 0.10,
        margin: float | None = None,
    ):
        self.time_unit_days = time_unit_days
        self.horizon_days = horizon_days
        self.discount_rate = discount_rate
        self.margin = margin

    def _rft(self, summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        for column in ("frequency", "recency", "T"):
            if column not in summary.columns:
                raise InvalidInputError(f"missing the column '{column}'", field=column)
        u = float(self.time_unit_days)
        return (
            summary["frequency"].to_numpy(dtype=float),
            summary["recency"].to_numpy(dtype=float) / u,
            summary["T"].to_numpy(dtype=float) / u,
        )

    def fit(self, summary: pd.DataFrame, y: Any = None) -> CLVModel:
        """Fit BG/NBD on all customers and Gamma-Gamma on repeat buyers; returns self."""
        x, t_x, t = self._rft(summary)
        self.bgnbd_ = BGNBD().fit(x, t_x, t)
        monetary = summary["monetary_value"].to_numpy(dtype=float)
        repeat = (x > 0) & (monetary > 0)
        if repeat.sum() < 10:
            raise InvalidInputError(
                f"only {int(repeat.sum())} repeat buyers with positive spend: too few to fit "
                "the spend model (need 10)",
                field="monetary_value",
            )
        self.gamma_gamma_ = GammaGamma().fit(x[repeat], monetary[repeat])
        if self.margin is not None:
            self.margin_, self.margin_source_ = float(self.margin), "configured"
        elif "total_profit" in summary and summary["total_profit"].notna().any():
            profit = summary["total_profit"].to_numpy(dtype=float)
            revenue = summary["total_revenue"].to_numpy(dtype=float)
            ok = np.isfinite(profit)
            self.margin_ = float(profit[ok].sum() / max(revenue[ok].sum(), 1e-12))
            self.margin_source_ = "data"
        else:
            self.margin_, self.margin_source_ = 1.0, "none: CLV is revenue, no cost data"
        # "High value" for recommendations: the top fifth of the training population's CLV.
        self.high_value_threshold_ = float(np.quantile(self.predict(summary)["clv"], 0.8))
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "bgnbd_"):
            raise NotFittedError("CLVModel is not fitted; call fit first")

    def _margins(self, summary: pd.DataFrame) -> np.ndarray:
        margins = np.full(len(summary), self.margin_)
        if self.margin_source_ == "data" and "margin_rate" in summary:
            own = summary["margin_rate"].to_numpy(dtype=float)
            margins = np.where(np.isfinite(own), own, margins)
        return margins

    def _discounted_purchases(self, bg_params: np.ndarray, x, t_x, t) -> np.ndarray:
        """Σ over months of expected purchases in the month × discount factor."""
        n_months = max(1, int(round(self.horizon_days / (365.25 / 12))))
        step_days = self.horizon_days / n_months
        u = float(self.time_unit_days)
        previous = np.zeros_like(x)
        total = np.zeros_like(x)
        for k in range(1, n_months + 1):
            cumulative = self.bgnbd_._conditional_expectation(
                bg_params, k * step_days / u, x, t_x, t
            )
            factor = (1 + self.discount_rate) ** (-(k * step_days) / 365.25)
            total += (cumulative - previous) * factor
            previous = cumulative
        return total

    def _clv(self, bg_params, gg_params, x, t_x, t, monetary, margins) -> np.ndarray:
        spend = self.gamma_gamma_.expected_spend(
            x, monetary, dict(zip(GammaGamma._param_names, gg_params, strict=True))
        )
        return self._discounted_purchases(bg_params, x, t_x, t) * spend * margins

    def predict(self, summary: pd.DataFrame) -> pd.DataFrame:
        """Per customer: expected purchases and spend over the horizon, P(alive), CLV ± 95 %.

        Columns: ``expected_purchases`` (count in ``horizon_days``), ``probability_alive``
        (0–1), ``expected_spend`` (currency per purchase), ``clv`` (discounted profit over
        the horizon, currency), ``clv_lower`` and ``clv_upper`` (95 % interval from the
        parameters' sampling uncertainty, delta method), ``margin`` (applied).
        """
        self._check_fitted()
        x, t_x, t = check_rft(*self._rft(summary))
        monetary = np.nan_to_num(summary["monetary_value"].to_numpy(dtype=float))
        margins = self._margins(summary)
        bg = self.bgnbd_._param_array()
        gg = self.gamma_gamma_._param_array()
        expected = self.bgnbd_._conditional_expectation(
            bg, self.horizon_days / self.time_unit_days, x, t_x, t
        )
        spend = self.gamma_gamma_.expected_spend(x, monetary)
        clv = self._clv(bg, gg, x, t_x, t, monetary, margins)
        se = self._clv_standard_error(bg, gg, x, t_x, t, monetary, margins, clv)
        return pd.DataFrame(
            {
                "expected_purchases": expected,
                "probability_alive": self.bgnbd_.probability_alive(x, t_x, t),
                "expected_spend": spend,
                "clv": clv,
                "clv_lower": clv - Z95 * se,
                "clv_upper": clv + Z95 * se,
                "margin": margins,
            },
            index=summary.index,
        )

    def _clv_standard_error(self, bg, gg, x, t_x, t, monetary, margins, clv) -> np.ndarray:
        """Delta method on the log parameters: se² = g' Σ g, g by forward differences."""
        step = 1e-5
        log_bg, log_gg = np.log(bg), np.log(gg)
        variance = np.zeros_like(clv)
        for log_p, cov, is_bg in (
            (log_bg, self.bgnbd_.log_covariance_, True),
            (log_gg, self.gamma_gamma_.log_covariance_, False),
        ):
            if not np.all(np.isfinite(cov)):
                return np.full_like(clv, np.nan)
            grads = []
            for i in range(len(log_p)):
                shifted = log_p.copy()
                shifted[i] += step
                p = np.exp(shifted)
                value = (
                    self._clv(p, gg, x, t_x, t, monetary, margins)
                    if is_bg
                    else self._clv(bg, p, x, t_x, t, monetary, margins)
                )
                grads.append((value - clv) / step)
            g = np.vstack(grads)  # (n_params, n_customers)
            variance += np.einsum("ik,ij,jk->k", g, cov, g)
        return np.sqrt(np.maximum(variance, 0.0))

    def params(self) -> dict[str, float]:
        """All fitted parameters, prefixed by model."""
        self._check_fitted()
        out = {f"bgnbd_{k}": v for k, v in self.bgnbd_.params_.items()}
        out.update({f"gg_{k}": v for k, v in self.gamma_gamma_.params_.items()})
        out["margin"] = self.margin_
        return out
