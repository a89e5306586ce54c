"""Champion vs challenger on the same fresh holdout, and the promotion gate (no MLflow here).

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

# (metric, better direction, default tolerance): the gate allows the challenger to be worse
# by at most the tolerance (absolute, in the metric's units).
GATES: dict[str, list[tuple[str, str, float]]] = {
    "churn": [("churn_roc_auc", "higher", 0.01), ("churn_brier", "lower", 0.005)],
    "clv": [("clv_holdout_mae", "lower", 0.02)],
    "segmentation": [("segment_silhouette", "higher", 0.05)],
}


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
        X, y = time_split(transactions, as_of, horizon_days=churn_horizon_days, customers=customers)
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


def label_stability(old: Any, new: Any, summary: pd.DataFrame) -> dict[str, float]:
    """Share of customers keeping their label between two segmentation models."""
    a = old.predict(summary.assign(probability_alive=np.nan))
    b = new.predict(summary.assign(probability_alive=np.nan))
    return {
        "segment_cluster_stability": float(
            np.mean(a["cluster"].to_numpy() == b["cluster"].to_numpy())
        ),
        "segment_rfm_stability": float(
            np.mean(a["rfm_segment"].to_numpy() == b["rfm_segment"].to_numpy())
        ),
    }


@dataclass
class GateResult:
    family: str
    passed: bool
    reasons: list[str]

    def message(self) -> str:
        verdict = "passes" if self.passed else "fails"
        return f"{self.family}: {verdict} the gate: " + "; ".join(self.reasons)


def gate(
    family: str,
    champion: dict[str, float],
    challenger: dict[str, float],
    tolerances: dict[str, float] | None = None,
) -> GateResult:
    """Is the challenger no worse than the champion on the family's gate metrics?"""
    tolerances = tolerances or {}
    reasons, passed = [], True
    for metric, direction, default in GATES[family]:
        if metric not in champion or metric not in challenger:
            reasons.append(f"{metric} not measured on both, not gated")
            continue
        tolerance = tolerances.get(metric, default)
        old, new = champion[metric], challenger[metric]
        worse = (old - new) if direction == "higher" else (new - old)
        ok = worse <= tolerance
        passed &= ok
        sign = "≥" if direction == "higher" else "≤"
        reasons.append(
            f"{metric} {new:.4f} vs champion {old:.4f} "
            f"({'ok' if ok else 'WORSE'}: needs {sign} champion {'-' if direction == 'higher' else '+'}"
            f" {tolerance:g})"
        )
    return GateResult(family, passed, reasons)


def comparison_table(
    champion: dict[str, dict[str, float]], challenger: dict[str, dict[str, float]]
) -> str:
    """Side-by-side text table of the gate metrics per family."""
    lines = [f"{'family':<13} {'metric':<22} {'champion':>10} {'challenger':>11}"]
    for family, gates in GATES.items():
        for metric, _, _ in gates:
            old = champion.get(family, {}).get(metric)
            new = challenger.get(family, {}).get(metric)
            fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
            lines.append(f"{family:<13} {metric:<22} {fmt(old):>10} {fmt(new):>11}")
    return "\n".join(lines)
