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


def distinct_codes(key: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, each row's position among them) of integer codes in
    [0, size): by a table when ``size`` is moderate (no sort), else by sorting."""
    if size <= max(4 * len(key), 1 << 20):
        present = np.zeros(size, dtype=bool)
        present[key] = True
        position = np.cumsum(present) - 1
        return np.flatnonzero(present), position[key]
    return np.unique(key, return_inverse=True)


def collapse(*columns: np.ndarray, weights: Any = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Collapse identical rows into distinct rows (sorted) with summed weights."""
    n = len(columns[0])
    w = check_weights(weights, n)
    key = np.zeros(n, dtype=np.int64)
    size = 1
    for column in columns:
        values, codes = np.unique(column, return_inverse=True)
        if size * len(values) >= 2**62:  # renumber the key so far before it could overflow
            uniq, key = distinct_codes(key, size)
            size = len(uniq)
        key = key * len(values) + codes
        size *= len(values)
    distinct, inverse = distinct_codes(key, size)
    summed = np.bincount(inverse, weights=w, minlength=len(distinct))
    row = np.empty(len(distinct), dtype=np.int64)
    row[inverse] = np.arange(n)  # one row of each distinct kind
    keep = summed > 0
    return [np.asarray(c, dtype=float)[row][keep] for c in columns], summed[keep]


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

    def _loglik_and_grad(
        self, params: np.ndarray, data: Any, w: np.ndarray
    ) -> tuple[float, np.ndarray | None]:
        """(Σ w·ll, its gradient or None); models that share work between the two override it."""
        return float(np.dot(w, self._loglik_rows(params, data))), self._loglik_grad(params, data, w)

    # --- machinery --------------------------------------------------------------------------
    def _negll(self, log_params: np.ndarray, data: Any, w: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            value = -float(np.dot(w, self._loglik_rows(np.exp(log_params), data)))
        return value if np.isfinite(value) else 1e300

    def _negll_and_grad(
        self, log_params: np.ndarray, data: Any, w: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """(−Σ w·ll, its gradient) in the log parameters; central differences without a model
        gradient."""
        if not self._has_gradient():
            return self._negll(log_params, data, w), self._numeric_neggrad(log_params, data, w)
        with np.errstate(all="ignore"):
            total, g = self._loglik_and_grad(np.exp(log_params), data, w)
        if not np.isfinite(total) or g is None:
            return 1e300, np.zeros(len(log_params))
        return -total, -np.where(np.isfinite(g), g, 0.0)

    def _numeric_neggrad(self, log_params: np.ndarray, data: Any, w: np.ndarray) -> np.ndarray:
        g = np.empty(len(log_params))
        for i in range(len(log_params)):
            e = np.zeros(len(log_params))
            e[i] = 1e-6
            g[i] = (
                self._negll(log_params + e, data, w) - self._negll(log_params - e, data, w)
            ) / 2e-6
        return g

    def _has_gradient(self) -> bool:
        own = type(self)
        return (
            own._loglik_grad is not MLEModel._loglik_grad
            or own._loglik_and_grad is not MLEModel._loglik_and_grad
        )

    def _fit_mle(
        self,
        data: Any,
        w: np.ndarray,
        x0: np.ndarray,
        *,
        shift: np.ndarray | None = None,
        log_likelihood_offset: float = 0.0,
    ) -> None:
        """Maximise Σ w·ll from the log parameters ``x0``: L-BFGS to the neighbourhood of the
        optimum, then Newton steps on a Hessian from the gradient (quadratic convergence: the
        published digits exactly, in a few evaluations).

        ``shift`` is added to the fitted log parameters and ``log_likelihood_offset`` to the
        log-likelihood: a model fitted on rescaled data reports them in the caller's units.
        """

        def fg(p: np.ndarray) -> tuple[float, np.ndarray]:
            return self._negll_and_grad(p, data, w)

        # L-BFGS stops at a relative change of 1e-10: Newton does the last digits far cheaper.
        result = optimize.minimize(
            fg,
            x0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 5000, "ftol": 1e-10, "gtol": 1e-9},
        )
        best, best_f = np.asarray(result.x, dtype=float), float(result.fun)
        grad = np.asarray(result.jac, dtype=float)
        hess = self._hessian(data, w, best)
        start = best.copy()
        for _ in range(8):  # Newton polish on one Hessian: the optimum is a step or two away
            try:
                step = np.linalg.solve(hess, grad)
            except np.linalg.LinAlgError:
                break
            candidate = best - step
            value, candidate_grad = fg(candidate)
            if not np.isfinite(value) or value > best_f + 1e-12 * max(1.0, abs(best_f)):
                break
            best, best_f, grad = candidate, value, candidate_grad
            if np.max(np.abs(step)) < 1e-7:  # below any reported digit (and gradient noise)
                break
        if not np.all(np.isfinite(best)) or best_f >= 1e299:
            raise ConvergenceError(f"{type(self).__name__} fit did not converge: {result.message}")
        if np.max(np.abs(best - start)) > 1e-3:  # far from where the Hessian was taken
            hess = self._hessian(data, w, best)
        shift = np.zeros(len(best)) if shift is None else shift
        self._set_fitted(best + shift, best_f - log_likelihood_offset, hess, float(w.sum()))

    def _hessian(self, data: Any, w: np.ndarray, x: np.ndarray) -> np.ndarray:
        if self._has_gradient():
            return hessian_from_gradient(lambda p: self._negll_and_grad(p, data, w)[1], x)
        return hessian_from_function(lambda p: self._negll(p, data, w), x)

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
