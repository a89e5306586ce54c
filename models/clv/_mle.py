"""Shared maximum-likelihood machinery for the CLV models.

All parameters are positive and estimated on the log scale. A model supplies the per-row
log-likelihood (and, where it can, the analytic gradient of the weighted total with respect
to the log parameters). Fitting is L-BFGS followed by a few Newton steps on a Hessian built
from gradients, so the optimum is exact to the published digits; standard errors come from
the same Hessian, mapped to the natural scale with the delta method.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import optimize
from sklearn.base import BaseEstimator

from models.exceptions import ConvergenceError, InvalidInputError, NotFittedError

# The standard normal 97.5 % quantile: every 95 % interval of the product uses it.
Z95 = 1.959963984540054


def as_array(name: str, values: Any) -> np.ndarray:
    """Float array of ``values``; NaN or infinite values name the field and rows."""
    arr = np.asarray(values, dtype=float).reshape(-1)
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr))[:5].tolist()
        raise InvalidInputError(
            f"{name} has missing or infinite values (rows {bad})", field=name, rows=bad
        )
    return arr


def check_weights(weights: Any, n: int) -> np.ndarray:
    w = np.ones(n) if weights is None else as_array("weights", weights)
    if len(w) != n:
        raise InvalidInputError("weights must have one value per row", field="weights")
    if (w < 0).any():
        raise InvalidInputError("weights must be non-negative", field="weights")
    return w


def collapse(*columns: np.ndarray, weights: Any = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Collapse identical rows into unique rows with summed weights (hash-based, O(n))."""
    import pandas as pd

    n = len(columns[0])
    w = check_weights(weights, n)
    frame = pd.DataFrame({f"c{i}": c for i, c in enumerate(columns)})
    frame["w"] = w
    grouped = frame.groupby([f"c{i}" for i in range(len(columns))], sort=True)["w"].sum()
    unique = [grouped.index.get_level_values(i).to_numpy(dtype=float) for i in range(len(columns))]
    if len(columns) == 1:
        unique = [grouped.index.to_numpy(dtype=float)]
    keep = grouped.to_numpy() > 0
    return [u[keep] for u in unique], grouped.to_numpy(dtype=float)[keep]


def hessian_from_gradient(grad: Callable[[np.ndarray], np.ndarray], x0: np.ndarray) -> np.ndarray:
    """Central differences of an analytic gradient (symmetrised)."""
    n = len(x0)
    h = np.empty((n, n))
    for i in range(n):
        step = 1e-5 * max(1.0, abs(x0[i]))
        e = np.zeros(n)
        e[i] = step
        h[:, i] = (grad(x0 + e) - grad(x0 - e)) / (2 * step)
    return (h + h.T) / 2


def hessian_from_function(f: Callable[[np.ndarray], float], x0: np.ndarray) -> np.ndarray:
    """Central-difference Hessian of a scalar function."""
    n = len(x0)
    h = np.empty((n, n))
    steps = 1e-4 * np.maximum(1.0, np.abs(x0))
    f0 = f(x0)
    for i in range(n):
        for j in range(i, n):
            ei = np.zeros(n)
            ej = np.zeros(n)
            ei[i] = steps[i]
            ej[j] = steps[j]
            if i == j:
                val = (f(x0 + ei) - 2 * f0 + f(x0 - ei)) / steps[i] ** 2
            else:
                val = (f(x0 + ei + ej) - f(x0 + ei - ej) - f(x0 - ei + ej) + f(x0 - ei - ej)) / (
                    4 * steps[i] * steps[j]
                )
            h[i, j] = h[j, i] = val
    return h


class MLEModel(BaseEstimator):
    """Base of the likelihood models: fit on log parameters, Hessian, intervals.

    Fitted attributes: ``params_`` (dict), ``log_likelihood_``, ``standard_errors_`` (dict),
    ``confidence_intervals_`` (dict of 95 % (low, high)), ``log_covariance_`` and ``n_obs_``.
    """

    _param_names: tuple[str, ...] = ()

    # --- to implement -----------------------------------------------------------------------
    def _loglik_rows(self, params: np.ndarray, data: Any) -> np.ndarray:
        raise NotImplementedError

    def _loglik_grad(self, params: np.ndarray, data: Any, w: np.ndarray) -> np.ndarray | None:
        """Gradient of Σ w·ll with respect to the log parameters; None when not available."""
        return None

    # --- machinery --------------------------------------------------------------------------
    def _negll(self, log_params: np.ndarray, data: Any, w: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            value = -float(np.dot(w, self._loglik_rows(np.exp(log_params), data)))
        return value if np.isfinite(value) else 1e300

    def _neggrad(self, log_params: np.ndarray, data: Any, w: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            g = self._loglik_grad(np.exp(log_params), data, w)
        if g is None:  # central differences of the function
            g = np.empty(len(log_params))
            for i in range(len(log_params)):
                e = np.zeros(len(log_params))
                e[i] = 1e-6
                g[i] = (
                    -(self._negll(log_params + e, data, w) - self._negll(log_params - e, data, w))
                    / 2e-6
                )
        return -np.where(np.isfinite(g), g, 0.0)

    def _has_gradient(self) -> bool:
        return type(self)._loglik_grad is not MLEModel._loglik_grad

    def _fit_mle(self, data: Any, w: np.ndarray, x0: np.ndarray) -> None:
        def f(p: np.ndarray) -> float:
            return self._negll(p, data, w)

        def g(p: np.ndarray) -> np.ndarray:
            return self._neggrad(p, data, w)

        result = optimize.minimize(
            f, x0, jac=g, method="L-BFGS-B", options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-9}
        )
        best, best_f = result.x, float(result.fun)
        hess = self._hessian(f, g, best)
        for _ in range(8):  # Newton polish: quadratic convergence near the optimum
            try:
                step = np.linalg.solve(hess, g(best))
            except np.linalg.LinAlgError:
                break
            candidate = best - step
            value = f(candidate)
            if not np.isfinite(value) or value > best_f + 1e-9:
                break
            best, best_f = candidate, value
            if np.max(np.abs(step)) < 1e-10:
                break
            hess = self._hessian(f, g, best)
        if not np.all(np.isfinite(best)) or best_f >= 1e299:
            raise ConvergenceError(f"{type(self).__name__} fit did not converge: {result.message}")
        self._set_fitted(best, best_f, hess, float(w.sum()))

    def _hessian(self, f: Callable, g: Callable, x: np.ndarray) -> np.ndarray:
        if self._has_gradient():
            return hessian_from_gradient(g, x)
        return hessian_from_function(f, x)

    def _set_fitted(self, log_params: np.ndarray, negll: float, hess: np.ndarray, n: float) -> None:
        self.log_params_ = log_params
        values = np.exp(log_params)
        self.params_ = dict(zip(self._param_names, values.tolist(), strict=True))
        self.log_likelihood_ = -negll
        self.n_obs_ = n
        try:
            cov = np.linalg.inv(hess)
        except np.linalg.LinAlgError:
            cov = np.full_like(hess, np.nan)
        if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) <= 0):
            cov = np.full_like(hess, np.nan)
        self.log_covariance_ = cov
        se_log = np.sqrt(np.diag(cov))
        self.standard_errors_ = dict(
            zip(self._param_names, (values * se_log).tolist(), strict=True)
        )
        self.confidence_intervals_ = {
            name: (float(np.exp(lp - Z95 * s)), float(np.exp(lp + Z95 * s)))
            for name, lp, s in zip(self._param_names, log_params, se_log, strict=True)
        }

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit first")

    def _param_array(self, params: dict[str, float] | None = None) -> np.ndarray:
        if params is None:
            self._check_fitted()
            params = self.params_
        missing = [n for n in self._param_names if n not in params]
        if missing:
            raise InvalidInputError(f"params lack {missing}", field="params")
        return np.array([params[n] for n in self._param_names], dtype=float)

    def delta_interval(
        self, fn: Callable[[np.ndarray], np.ndarray], value: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(value, lower, upper): 95 % interval of ``fn(params)`` by the delta method."""
        self._check_fitted()
        base = self._param_array()
        value = fn(base) if value is None else value
        se = delta_standard_error(fn, self.log_params_, self.log_covariance_, value)
        return value, value - Z95 * se, value + Z95 * se


def delta_standard_error(
    fn: Callable[[np.ndarray], np.ndarray],
    log_params: np.ndarray,
    cov: np.ndarray,
    value: np.ndarray,
) -> np.ndarray:
    """se of ``fn(exp(log_params))`` from the log-parameter covariance (forward differences)."""
    if not np.all(np.isfinite(cov)):
        return np.full_like(np.asarray(value, dtype=float), np.nan)
    step = 1e-6
    grads = []
    for i in range(len(log_params)):
        shifted = log_params.copy()
        shifted[i] += step
        grads.append((np.asarray(fn(np.exp(shifted))) - value) / step)
    g = np.vstack([np.atleast_1d(x) for x in grads])
    return np.sqrt(np.maximum(np.einsum("ik,ij,jk->k", g, cov, g), 0.0))
