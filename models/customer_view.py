"""The whole customer view as one flat table: every segment label, churn, CLV, value at risk.

Shared by batch scoring (``cvm score``) and the HTTP service, so both give the same answers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models import playbook as pb
from models.churn import risk_band
from models.churn.encoding import frame_columns
from models.segments.schemes import LABEL_COLUMNS


def segment_frame(models: dict[str, Any], summary: pd.DataFrame) -> pd.DataFrame:
    """Every segmentation scheme's labels plus the CLV columns (P(alive) feeds the lifecycle)."""
    clv = models["clv"].predict(summary)
    segments = models["segmentation"].predict(
        summary.assign(probability_alive=clv["probability_alive"].to_numpy())
    )
    return pd.concat([segments.drop(columns=["probability_alive"], errors="ignore"), clv], axis=1)


def score_frame(
    models: dict[str, Any], summary: pd.DataFrame, features: pd.DataFrame
) -> pd.DataFrame:
    """One row per customer of ``summary``.

    ``models``: fitted ``segmentation`` (:class:`CustomerSegments`), ``churn``
    (:class:`ChurnClassifier`) and ``clv`` estimators; ``features``: the churn model's inputs
    (summary + customer attributes; attributes it lacks are treated as missing).
    """
    out = segment_frame(models, summary)
    churn = models["churn"]
    names = list(churn.feature_names_in_)
    inputs = features.reindex(columns=names)
    fast = getattr(churn, "predict_proba_columns", None)  # the same numbers, no DataFrame work
    if fast is not None:
        p_churn = fast(frame_columns(inputs), len(inputs))[:, 1]
    else:
        p_churn = churn.predict_proba(inputs)[:, 1]
    threshold = getattr(models["clv"], "high_value_threshold_", np.inf)
    out["churn_probability"] = p_churn
    out["risk_band"] = risk_band(p_churn)
    out["value_at_risk"] = p_churn * np.maximum(out["clv"].to_numpy(dtype=float), 0.0)
    out["high_value"] = out["clv"].to_numpy(dtype=float) >= threshold
    return out


def recommended_actions(
    frame: pd.DataFrame, playbook: dict[str, Any] | None = None
) -> pd.DataFrame:
    """The playbook's recommended action (and why) for every row of :func:`score_frame`."""
    rows = [
        pb.recommend(str(seg), str(band), bool(high), playbook)
        for seg, band, high in zip(
            frame["rfm_segment"], frame["risk_band"], frame["high_value"], strict=True
        )
    ]
    return pd.DataFrame(rows, index=frame.index)


# Scheme → the column of :func:`score_frame` that holds its label (segment schemes and churn risk).
AUDIENCE_COLUMNS: dict[str, str] = {**LABEL_COLUMNS, "churn_risk": "risk_band"}


def select_audience(frame: pd.DataFrame, scheme: str, label: str) -> pd.DataFrame:
    """The rows of a :func:`score_frame` table whose ``scheme`` label is ``label`` (compared
    as text), highest CLV first (ties in the table's order); empty when none matches."""
    column = AUDIENCE_COLUMNS[scheme]
    chosen = frame[frame[column].astype(str) == str(label)]
    return chosen.sort_values("clv", ascending=False, kind="stable")
