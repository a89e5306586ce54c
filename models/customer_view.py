"""The whole customer view as one flat table: every segment label, churn, CLV, value at risk.

Shared by batch scoring (``cvm score``) and the HTTP service, so both give the same answers.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from models import playbook as pb
from models.churn.encoding import frame_columns
from models.churn.risk import band_of
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
    # the model's own risk thresholds
    return with_churn(out, p_churn, band_of(churn, p_churn), threshold)


def with_churn(
    out: pd.DataFrame, p_churn: Any, risk_band: Any, high_value_threshold: float
) -> pd.DataFrame:
    """Segment and CLV columns (:func:`segment_frame`) completed with churn: the churn
    probability and risk band, value at risk (P(churn) × CLV) and the high-value flag (CLV at
    or above the CLV model's ``high_value_threshold_``). Shared by the pandas and Spark
    scoring so that both give the same columns."""
    p = np.asarray(p_churn, dtype=float)
    out["churn_probability"] = p
    out["risk_band"] = risk_band
    out["value_at_risk"] = p * np.maximum(out["clv"].to_numpy(dtype=float), 0.0)
    out["high_value"] = out["clv"].to_numpy(dtype=float) >= high_value_threshold
    return out


def recommended_actions(
    frame: pd.DataFrame, playbook: dict[str, Any] | None = None
) -> pd.DataFrame:
    """The playbook's recommended action for every row of :func:`score_frame`, with a reason
    that states the labels and numbers of that customer which chose it (not a generic
    description that another label of the same customer could contradict)."""
    rows = []
    for row in frame.itertuples(index=False):
        chosen = pb.recommend(
            str(row.rfm_segment), str(row.risk_band), bool(row.high_value), playbook
        )
        chosen["reason"] = _reason(row, chosen)
        rows.append(chosen)
    return pd.DataFrame(rows, index=frame.index)


def _reason(row: Any, chosen: dict[str, Any]) -> str:
    if chosen["source"] == "high_value_high_risk":
        return (
            f"Predicted CLV {row.clv:,.2f} is in the top fifth of customers and churn risk is "
            f"high (P {row.churn_probability:.2f}): {row.value_at_risk:,.2f} of value at risk."
        )
    scores = f"R{row.r_score} F{row.f_score} M{row.m_score}"
    return f"RFM {row.rfm_segment} ({scores}): {chosen['reason']}"


# Labels measure different things and can disagree for one customer; each note says why.
# (rule, note): rule(row) -> bool.
def _recent_but_lapsing_group(row: Any) -> bool:
    return int(row.r_score) >= 4 and str(row.cluster_name).lower().startswith("lapsing")


def _valuable_ahead_not_yet(row: Any) -> bool:
    return bool(row.high_value) and str(row.value_tier) == "low"


def _valuable_past_not_ahead(row: Any) -> bool:
    return str(row.value_tier) == "high" and float(row.probability_alive) < 0.2


LABEL_NOTES: tuple[tuple[Callable[[Any], bool], str], ...] = (
    (
        _recent_but_lapsing_group,
        "Bought recently (RFM recency {r_score} of 5), although the behaviour cluster "
        "'{cluster_name}' describes its group's typical pattern of few, widely spaced "
        "purchases: RFM and P(alive) ({probability_alive:.2f}) speak for this customer's last "
        "purchase, the cluster for the group.",
    ),
    (
        _valuable_ahead_not_yet,
        "Predicted CLV {clv:,.2f} is in the top fifth, while the nine-grid value tier (past "
        "spend and frequency) is low: the value is expected, not yet earned.",
    ),
    (
        _valuable_past_not_ahead,
        "High value in the past (nine-grid value tier high), but P(alive) is only "
        "{probability_alive:.2f}: that value is unlikely to continue.",
    ),
)


def label_notes(frame: pd.DataFrame) -> list[list[str]]:
    """For each row of :func:`score_frame`, why labels that seem to disagree both hold."""
    needed = {"r_score", "cluster_name", "high_value", "value_tier", "probability_alive", "clv"}
    if not needed <= set(frame.columns):
        return [[] for _ in range(len(frame))]
    out: list[list[str]] = []
    for record in frame.to_dict("records"):
        row = {str(k): v for k, v in record.items()}
        view: Any = SimpleNamespace(**row)
        out.append([text.format(**row) for applies, text in LABEL_NOTES if applies(view)])
    return out


# Scheme → the column of :func:`score_frame` that holds its label (segment schemes and churn risk).
AUDIENCE_COLUMNS: dict[str, str] = {**LABEL_COLUMNS, "churn_risk": "risk_band"}


def select_audience(frame: pd.DataFrame, scheme: str, label: str) -> pd.DataFrame:
    """The rows of a :func:`score_frame` table whose ``scheme`` label is ``label`` (compared
    as text), highest CLV first (ties in the table's order); empty when none matches."""
    column = AUDIENCE_COLUMNS[scheme]
    chosen = frame[frame[column].astype(str) == str(label)]
    return chosen.sort_values("clv", ascending=False, kind="stable")
