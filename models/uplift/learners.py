"""Meta-learners of the effect of each offer over control, from randomised campaign history.

All learners share one interface: ``fit(X, treatment, y)`` with ``X`` a numeric matrix
(NaN allowed), ``treatment`` the arm of each row (an offer id, or the ``control`` label) and
``y`` the outcome (0/1 retained, or spend); ``predict(X)`` returns an ``(n, n_offers)``
array, column ``k`` the predicted effect of offer ``offers_[k]`` over control: the increase in
retention probability, or in spend. Multi-treatment is "one model set per offer against
control": offer ``k`` is learnt from its rows and the control rows.

The base models are scikit-learn's histogram gradient boosting (native missing values and
categorical columns, ``categorical``: a boolean mask of the columns holding category
codes), a classifier for a 0/1 outcome (``predict_proba``) and a regressor otherwise.

* :class:`TLearner` -- one outcome model per arm; effect ``mu_k(x) − mu_0(x)``.
* :class:`XLearner` -- Künzel, Sekhon, Bickel & Yu (2019), "Metalearners for estimating
  heterogeneous treatment effects using machine learning", PNAS 116(10): the T-learner's
  models impute each row's effect (treated: ``y − mu_0(x)``; control: ``mu_k(x) − y``), two
  regressions of the imputed effects are blended by the propensity ``e``: ``tau(x) = e
  tau_0(x) + (1 − e) tau_1(x)``.
* :class:`DRLearner` -- Kennedy (2023), "Towards optimal doubly robust estimation of
  heterogeneous causal effects", EJS 17(2): the pseudo-outcome ``mu_k − mu_0 + T (y −
  mu_k) / e − (1 − T)(y − mu_0) / (1 − e)`` with out-of-fold outcome models (two folds),
  regressed on ``x``.

The campaigns are randomised, so the propensity of offer ``k`` against control is its share
of the two arms, ``n_k / (n_k + n_0)``, a constant (no propensity model is fitted).

Planned campaigns: when each customer's offer was chosen for them and the control group was
held out from every offer's customers, offer ``k``'s customers are comparable only with the
control customers held out from ``k``. ``fit(..., control_for=...)`` names, for each control
row, the offer it was held out from (``""`` or None: a randomised campaign's control row,
comparable with every offer); offer ``k`` is then learnt from its rows and the control rows
held out from ``k`` or from no particular offer (all control rows when fewer than
``MIN_ROWS_PER_ARM`` qualify).

Why hand-written: the two maintained libraries do not fit this project's constraints.
``causalml`` pulls in LightGBM, XGBoost, PyTorch-adjacent and Cython builds for what is
here a few dozen lines on scikit-learn; ``scikit-uplift`` has had no release since 2022 and
offers no multi-treatment X- or DR-learner. The learners below follow the published
definitions and are tested against known effects (tests/models/test_uplift.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from models.exceptions import InvalidInputError

__all__ = ["CONTROL", "DRLearner", "TLearner", "XLearner", "control_rows", "is_binary"]

CONTROL = "control"
MIN_ROWS_PER_ARM = 20


def is_binary(y: np.ndarray) -> bool:
    """True when every outcome is 0 or 1 (retention), False for a continuous outcome."""
    return bool(np.isin(y, (0.0, 1.0)).all())


class _MetaLearner(BaseEstimator):
    """What the learners share: checks, arms, base models."""

    def __init__(
        self,
        *,
        control: str = CONTROL,
        max_iter: int = 100,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 7,
        min_samples_leaf: int = 60,
        l2_regularization: float = 1.0,
        categorical: Any = None,
        random_state: int = 0,
    ):
        self.control = control
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.categorical = categorical
        self.random_state = random_state

    # -- base models -------------------------------------------------------------------------

    def _params(self) -> dict[str, Any]:
        return {
            "max_iter": self.max_iter,
            "learning_rate": self.learning_rate,
            "max_leaf_nodes": self.max_leaf_nodes,
            "min_samples_leaf": self.min_samples_leaf,
            "l2_regularization": self.l2_regularization,
            "categorical_features": None
            if self.categorical is None or not np.any(self.categorical)
            else np.asarray(self.categorical, dtype=bool),
            "early_stopping": False,
            "random_state": self.random_state,
        }

    def _outcome_model(self, X: np.ndarray, y: np.ndarray) -> Any:
        """An outcome model of ``y`` fitted on ``X``: P(y = 1) for 0/1 outcomes."""
        if self.binary_:
            if np.unique(y).size < 2:  # every row alike: a constant
                return _Constant(float(y[0]))
            model: Any = HistGradientBoostingClassifier(**self._params())
        else:
            model = HistGradientBoostingRegressor(**self._params())
        return model.fit(_without_empty_columns(X), y)

    def _effect_model(self, X: np.ndarray, target: np.ndarray) -> Any:
        return HistGradientBoostingRegressor(**self._params()).fit(
            _without_empty_columns(X), target
        )

    @staticmethod
    def _predict(model: Any, X: np.ndarray) -> np.ndarray:
        if isinstance(model, HistGradientBoostingClassifier):
            return model.predict_proba(X)[:, 1]
        return np.asarray(model.predict(X), dtype=float)

    # -- checks ------------------------------------------------------------------------------

    def _check(
        self, X: Any, treatment: Any, y: Any, control_for: Any = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """The checked ``X``, arms and outcomes, and per offer the control rows it is
        compared with (:func:`control_rows`)."""
        X = np.asarray(X, dtype=float)
        arms = np.asarray(treatment).astype(str)
        y = np.asarray(y, dtype=float)
        if X.ndim != 2 or len(X) != len(arms) or len(arms) != len(y):
            raise InvalidInputError(
                "X (2-d), treatment and y must have one row per contact", field="X"
            )
        if not np.isfinite(y).all():
            raise InvalidInputError("the outcome y must be finite numbers", field="y")
        offers = sorted(set(arms.tolist()) - {self.control})
        if not offers:
            raise InvalidInputError(
                f"no treated rows: every treatment is '{self.control}'", field="treatment"
            )
        counts = {a: int((arms == a).sum()) for a in [self.control, *offers]}
        few = {a: n for a, n in counts.items() if n < MIN_ROWS_PER_ARM}
        if few:
            listed = ", ".join(f"'{a}' ({n})" for a, n in few.items())
            raise InvalidInputError(
                f"too few rows to learn an effect (at least {MIN_ROWS_PER_ARM} per arm): {listed}",
                field="treatment",
            )
        self.offers_ = offers
        self.n_features_in_ = X.shape[1]
        self.binary_ = is_binary(y)
        controls = control_rows(arms, self.control, offers, control_for)
        self.propensity_ = {o: counts[o] / (counts[o] + int(controls[o].sum())) for o in offers}
        return X, arms, y, controls

    def _check_x(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise InvalidInputError(
                f"X must have {self.n_features_in_} columns, got shape {X.shape}", field="X"
            )
        return X


def control_rows(
    arms: np.ndarray, control: str, offers: list[str], control_for: Any = None
) -> dict[str, np.ndarray]:
    """Per offer, the control rows it is compared with (see the module docstring): every
    control row, or with ``control_for`` those held out from the offer or from none in
    particular (every control row when fewer than :data:`MIN_ROWS_PER_ARM` qualify)."""
    is_control = arms == control
    if control_for is None:
        return {o: is_control for o in offers}
    named = np.asarray(pd.Series(control_for, dtype="object").fillna("").astype(str))
    if len(named) != len(arms):
        raise InvalidInputError("control_for must have one value per contact", field="control_for")
    out = {}
    for offer in offers:
        mine = is_control & ((named == "") | (named == offer))
        out[offer] = mine if mine.sum() >= MIN_ROWS_PER_ARM else is_control
    return out


class _Constant:
    """A fitted outcome model that predicts one value (an arm whose outcomes are all equal)."""

    def __init__(self, value: float):
        self.value = value

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.value)


class TLearner(_MetaLearner):
    """Two-model learner: an outcome model per arm; effect = offer's − control's."""

    def fit(self, X: Any, treatment: Any, y: Any, control_for: Any = None) -> TLearner:
        X, arms, y, controls = self._check(X, treatment, y, control_for)
        self.models_ = {
            arm: self._outcome_model(X[arms == arm], y[arms == arm])
            for arm in [self.control, *self.offers_]
        }
        # an offer compared with its own held-out customers gets its own control model
        everyone = arms == self.control
        self.control_models_ = {
            o: self._outcome_model(X[rows], y[rows])
            for o, rows in controls.items()
            if not np.array_equal(rows, everyone)
        }
        return self

    def predict(self, X: Any) -> np.ndarray:
        X = self._check_x(X)
        base = self._predict(self.models_[self.control], X)
        own = getattr(self, "control_models_", {})  # models saved before have none
        return np.column_stack(
            [
                self._predict(self.models_[o], X) - (self._predict(own[o], X) if o in own else base)
                for o in self.offers_
            ]
        )


class XLearner(_MetaLearner):
    """X-learner (Künzel et al. 2019) with the randomised propensity ``n_k / (n_k + n_0)``."""

    def fit(self, X: Any, treatment: Any, y: Any, control_for: Any = None) -> XLearner:
        X, arms, y, controls = self._check(X, treatment, y, control_for)
        everyone = arms == self.control
        mu0_all = self._outcome_model(X[everyone], y[everyone])
        self.effects_: dict[str, tuple[Any, Any]] = {}
        for offer in self.offers_:
            control = controls[offer]
            mu0 = (
                mu0_all
                if np.array_equal(control, everyone)
                else self._outcome_model(X[control], y[control])
            )
            mine = arms == offer
            mu1 = self._outcome_model(X[mine], y[mine])
            imputed_treated = y[mine] - self._predict(mu0, X[mine])
            imputed_control = self._predict(mu1, X[control]) - y[control]
            self.effects_[offer] = (
                self._effect_model(X[control], imputed_control),
                self._effect_model(X[mine], imputed_treated),
            )
        return self

    def predict(self, X: Any) -> np.ndarray:
        X = self._check_x(X)
        columns = []
        for offer in self.offers_:
            tau0, tau1 = self.effects_[offer]
            e = self.propensity_[offer]
            columns.append(e * self._predict(tau0, X) + (1 - e) * self._predict(tau1, X))
        return np.column_stack(columns)


def _without_empty_columns(X: np.ndarray) -> np.ndarray:
    """``X`` with the columns that are missing on every row set to 0 for a fit.

    scikit-learn's histogram gradient boosting cannot bin a column with no value at all (a
    small group of contacts can miss an attribute entirely); a constant column is never split
    on, so the fitted model ignores it, as it would the empty column."""
    X = np.asarray(X, dtype=float)
    empty = np.isnan(X).all(axis=0) if len(X) else np.zeros(X.shape[1], dtype=bool)
    if not empty.any():
        return X
    X = X.copy()
    X[:, empty] = 0.0
    return X


class DRLearner(_MetaLearner):
    """DR-learner (Kennedy 2023): doubly robust pseudo-outcomes from two-fold cross-fitted
    outcome models, regressed on the features; propensity ``n_k / (n_k + n_0)``."""

    def fit(self, X: Any, treatment: Any, y: Any, control_for: Any = None) -> DRLearner:
        X, arms, y, controls = self._check(X, treatment, y, control_for)
        rng = np.random.default_rng(self.random_state)
        fold = rng.permutation(len(y)) % 2
        self.effects_: dict[str, Any] = {}
        for offer in self.offers_:
            rows = np.flatnonzero((arms == offer) | controls[offer])
            treated = (arms[rows] == offer).astype(float)
            mu0 = np.empty(len(rows))
            mu1 = np.empty(len(rows))
            for k in (0, 1):
                train = rows[fold[rows] != k]
                held = fold[rows] == k
                t_train = arms[train] == offer
                m0 = self._outcome_model(X[train][~t_train], y[train][~t_train])
                m1 = self._outcome_model(X[train][t_train], y[train][t_train])
                mu0[held] = self._predict(m0, X[rows][held])
                mu1[held] = self._predict(m1, X[rows][held])
            e = self.propensity_[offer]
            yr = y[rows]
            pseudo = mu1 - mu0 + treated * (yr - mu1) / e - (1 - treated) * (yr - mu0) / (1 - e)
            self.effects_[offer] = self._effect_model(X[rows], pseudo)
        return self

    def predict(self, X: Any) -> np.ndarray:
        X = self._check_x(X)
        return np.column_stack([self._predict(self.effects_[o], X) for o in self.offers_])
