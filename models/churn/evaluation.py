"""Churn evaluation, pure: metrics, calibration and gains data, and a logistic baseline.

Nothing here logs or plots; the training pipeline logs these numbers and tables to MLflow.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn import metrics as skm
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from models.churn.encoding import TableEncoder, as_frame
from models.exceptions import InvalidInputError, NotFittedError

# Rows scored at a time by ChurnClassifier.raw_score and LogisticBaseline.predict_proba:
# a million rows at once held about 1 GB of binned, imputed, scaled and one-hot copies.
SCORE_BLOCK = 100_000


def _arrays(y_true: Any, probability: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(probability, dtype=float)
    if y.shape != p.shape or y.ndim != 1:
        raise InvalidInputError("y_true and probability must be 1-d and of one length", field="y")
    if not np.isin(y, (0, 1)).all():
        raise InvalidInputError("y_true must be 0/1", field="y")
    return y, p


def top_decile_lift(y_true: Any, probability: Any, share: float = 0.1) -> float:
    """Churn rate among the ``share`` highest scores divided by the overall churn rate."""
    y, p = _arrays(y_true, probability)
    top = np.argsort(-p, kind="stable")[: max(1, int(round(share * len(p))))]
    return float(y[top].mean() / max(y.mean(), 1e-12))


def churn_evaluation(y_true: Any, probability: Any) -> dict[str, float]:
    """ROC AUC, PR AUC (average precision), Brier, log loss, top-decile lift, base rate.

    AUCs and lift are NaN when ``y_true`` holds one class only.
    """
    y, p = _arrays(y_true, probability)
    out = {
        "base_rate": float(y.mean()),
        "brier": float(skm.brier_score_loss(y, p)),
        "log_loss": float(skm.log_loss(y, np.clip(p, 1e-12, 1 - 1e-12), labels=[0, 1])),
        "roc_auc": float("nan"),
        "pr_auc": float("nan"),
        "top_decile_lift": float("nan"),
    }
    if 0 < y.sum() < len(y):
        out["roc_auc"] = float(skm.roc_auc_score(y, p))
        out["pr_auc"] = float(skm.average_precision_score(y, p))
        out["top_decile_lift"] = top_decile_lift(y, p)
    return out


def calibration_curve_data(y_true: Any, probability: Any, n_bins: int = 10) -> pd.DataFrame:
    """Reliability table over quantile bins of the probability.

    Columns: ``bin`` (1 = lowest probabilities), ``customers``, ``mean_predicted``,
    ``observed_rate``, ``p_min``, ``p_max``. A calibrated model has mean_predicted ≈
    observed_rate in every row.
    """
    y, p = _arrays(y_true, probability)
    order = np.argsort(p, kind="stable")
    bins = np.empty(len(p), dtype=int)
    bins[order] = np.minimum(np.arange(len(p)) * n_bins // max(len(p), 1), n_bins - 1) + 1
    frame = pd.DataFrame({"bin": bins, "y": y, "p": p})
    table = frame.groupby("bin").agg(
        customers=("y", "size"),
        mean_predicted=("p", "mean"),
        observed_rate=("y", "mean"),
        p_min=("p", "min"),
        p_max=("p", "max"),
    )
    return table.reset_index()


def gains_data(y_true: Any, probability: Any, n_bins: int = 10) -> pd.DataFrame:
    """Cumulative gains and lift by score decile (highest probabilities first).

    Columns: ``decile`` (1 = riskiest tenth), ``customers``, ``churners``, ``churn_rate``,
    ``share_contacted`` (cumulative share of customers), ``gain`` (cumulative share of all
    churners reached), ``lift`` (decile churn rate / overall) and ``cumulative_lift``.
    """
    y, p = _arrays(y_true, probability)
    order = np.argsort(-p, kind="stable")
    decile = np.empty(len(p), dtype=int)
    decile[order] = np.minimum(np.arange(len(p)) * n_bins // max(len(p), 1), n_bins - 1) + 1
    table = (
        pd.DataFrame({"decile": decile, "y": y})
        .groupby("decile")
        .agg(customers=("y", "size"), churners=("y", "sum"))
    )
    total = max(int(y.sum()), 1)
    base = max(float(y.mean()), 1e-12)
    table["churn_rate"] = table["churners"] / table["customers"]
    table["share_contacted"] = table["customers"].cumsum() / len(y)
    table["gain"] = table["churners"].cumsum() / total
    table["lift"] = table["churn_rate"] / base
    table["cumulative_lift"] = table["gain"] / table["share_contacted"]
    return table.reset_index()


def compare_models(y_true: Any, probabilities: dict[str, Any]) -> pd.DataFrame:
    """:func:`churn_evaluation` of several models on one holdout, one row per model."""
    rows = {name: churn_evaluation(y_true, p) for name, p in probabilities.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")


def calibration_check(
    model: Any, X: Any, y_true: Any, *, score: np.ndarray | None = None
) -> dict[str, float | bool]:
    """Holdout Brier of a fitted ChurnClassifier with and without its calibration.

    Returns ``brier_calibrated``, ``brier_uncalibrated`` and ``calibration_ok`` (calibrated no
    worse). ``y_true`` holds the model's class labels (or 0/1 with 1 = churn). ``score``:
    ``model.raw_score(model.encode(X))`` when already computed (X is then not read).
    """
    y = _as_binary(y_true, model.classes_)
    if score is None:
        score = model.raw_score(model.encode(X))
    calibrated = float(skm.brier_score_loss(y, model.probability_from_score(score)))
    raw = float(skm.brier_score_loss(y, expit(score)))
    return {
        "brier_calibrated": calibrated,
        "brier_uncalibrated": raw,
        "calibration_ok": calibrated <= raw,
    }


def stratified_rows(y: np.ndarray, size: int | None, random_state: int) -> np.ndarray:
    """Sorted row indices: all rows, or a class-stratified random sample of ``size`` rows."""
    n = len(y)
    if size is None or n <= size:
        return np.arange(n)
    rows, _ = train_test_split(
        np.arange(n), train_size=int(size), stratify=y, random_state=random_state
    )
    return np.sort(rows)


def _as_binary(y_true: Any, classes: np.ndarray) -> np.ndarray:
    y = np.asarray(y_true)
    if np.isin(y, classes).all():
        return (y == classes[1]).astype(int)
    return y.astype(int)


def encoded_logistic_pipeline(kinds: list[str], C: float = 0.5) -> Pipeline:
    """Logistic regression on a :class:`TableEncoder` matrix.

    Numeric columns: median imputation with missing indicators, standardised. Categorical
    codes: one-hot, missing as its own level, unseen codes ignored. Ignored columns dropped.
    """
    numeric = [j for j, k in enumerate(kinds) if k == "numeric"]
    categorical = [j for j, k in enumerate(kinds) if k == "categorical"]
    parts: list[tuple[str, Any, list[int]]] = []
    if numeric:
        parts.append(
            (
                "numeric",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True), StandardScaler()
                ),
                numeric,
            )
        )
    if categorical:
        parts.append(
            ("categorical", OneHotEncoder(handle_unknown="ignore", min_frequency=5), categorical)
        )
    columns = ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)
    return Pipeline([("columns", columns), ("logistic", LogisticRegression(C=C, max_iter=2000))])


class LogisticBaseline(ClassifierMixin, BaseEstimator):
    """The logistic-regression baseline: same raw-table handling as ChurnClassifier.

    Takes the raw mixed-type DataFrame and any two-class target; see
    :func:`encoded_logistic_pipeline` for the model. Tables longer than ``max_rows`` are fitted
    on a class-stratified random sample of that many rows (a linear model of a few dozen
    coefficients gains nothing measurable from more; None: every row).
    """

    def __init__(self, C: float = 0.5, max_rows: int | None = 200_000):
        self.C = C
        self.max_rows = max_rows

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("max_rows", 200_000)  # baselines saved before the setting

    def fit(self, X: Any, y: Any) -> LogisticBaseline:
        X = as_frame(X)
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        if len(self.classes_) != 2:
            raise InvalidInputError("the baseline needs exactly two classes in y", field="y")
        self.feature_names_in_ = np.array(list(X.columns), dtype=object)
        self.n_features_in_ = X.shape[1]
        rows = stratified_rows(codes, self.max_rows, 0)
        if len(rows) < len(codes):
            X, codes = X.iloc[rows], codes[rows]
        self.encoder_ = TableEncoder().fit(X)
        self.pipeline_ = encoded_logistic_pipeline(self.encoder_.kinds_, self.C)
        self.pipeline_.fit(self.encoder_.transform(X), codes)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        if not hasattr(self, "pipeline_"):
            raise NotFittedError("LogisticBaseline is not fitted; call fit first")
        encoded = self.encoder_.transform(X)
        # in blocks of rows (each row's probability depends on that row alone): the imputed,
        # scaled and one-hot copies of a million rows held about 0.75 GB
        return np.concatenate(
            [
                self.pipeline_.predict_proba(encoded[start : start + SCORE_BLOCK])
                for start in range(0, max(len(encoded), 1), SCORE_BLOCK)
            ]
        )

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]
