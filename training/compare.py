"""Champion vs challenger on the same fresh holdout (no MLflow here; the gate that judges
the comparison is :mod:`training.gate`).

The fresh holdout is the latest window before ``as_of`` of the retraining data: churn labels
in ``(as_of − horizon, as_of]`` with features before them, CLV purchases in
``(as_of − holdout, as_of]`` predicted from the history before. The challenger is represented
by its twins fitted without that window (``TrainResult.holdout_models``), so neither side
has seen it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import silhouette_score

from models.churn import time_split
from models.features import summarize
from training import evaluate
from training.train_clv import purchase_days_between


def holdout_metrics(
    models: dict[str, Any],
    transactions: pd.DataFrame,
    customers: pd.DataFrame | None,
    as_of: pd.Timestamp,
    *,
    churn_horizon_days: int,
    clv_holdout_days: int,
    sample_size: int = 5000,
) -> dict[str, float]:
    """Gate metrics of ``models`` (by family) on the holdout of the given data."""
    out: dict[str, float] = {}
    if models.get("churn") is not None:
        X, y = time_split(
            transactions,
            as_of,
            horizon_days=churn_horizon_days,
            customers=customers,
            features="churn",  # the features the churn models are trained on
        )
        churn = models["churn"]
        p = churn.predict_proba(X.reindex(columns=list(churn.feature_names_in_)))[:, 1]
        out.update(evaluate.churn_metrics(y.to_numpy(), p))
    clv = models.get("clv")
    if clv is not None and hasattr(clv, "purchase_model_"):
        start = as_of - pd.Timedelta(days=clv_holdout_days)
        calibration = summarize(transactions, start)
        unit = float(clv.time_unit_days)
        predicted = clv.purchase_model_.expected_purchases(
            clv_holdout_days / unit,
            calibration["frequency"],
            calibration["recency"] / unit,
            calibration["T"] / unit,
        )
        actual = (
            purchase_days_between(transactions, start, as_of).reindex(calibration.index).fillna(0)
        )
        out.update(evaluate.clv_holdout_metrics(predicted, actual.to_numpy(dtype=float)))
    segments = models.get("segmentation")
    if segments is not None:
        summary = summarize(transactions, as_of)
        clusters = segments.clusters_
        z = clusters.standardised(summary).to_numpy()
        labels = clusters.predict(summary)["cluster"].to_numpy()
        if len(np.unique(labels)) > 1:
            out["segment_silhouette"] = float(
                silhouette_score(z, labels, sample_size=min(sample_size, len(z)), random_state=0)
            )
    return out
