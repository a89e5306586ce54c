"""Churn: leak-free time-split labels and a calibrated gradient-boosted classifier.

Non-contractual data has no churn date, so churn is defined on a time split: features are
computed from purchases up to ``cutoff = as_of − horizon``, and a customer is labelled churned
(1) when they make no purchase in ``(cutoff, as_of]``. Features and label never share a window.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier

from models.exceptions import InvalidInputError, NotFittedError
from models.features import customer_features, end_of_day, summarize

RISK_BANDS = (("low", 0.0), ("medium", 0.3), ("high", 0.6))
_MAX_CATEGORIES = 250  # HistGradientBoosting allows at most 255 categories per feature


def risk_band(probability: np.ndarray) -> np.ndarray:
    """``low`` (< 0.3), ``medium`` (< 0.6) or ``high`` churn risk."""
    p = np.asarray(probability, dtype=float)
    return np.where(p >= 0.6, "high", np.where(p >= 0.3, "medium", "low"))


def time_split(
    transactions: pd.DataFrame,
    as_of: object,
    *,
    horizon_days: int = 90,
    customers: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """Features as of ``as_of − horizon_days`` and the churn label of the following horizon.

    Returns ``(X, y)``: X from :func:`models.features.customer_features` for customers whose
    first purchase is on or before the cutoff; y = 1 when they did not buy in
    ``(cutoff, as_of]``. Purchases after the cutoff cannot change X.
    """
    cutoff = end_of_day(as_of) - pd.Timedelta(days=horizon_days)
    summary = summarize(transactions, cutoff)
    end = end_of_day(as_of)
    stamps = pd.to_datetime(transactions["timestamp"])
    window = (stamps > cutoff) & (stamps <= end)
    buyers = set(transactions.loc[window, "customer_id"].astype(str))
    y = pd.Series(
        [0 if cid in buyers else 1 for cid in summary.index], index=summary.index, name="churned"
    )
    return customer_features(summary, customers), y


def _coerce_numeric(column: pd.Series) -> pd.Series | None:
    """The column as floats if every non-blank cell parses as a number, else None."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return column.astype(float)
    text = column.astype("string").str.strip()
    text = text.mask(text == "")
    parsed = pd.to_numeric(text, errors="coerce")
    if parsed[text.notna()].isna().any():
        return None
    return parsed.astype(float)


class ChurnClassifier(ClassifierMixin, BaseEstimator):
    """Calibrated gradient boosting on a raw DataFrame of mixed numeric and string columns.

    - Numeric columns given as text (CRM exports) are parsed; blanks become missing values.
    - Other string columns are categorical with native support in the booster; categories
      unseen at fit time become missing at predict time.
    - Columns that are entirely missing at fit time are ignored (``feature_kinds_``).
    - Any two-class target works (0/1, "Yes"/"No", booleans); ``classes_`` is sorted and the
      second class is the positive one, as in scikit-learn.
    - Class imbalance: balanced class weights in the booster; probabilities are then
      calibrated (``calibration`` = "sigmoid" or "isotonic", ``cv`` folds).
    """

    def __init__(
        self,
        max_iter: int = 200,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 15,
        l2_regularization: float = 1.0,
        class_weight: str | None = "balanced",
        calibration: str = "sigmoid",
        cv: int = 3,
        random_state: int = 0,
    ):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.l2_regularization = l2_regularization
        self.class_weight = class_weight
        self.calibration = calibration
        self.cv = cv
        self.random_state = random_state

    # --- encoding -------------------------------------------------------------------------
    @staticmethod
    def _as_frame(X: Any) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            return X
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise InvalidInputError(f"X must be 2-dimensional, got shape {arr.shape}", field="X")
        return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])

    def _learn_encoding(self, X: pd.DataFrame) -> None:
        self.feature_names_in_ = np.array([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = X.shape[1]
        self.categories_: dict[str, dict[str, int]] = {}
        kinds = []
        for name in X.columns:
            numeric = _coerce_numeric(X[name])
            if numeric is not None:
                # An all-missing column carries nothing (and breaks the booster's binning).
                kinds.append("numeric" if numeric.notna().any() else "ignored")
                continue
            kinds.append("categorical")
            text = X[name].astype("string").str.strip()
            counts = text[text.notna() & (text != "")].value_counts()
            top = sorted(counts.index[:_MAX_CATEGORIES].tolist())
            self.categories_[str(name)] = {value: code for code, value in enumerate(top)}
        self.feature_kinds_ = kinds

    def _encode(self, X: Any) -> np.ndarray:
        X = self._as_frame(X)
        X = X.set_axis([str(c) for c in X.columns], axis=1)
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise InvalidInputError(f"missing the feature column '{missing[0]}'", field=missing[0])
        out = np.empty((len(X), len(self.feature_names_in_)), dtype=float)
        for j, (name, kind) in enumerate(
            zip(self.feature_names_in_, self.feature_kinds_, strict=True)
        ):
            column = X[name]
            if kind == "ignored":
                out[:, j] = 0.0
            elif kind == "numeric":
                numeric = _coerce_numeric(column)
                if numeric is None:
                    numeric = pd.to_numeric(column.astype("string").str.strip(), errors="coerce")
                out[:, j] = numeric.to_numpy(dtype=float, na_value=np.nan)
            else:
                text = column.astype("string").str.strip()
                codes = text.map(self.categories_[name]).astype("Float64")
                out[:, j] = codes.to_numpy(dtype=float, na_value=np.nan)
        return out

    # --- estimator --------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> ChurnClassifier:
        """Fit the booster and its calibration; returns self."""
        X = self._as_frame(X)
        y_arr = np.asarray(y)
        if len(y_arr) != len(X):
            raise InvalidInputError("X and y have different lengths", field="y")
        self.classes_, y_codes = np.unique(y_arr, return_inverse=True)
        if len(self.classes_) != 2:
            raise InvalidInputError(
                f"churn needs exactly two classes in y, got {len(self.classes_)}", field="y"
            )
        self._learn_encoding(X)
        encoded = self._encode(X)
        booster = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            l2_regularization=self.l2_regularization,
            class_weight=self.class_weight,
            categorical_features=np.array([k == "categorical" for k in self.feature_kinds_]),
            random_state=self.random_state,
        )
        minority = int(np.bincount(y_codes).min())
        if self.cv and minority >= self.cv:
            self.model_ = CalibratedClassifierCV(booster, method=self.calibration, cv=self.cv)
        else:  # too few of one class to calibrate by cross-validation
            self.model_ = booster
        self.model_.fit(encoded, y_codes)
        self.calibrated_ = self.model_ is not booster
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        if not hasattr(self, "model_"):
            raise NotFittedError("ChurnClassifier is not fitted; call fit first")
        return self.model_.predict_proba(self._encode(X))

    def predict(self, X: Any) -> np.ndarray:
        """The more probable class label."""
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds of the positive class."""
        p = np.clip(self.predict_proba(X)[:, 1], 1e-12, 1 - 1e-12)
        return np.log(p / (1 - p))
