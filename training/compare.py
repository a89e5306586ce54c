"""Champion vs challenger on the same fresh holdout (no MLflow here; the gate that judges
the comparison is :mod:`training.gate`).

The fresh holdout is the latest window before ``as_of`` of the retraining data: churn labels
in ``(as_of − horizon, as_of]`` with features before them, CLV purchases in
``(as_of − holdout, as_of]`` predicted from the history before. The challenger is represented
by its twins fitted without that window (``TrainResult.holdout_models``), so neither side
has seen it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import silhouette_score

from models.churn import time_split
from models.features import summarize
from training import evaluate
from training.train_clv import purchase_days_between


@dataclass
class Holdout:
    """The fresh holdout of the retraining data, built once for both sides of a comparison:
    churn features and labels, the CLV calibration summary and the purchases after it, and the
    summary as of ``as_of`` for the segmentation."""

    churn_X: pd.DataFrame
    churn_y: pd.Series
    calibration: pd.DataFrame
    actual: np.ndarray
    clv_holdout_days: int
    summary: pd.DataFrame

    @classmethod
    def build(
        cls,
        transactions: pd.DataFrame,
        customers: pd.DataFrame | None,
        as_of: pd.Timestamp,
        *,
        churn_horizon_days: int,
        clv_holdout_days: int,
    ) -> Holdout:
        X, y = time_split(transactions, as_of, horizon_days=churn_horizon_days, customers=customers)
        start = as_of - pd.Timedelta(days=clv_holdout_days)
        calibration = summarize(transactions, start)
        actual = purchase_days_between(transactions, start, as_of).reindex(calibration.index)
        return cls(
            X,
            y,
            calibration,
            actual.fillna(0).to_numpy(dtype=float),
            clv_holdout_days,
            summarize(transactions, as_of),
        )


def holdout_metrics(
    models: dict[str, Any],
    transactions: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    as_of: pd.Timestamp | None = None,
    *,
    churn_horizon_days: int = 90,
    clv_holdout_days: int = 180,
    sample_size: int = 5000,
    holdout: Holdout | None = None,
) -> dict[str, float]:
    """Gate metrics of ``models`` (by family) on the holdout of the given data (``holdout``:
    built once with :meth:`Holdout.build` when both sides of a comparison are measured)."""
    if holdout is None:
        if transactions is None or as_of is None:
            raise ValueError("give the data (transactions, as_of) or a built holdout")
        holdout = Holdout.build(
            transactions,
            customers,
            as_of,
            churn_horizon_days=churn_horizon_days,
            clv_holdout_days=clv_holdout_days,
        )
    out: dict[str, float] = {}
    churn = models.get("churn")
    if churn is not None:
        X = holdout.churn_X.reindex(columns=list(churn.feature_names_in_))
        p = churn.predict_proba(X)[:, 1]
        out.update(evaluate.churn_metrics(holdout.churn_y.to_numpy(), p))
    clv = models.get("clv")
    if clv is not None and hasattr(clv, "purchase_model_"):
        unit = float(clv.time_unit_days)
        calibration = holdout.calibration
        predicted = clv.purchase_model_.expected_purchases(
            holdout.clv_holdout_days / unit,
            calibration["frequency"],
            calibration["recency"] / unit,
            calibration["T"] / unit,
        )
        out.update(evaluate.clv_holdout_metrics(predicted, holdout.actual))
    segments = models.get("segmentation")
    if segments is not None:
        clusters = segments.clusters_
        z = clusters.standardised(holdout.summary).to_numpy()
        labels = clusters.predict(holdout.summary)["cluster"].to_numpy()
        if len(np.unique(labels)) > 1:
            out["segment_silhouette"] = float(
                silhouette_score(z, labels, sample_size=min(sample_size, len(z)), random_state=0)
            )
    return out
