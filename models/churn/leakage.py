"""Leak checks for churn training: columns that alone give the answer away.

A customer table is a snapshot taken today, while churn features must describe customers as
of an earlier cutoff. A column written after the cutoff -- a cancellation reason, a "status"
set when the customer left, a date of the last contact -- separates churners from the rest
almost perfectly in training and is useless (or harmful) when scoring customers who have not
churned yet. Such a column looks like a gift in the holdout metrics, which is why it is
checked before fitting.

:func:`leakage_suspects` scores every candidate column on its own: its values are grouped
(quantile bins for numbers, categories for text, "missing" as a group of its own, since a
field filled in only for churners leaks through its missingness), each group's churn rate is
learned on one half of the rows and used to rank the other half, and the out-of-fold ROC AUC
(taken as ``max(AUC, 1 - AUC)``) is compared with ``threshold`` (0.95). Real churn drivers
rarely exceed about 0.8 alone; identifiers and other high-cardinality columns score about 0.5,
because groups unseen in the other half fall back to the overall rate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from models.churn.encoding import coerce_numeric

LEAK_AUC = 0.95
_BINS = 20


def _groups(column: pd.Series) -> np.ndarray:
    """Group labels of a column: quantile bins of numbers, else the text; missing is -1 /
    ``"<missing>"``."""
    numeric = coerce_numeric(column)
    if numeric is not None:
        values = numeric.to_numpy(dtype=float)
        present = np.isfinite(values)
        groups = np.full(len(values), -1, dtype=np.int64)
        if present.any():
            ranks = pd.Series(values[present]).rank(method="dense").to_numpy()
            groups[present] = np.ceil(ranks / max(ranks.max(), 1) * _BINS).astype(np.int64)
        return groups.astype(str)
    text = column.astype("string").str.strip()
    return text.fillna("<missing>").to_numpy(dtype=object).astype(str)


def single_column_auc(column: pd.Series, y: Any, random_state: int = 0) -> float:
    """Out-of-fold ROC AUC of ranking by the column's group churn rate, ``max(AUC, 1 - AUC)``
    (0.5: no information; 1.0: the column alone separates the classes)."""
    labels = np.asarray(y).astype(int)
    if len(np.unique(labels)) < 2 or np.bincount(labels).min() < 2:
        return float("nan")
    groups = _groups(column.reset_index(drop=True))
    prior = labels.mean()
    scores = np.empty(len(labels))
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=random_state)
    for learn, score in folds.split(groups, labels):
        frame = pd.DataFrame({"g": groups[learn], "y": labels[learn]})
        stats = frame.groupby("g")["y"].agg(["sum", "count"])
        rate = (stats["sum"] + prior) / (stats["count"] + 1.0)  # one pseudo-row at the prior
        scores[score] = pd.Series(groups[score]).map(rate).fillna(prior).to_numpy()
    auc = float(roc_auc_score(labels, scores))
    return max(auc, 1.0 - auc)


def leakage_suspects(
    X: pd.DataFrame,
    y: Any,
    columns: list[str] | None = None,
    *,
    threshold: float = LEAK_AUC,
    random_state: int = 0,
    max_rows: int = 200_000,
) -> pd.DataFrame:
    """The columns of ``X`` (default: all; or ``columns``) whose single-column out-of-fold AUC
    is at least ``threshold``: columns ``column`` and ``auc``, highest first. Tables longer
    than ``max_rows`` are checked on a random sample of that many rows."""
    labels = np.asarray(y)
    if labels.dtype.kind not in "iub":
        labels = (labels == np.unique(labels)[-1]).astype(int)
    if len(labels) > max_rows:  # a random sample estimates an AUC this far from 0.5 closely
        keep = np.sort(np.random.default_rng(random_state).choice(len(labels), max_rows, False))
        X, labels = X.iloc[keep], labels[keep]
    rows = []
    for name in columns if columns is not None else list(X.columns):
        if name not in X.columns:
            continue
        auc = single_column_auc(X[name], labels, random_state)
        if np.isfinite(auc) and auc >= threshold:
            rows.append({"column": str(name), "auc": round(auc, 4)})
    out = pd.DataFrame(rows, columns=["column", "auc"])
    return out.sort_values("auc", ascending=False, kind="stable").reset_index(drop=True)


__all__ = ["LEAK_AUC", "leakage_suspects", "single_column_auc"]
