"""The whole customer view as one flat table: every segment label, churn, CLV, value at risk.

Shared by batch scoring (``cvm score``) and the HTTP service, so both give the same answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from models import playbook as pb
from models.churn.encoding import frame_columns
from models.churn.risk import band_of
from models.customer_value import with_value
from models.segments.schemes import LABEL_COLUMNS

# The CLV model's outputs the segmentation reads (lifecycle stage, nine-grid growth axis).
CLV_SEGMENT_INPUTS: tuple[str, ...] = ("probability_alive", "expected_purchases")


def segment_frame(
    models: dict[str, Any], summary: pd.DataFrame, attributes: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Every segmentation scheme's labels plus the CLV columns (P(alive) feeds the lifecycle,
    the expected purchases the nine-grid's growth axis). ``attributes`` (same index):
    customer columns the value index reads beside the summary."""
    clv = models["clv"].predict(summary)
    table = value_index_inputs(models, segmentation_input(summary, clv), attributes)
    segments = models["segmentation"].predict(table)
    return pd.concat([segments.drop(columns=["probability_alive"], errors="ignore"), clv], axis=1)


def segmentation_input(summary: pd.DataFrame, clv: pd.DataFrame) -> pd.DataFrame:
    """The segmentation model's input: the summary with the CLV model's ``probability_alive``
    and ``expected_purchases`` (:data:`CLV_SEGMENT_INPUTS`)."""
    return summary.assign(**{c: clv[c].to_numpy() for c in CLV_SEGMENT_INPUTS})


def value_index_inputs(
    models: dict[str, Any], table: pd.DataFrame, attributes: pd.DataFrame | None
) -> pd.DataFrame:
    """``table`` with the customer columns of ``attributes`` that the segmentation model's
    value index reads and ``table`` lacks (e.g. a deposit balance)."""
    index = getattr(models["segmentation"], "value_index_", None)
    if index is None or attributes is None:
        return table
    extra = [c for c in index.columns_ if c not in table.columns and c in attributes.columns]
    return table.join(attributes[extra]) if extra else table


def score_frame(
    models: dict[str, Any], summary: pd.DataFrame, features: pd.DataFrame
) -> pd.DataFrame:
    """One row per customer of ``summary``: segments, CLV, the value in three parts
    (:mod:`models.customer_value`) and churn.

    ``models``: fitted ``segmentation`` (:class:`CustomerSegments`), ``churn``
    (:class:`ChurnClassifier`) and ``clv`` estimators; ``features``: the churn model's inputs
    (summary + customer attributes; attributes it lacks are treated as missing).
    """
    out = with_value(segment_frame(models, summary, features), summary)
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
    description that another label of the same customer could contradict).

    The playbook is consulted once per distinct (RFM segment, risk band, high value); only
    the reasons are written row by row."""
    n = len(frame)
    if n == 0:
        return pd.DataFrame(columns=["action", "reason", "source"], index=frame.index)
    segment = frame["rfm_segment"].astype(str).to_numpy(dtype=object)
    band = frame["risk_band"].astype(str).to_numpy(dtype=object)
    high = frame["high_value"].to_numpy(dtype=bool)
    keys = pd.MultiIndex.from_arrays([segment, band, high])
    codes, uniques = pd.factorize(keys)
    plays = [pb.recommend(str(s), str(b), bool(h), playbook) for s, b, h in uniques]
    columns: dict[str, list[Any]] = {}
    for key in plays[0]:
        table = np.array([play[key] for play in plays], dtype=object)
        columns[key] = list(table[codes])
    columns["reason"] = _reasons(frame, columns["source"], columns["reason"])
    return pd.DataFrame(columns, index=frame.index)


def _reasons(frame: pd.DataFrame, sources: list[Any], generic: list[Any]) -> list[str]:
    """:func:`_reason` for every row (the same text), column by column."""
    clv = frame["clv"].to_numpy(dtype=float)
    p_churn = frame["churn_probability"].to_numpy(dtype=float)
    at_risk = frame["value_at_risk"].to_numpy(dtype=float)
    segment = frame["rfm_segment"].to_numpy(dtype=object)
    r, f, m = (frame[c].to_numpy() for c in ("r_score", "f_score", "m_score"))
    return [
        (
            f"Predicted CLV {clv[i]:,.2f} is in the top fifth of customers and churn risk is "
            f"high (P {p_churn[i]:.2f}): {at_risk[i]:,.2f} of value at risk."
        )
        if sources[i] == "high_value_high_risk"
        else f"RFM {segment[i]} (R{r[i]} F{f[i]} M{m[i]}): {generic[i]}"
        for i in range(len(frame))
    ]


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
    """For each row of :func:`score_frame`, why labels that seem to disagree both hold.

    Each rule is evaluated on the columns at once (:data:`LABEL_NOTE_COLUMNS`); only the rows
    it applies to are formatted."""
    needed = {"r_score", "cluster_name", "high_value", "value_tier", "probability_alive", "clv"}
    if not needed <= set(frame.columns):
        return [[] for _ in range(len(frame))]
    out: list[list[str]] = [[] for _ in range(len(frame))]
    values = {c: frame[c].to_numpy() for c in needed}
    for (_, text), applies in zip(LABEL_NOTES, LABEL_NOTE_COLUMNS, strict=True):
        for i in np.flatnonzero(applies(frame)):
            out[i].append(text.format(**{c: _plain(v[i]) for c, v in values.items()}))
    return out


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value ``DataFrame.to_dict`` gives (formats the same)."""
    return value.item() if isinstance(value, np.generic) else value


# The rules of LABEL_NOTES on whole columns (the same conditions, in the same order).
LABEL_NOTE_COLUMNS: tuple[Callable[[pd.DataFrame], np.ndarray], ...] = (
    lambda f: (
        (f["r_score"].to_numpy(dtype=float) >= 4)
        & f["cluster_name"].astype(str).str.lower().str.startswith("lapsing").to_numpy(dtype=bool)
    ),
    lambda f: (
        f["high_value"].to_numpy(dtype=bool) & (f["value_tier"].astype(str) == "low").to_numpy()
    ),
    lambda f: (
        (f["value_tier"].astype(str) == "high").to_numpy()
        & (f["probability_alive"].to_numpy(dtype=float) < 0.2)
    ),
)


# Scheme → the column of :func:`score_frame` that holds its label (segment schemes and churn risk).
AUDIENCE_COLUMNS: dict[str, str] = {**LABEL_COLUMNS, "churn_risk": "risk_band"}


def select_audience(frame: pd.DataFrame, scheme: str, label: str) -> pd.DataFrame:
    """The rows of a :func:`score_frame` table whose ``scheme`` label is ``label`` (compared
    as text), highest CLV first (ties in the table's order); empty when none matches."""
    column = AUDIENCE_COLUMNS[scheme]
    chosen = frame[frame[column].astype(str) == str(label)]
    return chosen.sort_values("clv", ascending=False, kind="stable")
