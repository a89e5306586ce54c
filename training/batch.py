"""Batch scoring and audiences: ``cvm score`` and ``cvm audience``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from models.churn.features import churn_features
from models.clv.periodic import with_period_columns
from models.customer_view import (
    AUDIENCE_COLUMNS,
    label_notes,
    recommended_actions,
    score_frame,
    select_audience,
)
from models.exceptions import InvalidInputError
from models.features import summarize
from training.progress import stage_of

CHUNK = 50_000

# Rounding of the lists people act on (audiences, cvm risk --out): money to the cent,
# probabilities to 4 decimals. The scored file keeps full precision.
MONEY_COLUMNS = (
    "clv",
    "clv_lower",
    "clv_upper",
    "value_at_risk",
    "historical_value",
    "current_value",
    "potential_value",
)
PROBABILITY_COLUMNS = ("churn_probability", "probability_alive")


def for_export(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its money columns rounded to cents and probabilities to 4 decimals."""
    decimals = {c: 2 for c in MONEY_COLUMNS if c in frame.columns}
    decimals.update({c: 4 for c in PROBABILITY_COLUMNS if c in frame.columns})
    return frame.round(decimals)


def score_customers(
    models: dict[str, Any],
    transactions: pd.DataFrame,
    customers: pd.DataFrame | None,
    as_of: Any,
    progress: Callable[[str], None] = print,
) -> pd.DataFrame:
    """One row per customer: every label and score, value at risk and the recommended action."""
    return score_with_features(models, transactions, customers, as_of, progress)[0]


def score_with_features(
    models: dict[str, Any],
    transactions: pd.DataFrame,
    customers: pd.DataFrame | None,
    as_of: Any,
    progress: Callable[[str], None] = print,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`score_customers` and the churn features it scored, indexed by customer id
    (what the uplift model reads too: ``cvm plan``)."""
    start = time.perf_counter()
    # a BG/BB CLV model reads each customer's periods too (models/clv/periodic.py)
    summary = with_period_columns(
        models["clv"], summarize(transactions, as_of), transactions, as_of
    )
    features = churn_features(transactions, as_of, customers)
    progress(f"summarised {len(transactions):,} transactions into {len(summary):,} customers")
    parts = []
    with stage_of(progress, "scoring customers", len(summary)) as stage:
        for offset in range(0, len(summary), CHUNK):
            rows = summary.index[offset : offset + CHUNK]
            frame = score_frame(models, summary.loc[rows], features.loc[rows])
            parts.append(with_actions(frame))
            stage.advance(len(rows))
    progress(f"scored {len(summary):,} customers ({time.perf_counter() - start:.1f}s)")
    scored = pd.concat(parts) if parts else pd.DataFrame()
    return scored.reset_index(), features


def with_actions(frame: pd.DataFrame) -> pd.DataFrame:
    """A :func:`models.customer_view.score_frame` table with the playbook's recommended
    action (``recommended_*``) and the notes on labels that seem to disagree
    (``label_notes``), as ``cvm score`` writes it (pandas and Spark engines)."""
    actions = recommended_actions(frame).add_prefix("recommended_")
    notes = pd.Series([" | ".join(n) for n in label_notes(frame)], index=frame.index)
    return frame.join(actions).assign(label_notes=notes)


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """CSV or Parquet by the file's extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    elif path.suffix.lower() in (".csv", ".txt"):
        frame.to_csv(path, index=False)
    else:
        raise InvalidInputError(f"{path}: use a .csv or .parquet file name", field=str(path))


def read_scored(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise InvalidInputError(
            f"{path}: file not found (write it with cvm score)", field=str(path)
        )
    if path.is_dir() or path.suffix.lower() in (".parquet", ".pq"):
        # a folder: the Parquet parts written by cvm score --engine spark
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"customer_id": str})


def audience(scored: pd.DataFrame, scheme: str, label: str) -> pd.DataFrame:
    """The customers of ``scored`` carrying ``label`` in ``scheme``, highest CLV first (money
    to the cent, probabilities to 4 decimals: :func:`for_export`)."""
    if scheme not in AUDIENCE_COLUMNS:
        raise InvalidInputError(
            f"unknown scheme {scheme!r}; choose one of {', '.join(AUDIENCE_COLUMNS)}",
            field="scheme",
        )
    column = AUDIENCE_COLUMNS[scheme]
    if column not in scored.columns:
        raise InvalidInputError(f"the scored file has no column {column!r}", field=column)
    values = scored[column].astype(str)
    if label not in set(values):
        known = ", ".join(sorted(set(values)))
        raise InvalidInputError(
            f"no customer has {scheme} label {label!r} (labels: {known})", field="label"
        )
    chosen = select_audience(scored, scheme, label)
    keep = [
        "customer_id",
        column,
        "clv",
        "churn_probability",
        "value_at_risk",
        "recommended_action",
    ]
    return for_export(chosen[[c for c in keep if c in chosen.columns]])
