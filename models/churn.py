"""Churn: leak-free labels and a calibrated gradient-boosted classifier for raw CRM tables.

Labels (see also :func:`models.churn_features.churn_features`):

- **Non-contractual** data has no churn date, so churn is defined on a time split
  (:func:`time_split`): features from purchases up to ``cutoff = as_of − horizon``, label 1
  when the customer makes no purchase in ``(cutoff, as_of]``.
- **Contractual** data carries the outcome in the customer table (:func:`contract_split`):
  ``churned`` / ``churn_date``; see that function for the rule.

Features and label never share a window: purchases after the cutoff cannot change X.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from models.churn_encoding import TableEncoder, as_frame
from models.churn_features import churn_features, churn_features_from_summary
from models.exceptions import InvalidInputError, NotFittedError
from models.features import customer_features, end_of_day, summarize

RISK_BANDS = (("low", 0.0), ("medium", 0.3), ("high", 0.6))
FeatureSet = Literal["summary", "churn"]


def risk_band(probability: Any) -> np.ndarray:
    """``low`` (< 0.3), ``medium`` (< 0.6) or ``high`` churn risk."""
    p = np.asarray(probability, dtype=float)
    return np.where(p >= 0.6, "high", np.where(p >= 0.3, "medium", "low"))


def time_split(
    transactions: pd.DataFrame,
    as_of: object,
    *,
    horizon_days: int = 90,
    customers: pd.DataFrame | None = None,
    features: FeatureSet = "summary",
) -> tuple[pd.DataFrame, pd.Series]:
    """Features as of ``as_of − horizon_days`` and the churn label of the following horizon.

    Returns ``(X, y)`` for customers whose first purchase is on or before the cutoff; y = 1
    when they did not buy in ``(cutoff, as_of]``. ``features="summary"`` gives
    :func:`models.features.customer_features`, ``"churn"`` the richer
    :func:`models.churn_features.churn_features`. Purchases after the cutoff cannot change X.
    """
    cutoff = end_of_day(as_of) - pd.Timedelta(days=horizon_days)
    if features == "churn":
        X = churn_features(transactions, cutoff, customers)
    else:
        X = customer_features(summarize(transactions, cutoff), customers)
    stamps = pd.to_datetime(transactions["timestamp"])
    window = (stamps > cutoff) & (stamps <= end_of_day(as_of))
    buyers = set(transactions.loc[window, "customer_id"].astype(str))
    y = pd.Series(
        [0 if cid in buyers else 1 for cid in X.index], index=X.index, name="churned", dtype=int
    )
    return X, y


def contract_split(
    customers: pd.DataFrame,
    as_of: object,
    *,
    horizon_days: int = 90,
    transactions: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """Contractual labels from the customer table's ``churned`` / ``churn_date``.

    With ``cutoff = as_of − horizon_days`` (end of day):

    - customers who signed up after the cutoff (``signup_date``) are excluded;
    - customers whose ``churn_date`` is on or before the cutoff are excluded (already gone);
    - ``churned`` set but no ``churn_date`` cannot be placed in time: excluded;
    - y = 1 when ``churn_date`` falls in ``(cutoff, as_of]``, else 0 (still a customer at
      ``as_of``, or leaving only after it).

    X is :func:`models.churn_features.churn_features_from_summary` as of the cutoff: the
    purchase summary when ``transactions`` are given (customers without purchases get
    missing summary values) and every customer attribute, outcome columns excluded.
    """
    if "customer_id" not in customers.columns:
        raise InvalidInputError("customers lack the column 'customer_id'", field="customer_id")
    if "churned" not in customers.columns and "churn_date" not in customers.columns:
        raise InvalidInputError(
            "contractual labels need a 'churned' or 'churn_date' column", field="churn_date"
        )
    cutoff = end_of_day(as_of) - pd.Timedelta(days=horizon_days)
    end = end_of_day(as_of)
    table = customers.set_axis(customers["customer_id"].astype(str).rename("customer_id"))
    n = len(table)
    churn_date = (
        pd.to_datetime(table["churn_date"])
        if "churn_date" in table.columns
        else pd.Series(pd.NaT, index=table.index, dtype="datetime64[ns]")
    )
    flag = (
        table["churned"].map(_truthy)
        if "churned" in table.columns
        else pd.Series(False, index=table.index)
    )
    keep = np.ones(n, dtype=bool)
    if "signup_date" in table.columns:
        keep &= ~(pd.to_datetime(table["signup_date"]) > cutoff).to_numpy()
    keep &= ~(churn_date <= cutoff).to_numpy()
    keep &= ~(flag.to_numpy(dtype=bool) & churn_date.isna().to_numpy())
    label = ((churn_date > cutoff) & (churn_date <= end)).to_numpy()
    kept = table.loc[keep]
    if transactions is not None and len(transactions):
        summary = summarize(transactions, cutoff).reindex(kept.index)
    else:
        summary = pd.DataFrame(index=kept.index)
    X = churn_features_from_summary(summary, kept.reset_index(drop=True), cutoff)
    y = pd.Series(label[keep].astype(int), index=kept.index, name="churned")
    return X, y


def _truthy(value: object) -> bool:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return False
    if isinstance(value, str):
        return value.strip().lower() in {"1", "yes", "y", "true", "t", "churned"}
    return bool(value)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


class ChurnClassifier(ClassifierMixin, BaseEstimator):
    """Calibrated gradient boosting on a raw DataFrame of mixed numeric and string columns.

    - Column typing by :class:`models.churn_encoding.TableEncoder`: numbers stored as text are
      parsed (blanks and "N/A" become missing), other text is categorical with native support
      in the booster (rare and unseen categories become missing), ID-like and empty columns
      are ignored (``feature_kinds_``).
    - Any two-class target (0/1, "Yes"/"No", booleans); ``classes_`` is sorted and the second
      class is the positive one, as in scikit-learn.
    - One ``cv``-fold cross-fit on the training data gives out-of-fold scores that choose the
      number of boosting rounds (``n_iter_``, up to ``max_iter``), the weight of a logistic
      regression blended into the log-odds (``linear_weight_``, searched over
      ``linear_weights``; ``(0.0,)`` gives pure boosting) and fit the calibration map
      (``calibration`` = "sigmoid" or "isotonic"). The final models are refitted on all rows.
    - Class imbalance: ``class_weight="balanced"`` in the booster; calibration then restores
      true probabilities. ``brier_uncalibrated_`` / ``brier_calibrated_`` are the
      out-of-fold Brier scores without and with calibration (``calibration_helps_``).
    """

    def __init__(
        self,
        max_iter: int = 400,
        learning_rate: float = 0.04,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 30,
        l2_regularization: float = 1.0,
        max_features: float = 0.7,
        class_weight: str | None = "balanced",
        calibration: str = "sigmoid",
        cv: int = 5,
        linear_weights: tuple[float, ...] = (0.0, 0.25, 0.5),
        min_category_count: int = 5,
        random_state: int = 0,
    ):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.max_features = max_features
        self.class_weight = class_weight
        self.calibration = calibration
        self.cv = cv
        self.linear_weights = linear_weights
        self.min_category_count = min_category_count
        self.random_state = random_state

    # --- parts ------------------------------------------------------------------------------
    def _booster(self, max_iter: int) -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(
            max_iter=max(1, int(max_iter)),
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            max_features=self.max_features,
            class_weight=self.class_weight,
            categorical_features=self.encoder_.categorical_mask,
            early_stopping=False,
            random_state=self.random_state,
        )

    def _linear(self) -> Any:
        from models.churn_eval import encoded_logistic_pipeline

        return encoded_logistic_pipeline(self.encoder_.kinds_)

    def _calibrator(self, score: np.ndarray, y: np.ndarray) -> Any:
        if self.calibration == "isotonic":
            return IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(score, y)
        return LogisticRegression(C=1e6).fit(score.reshape(-1, 1), y)

    def _calibrate(self, calibrator: Any, score: np.ndarray) -> np.ndarray:
        if isinstance(calibrator, IsotonicRegression):
            return np.clip(calibrator.predict(score), 1e-6, 1 - 1e-6)
        return calibrator.predict_proba(score.reshape(-1, 1))[:, 1]

    # --- estimator --------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> ChurnClassifier:
        """Cross-fit, choose rounds / blend / calibration, refit on all rows; returns self."""
        X = as_frame(X)
        y_arr = np.asarray(y)
        if len(y_arr) != len(X):
            raise InvalidInputError("X and y have different lengths", field="y")
        if pd.isna(pd.Series(y_arr, dtype=object)).any():
            raise InvalidInputError("y has missing values", field="y")
        self.classes_, y_codes = np.unique(y_arr, return_inverse=True)
        if len(self.classes_) != 2:
            raise InvalidInputError(
                f"churn needs exactly two classes in y, got {len(self.classes_)}", field="y"
            )
        self.feature_names_in_ = np.array(list(X.columns), dtype=object)
        self.n_features_in_ = X.shape[1]
        self.encoder_ = TableEncoder(min_category_count=self.min_category_count).fit(X)
        self.feature_kinds_ = list(self.encoder_.kinds_)
        self.categories_ = self.encoder_.categories_
        encoded = self.encoder_.transform(X)
        if not any(k != "ignored" for k in self.feature_kinds_):
            raise InvalidInputError("X has no usable feature column", field="X")

        minority = int(np.bincount(y_codes).min())
        folds = int(self.cv or 0)
        if folds >= 2 and minority >= folds:
            self._cross_fit(encoded, y_codes, folds)
        else:  # too few of one class to cross-fit: plain boosting, uncalibrated
            self.n_iter_ = min(self.max_iter, 100)
            self.linear_weight_ = 0.0
            self.calibrator_ = None
            self.brier_uncalibrated_ = self.brier_calibrated_ = float("nan")
        self.booster_ = self._booster(self.n_iter_).fit(encoded, y_codes)
        self.linear_ = (
            self._linear().fit(encoded, y_codes) if self.linear_weight_ > 0 else None
        )
        self.calibrated_ = self.calibrator_ is not None
        self.calibration_helps_ = bool(self.brier_calibrated_ <= self.brier_uncalibrated_)
        self.baseline_ = np.array(
            [self.encoder_.fill_.get(name, np.nan) for name in self.encoder_.columns_]
        )
        return self

    def _cross_fit(self, encoded: np.ndarray, y: np.ndarray, folds: int) -> None:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.random_state)
        splits = list(splitter.split(encoded, y))
        staged = np.zeros((len(y), self.max_iter))
        linear = np.zeros(len(y))
        blend = any(w > 0 for w in self.linear_weights)
        for train, valid in splits:
            booster = self._booster(self.max_iter).fit(encoded[train], y[train])
            for k, stage in enumerate(booster.staged_decision_function(encoded[valid])):
                staged[valid, k] = stage
            if blend:
                model = self._linear().fit(encoded[train], y[train])
                linear[valid] = model.decision_function(encoded[valid])
        # rounds: the smallest count within 0.1 % of the best out-of-fold weighted log loss
        w = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
        if self.class_weight != "balanced":
            w = np.ones(len(y))
        losses = np.average(np.logaddexp(0, staged) - y[:, None] * staged, axis=0, weights=w)
        best = float(losses.min())
        self.n_iter_ = int(np.argmax(losses <= best + 1e-3 * abs(best))) + 1
        boosted = staged[:, self.n_iter_ - 1]
        scores = {0.0: boosted}
        if blend:
            for weight in self.linear_weights:
                scores[float(weight)] = (1 - weight) * boosted + weight * linear
        aucs = {weight: _auc(y, s) for weight, s in scores.items()}
        self.linear_weight_ = max(aucs, key=lambda k: (round(aucs[k], 4), -k))
        self.oof_auc_ = aucs[self.linear_weight_]
        score = scores[self.linear_weight_]
        # honest calibration check: calibrators cross-fitted on the out-of-fold scores
        calibrated = np.empty(len(y))
        for train, valid in splits:
            calibrated[valid] = self._calibrate(
                self._calibrator(score[train], y[train]), score[valid]
            )
        self.brier_uncalibrated_ = float(np.mean((expit(score) - y) ** 2))
        self.brier_calibrated_ = float(np.mean((calibrated - y) ** 2))
        self.calibrator_ = self._calibrator(score, y)

    def _check(self) -> None:
        if not hasattr(self, "booster_"):
            raise NotFittedError("ChurnClassifier is not fitted; call fit first")

    def raw_score(self, encoded: np.ndarray) -> np.ndarray:
        """Uncalibrated log-odds of churn for rows already encoded by ``encoder_``."""
        self._check()
        score = self.booster_.decision_function(encoded)
        if self.linear_ is not None:
            w = self.linear_weight_
            score = (1 - w) * score + w * self.linear_.decision_function(encoded)
        return np.asarray(score, dtype=float)

    def encode(self, X: Any) -> np.ndarray:
        """``X`` as the numeric matrix the models use (columns of ``feature_names_in_``)."""
        self._check()
        return self.encoder_.transform(X)

    def probability_from_score(self, score: np.ndarray) -> np.ndarray:
        """Calibrated churn probability of raw log-odds (see :meth:`raw_score`)."""
        if self.calibrator_ is None:
            return expit(score)
        return self._calibrate(self.calibrator_, np.asarray(score, dtype=float))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated class probabilities, columns in the order of ``classes_``."""
        p = self.probability_from_score(self.raw_score(self.encode(X)))
        return np.column_stack([1 - p, p])

    def predict_proba_uncalibrated(self, X: Any) -> np.ndarray:
        """Probabilities before calibration (for the calibration check on a holdout)."""
        p = expit(self.raw_score(self.encode(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        """The more probable class label."""
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]

    def decision_function(self, X: Any) -> np.ndarray:
        """Calibrated log-odds of the positive class (monotone in ``predict_proba``)."""
        return _logit(self.predict_proba(X)[:, 1])


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the rank-sum formula (ties averaged)."""
    from scipy.stats import rankdata

    ranks = rankdata(score)
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
