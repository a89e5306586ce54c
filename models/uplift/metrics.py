"""Qini and uplift curves, AUUC and the Qini coefficient: how well a score ranks customers by
the effect of a treatment, measured on randomised data (treated and control rows).

Sort the rows by score, highest first, and take the first ``t`` rows. With ``N_T(t)``,
``N_C(t)`` the treated and control rows among them and ``Y_T(t)``, ``Y_C(t)`` the sums of
their outcomes (retained 0/1, or spend):

* **Qini curve** (Radcliffe 2007, "Using control groups to target on predicted lift",
  Direct Marketing Analytics Journal): ``Q(t) = Y_T(t) − Y_C(t) · N_T(t) / N_C(t)``, the
  incremental outcomes among the treated of the top ``t``, the control scaled to their number
  (0 while ``N_C(t) = 0``, i.e. no control row yet: ``Q(t) = Y_T(t)``).
* **Uplift curve** (Gutierrez & Gerardy 2017, "Causal inference and uplift modelling: a
  review of the literature", PMLR 67): ``U(t) = (Y_T(t) / N_T(t) − Y_C(t) / N_C(t)) · t``, the
  incremental outcomes had all the top ``t`` been treated (0 while either group is empty).

Both are returned per customer of the population, ``(x, y) = (t / N, Q(t) / N)``, from
``(0, 0)`` to ``(1, Q(N) / N)``, with points only where the score changes (rows with equal
scores are taken together: their order cannot matter), like ``sklearn.metrics.roc_curve``.

* **AUUC**: the area under the uplift curve over ``x`` in ``[0, 1]`` (trapezoids).
* **Qini coefficient**: the area between the Qini curve and the random-targeting line from
  ``(0, 0)`` to ``(1, Q(N) / N)`` (Radcliffe's ``q``, in outcome units per customer): > 0
  when the score ranks better than chance, 0 for a random score in expectation. It is the
  gate metric of the uplift model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.exceptions import InvalidInputError

__all__ = ["auuc", "qini_coefficient", "qini_curve", "uplift_at", "uplift_curve"]


def _inputs(y: Any, treated: Any, score: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float)
    t = np.asarray(treated)
    s = np.asarray(score, dtype=float)
    if not (y.ndim == t.ndim == s.ndim == 1) or not (len(y) == len(t) == len(s)):
        raise InvalidInputError("y, treated and score must be 1-d and of one length", field="score")
    if len(y) == 0:
        raise InvalidInputError("no rows to evaluate", field="y")
    if not (np.isfinite(y).all() and np.isfinite(s).all()):
        raise InvalidInputError("y and score must be finite numbers", field="score")
    if t.dtype != bool:
        if not np.isin(t, (0, 1)).all():
            raise InvalidInputError("treated must be 0/1 or True/False", field="treated")
        t = t.astype(bool)
    return y, t, s


def _cumulative(
    y: np.ndarray, t: np.ndarray, s: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(n, N_T, N_C, Y_T, Y_C) at the end of each group of equal scores, highest first,
    with the origin (all 0) prepended."""
    order = np.argsort(-s, kind="stable")
    ys, ts, ss = y[order], t[order], s[order]
    ends = np.r_[np.flatnonzero(np.diff(ss) != 0), len(ss) - 1]
    n_t = np.cumsum(ts)[ends]
    n_c = np.cumsum(~ts)[ends]
    y_t = np.cumsum(np.where(ts, ys, 0.0))[ends]
    y_c = np.cumsum(np.where(ts, 0.0, ys))[ends]
    zero = np.zeros(1)
    return (
        np.r_[zero, ends + 1.0],
        np.r_[zero, n_t],
        np.r_[zero, n_c],
        np.r_[zero, y_t],
        np.r_[zero, y_c],
    )


def qini_curve(y: Any, treated: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(x, q)``: the share of the population targeted and the Qini curve per customer
    (see the module docstring), at the origin and the end of each group of equal scores."""
    y, t, s = _inputs(y, treated, score)
    n, n_t, n_c, y_t, y_c = _cumulative(y, t, s)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = y_t - np.where(n_c > 0, y_c * n_t / np.where(n_c > 0, n_c, 1.0), 0.0)
    return n / len(y), q / len(y)


def uplift_curve(y: Any, treated: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(x, u)``: the share targeted and the uplift curve per customer (see the module
    docstring)."""
    y, t, s = _inputs(y, treated, score)
    n, n_t, n_c, y_t, y_c = _cumulative(y, t, s)
    both = (n_t > 0) & (n_c > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(both, y_t / np.where(both, n_t, 1.0) - y_c / np.where(both, n_c, 1.0), 0.0)
    return n / len(y), rate * n / len(y)


def _area(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def auuc(y: Any, treated: Any, score: Any) -> float:
    """Area under the uplift curve over the share targeted, ``[0, 1]``."""
    return _area(*uplift_curve(y, treated, score))


def qini_coefficient(y: Any, treated: Any, score: Any) -> float:
    """Area between the Qini curve and the random-targeting line (Radcliffe 2007)."""
    x, q = qini_curve(y, treated, score)
    return _area(x, q) - float(q[-1]) / 2.0


def uplift_at(true_uplift: Any, score: Any, share: float = 0.2) -> float:
    """The share of the total true effect held by the top ``share`` of rows by ``score``
    (simulated data, where each row's true uplift is known): 0.2 for a random score in
    expectation; the acceptance test asks for at least twice ``share``."""
    truth = np.asarray(true_uplift, dtype=float)
    s = np.asarray(score, dtype=float)
    k = int(round(share * len(s)))
    top = np.argsort(-s, kind="stable")[:k]
    return float(truth[top].sum() / truth.sum())
