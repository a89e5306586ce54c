"""Champion vs challenger on the same fresh holdout (no MLflow here; the gate that judges
the comparison is :mod:`training.gate`).

The fresh holdout is the latest window before ``as_of`` of the retraining data: churn labels
in ``(as_of − horizon, as_of]`` with features before them, CLV purchases in
``(as_of − holdout, as_of]`` predicted from the history before. The challenger is represented
by its twins fitted without that window (``TrainResult.holdout_models``), so neither side
has seen it.

Segmentation is compared at one K. The silhouette favours few clusters, so a challenger that
chose K=3 would lose against a K=2 champion for its K alone. When both sides have the same K,
each side's silhouette is that of its own cluster labels on the holdout; when K differs, both
sides are re-clustered at the champion's K (K-means on each side's standardised features of
the same holdout sample) and those silhouettes are compared. Beside it,
``segment_label_agreement`` (adjusted Rand index of the two sides' labels on the holdout: 1 =
the same grouping, about 0 = unrelated) says how much the segments would move; it is shown,
not gated.

Uplift (with campaign history) is compared on the challenger's holdout contacts: the latest
campaigns of the history (:mod:`training.train_uplift`), which the challenger's twin has not
seen; a champion trained on the same history has seen them (the comparison then favours it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score

from models.churn import time_split
from models.clv.periodic import DiscreteCLV, with_period_columns
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
    # The uplift family's holdout contacts (training.train_uplift: features, treatment,
    # retained); None without campaign history
    uplift: pd.DataFrame | None = None
    # The purchases and the calibration's end: a BG/BB model's periods come from them
    transactions: pd.DataFrame | None = None
    calibration_end: pd.Timestamp | None = None

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
        X, y = time_split(
            transactions,
            as_of,
            horizon_days=churn_horizon_days,
            customers=customers,
            features="churn",  # the features the churn models are trained on
        )
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
            transactions=transactions,
            calibration_end=start,
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
    segment_k: int | None = None,
) -> dict[str, float]:
    """Gate metrics of ``models`` (by family) on the holdout of the given data (``holdout``:
    built once with :meth:`Holdout.build` when both sides of a comparison are measured;
    ``segment_k``: measure the segmentation re-clustered at this K, see the module text)."""
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
    elif isinstance(clv, DiscreteCLV) and holdout.transactions is not None:
        # BG/BB: its expected purchases in the holdout's days, from each customer's periods
        calibration = with_period_columns(
            clv, holdout.calibration, holdout.transactions, holdout.calibration_end
        )
        predicted = clv.forecast_purchases(holdout.clv_holdout_days, calibration)
        out.update(evaluate.clv_holdout_metrics(predicted, holdout.actual))
    segments = models.get("segmentation")
    if segments is not None:
        out.update(segment_metrics(segments.clusters_, holdout.summary, segment_k, sample_size))
    uplift = models.get("uplift")
    if uplift is not None and holdout.uplift is not None:
        from training.train_uplift import holdout_metrics as uplift_metrics

        out.update(uplift_metrics(uplift, holdout.uplift))
    return out


def n_clusters(clusters: Any) -> int:
    """The number of behaviour clusters of a fitted model."""
    return int(getattr(clusters, "n_clusters_", len(clusters.cluster_ids_)))


def segment_metrics(
    clusters: Any, summary: pd.DataFrame, k: int | None = None, sample_size: int = 5000
) -> dict[str, float]:
    """``segment_silhouette`` of the model's labels on ``summary``, or with ``k`` of a
    K-means re-clustering at ``k`` of the model's standardised features (on a sample of
    ``sample_size`` customers, the same for every model); ``segment_n_clusters``: the K the
    silhouette was measured at, ``segment_n_clusters_model``: the model's own K."""
    z = clusters.standardised(summary).to_numpy()
    own = n_clusters(clusters)
    out = {"segment_n_clusters": float(k or own), "segment_n_clusters_model": float(own)}
    if k is None:
        labels = clusters.predict(summary)["cluster"].to_numpy()
        if len(np.unique(labels)) > 1:
            out["segment_silhouette"] = float(
                silhouette_score(z, labels, sample_size=min(sample_size, len(z)), random_state=0)
            )
        return out
    rows = np.sort(
        np.random.default_rng(0).choice(len(z), size=min(sample_size, len(z)), replace=False)
    )
    sample = z[rows]
    if len(sample) > k:
        labels = KMeans(n_clusters=k, n_init=4, random_state=0).fit_predict(sample)
        if len(np.unique(labels)) > 1:
            out["segment_silhouette"] = float(silhouette_score(sample, labels))
    return out


def label_agreement(champion: Any, challenger: Any, holdout: Holdout) -> float:
    """Adjusted Rand index of the champion's and the challenger's behaviour clusters on the
    holdout's customers (1: the same grouping; about 0: unrelated)."""
    old = champion.clusters_.predict(holdout.summary)["cluster"].to_numpy()
    new = challenger.clusters_.predict(holdout.summary)["cluster"].to_numpy()
    return float(adjusted_rand_score(old, new))
