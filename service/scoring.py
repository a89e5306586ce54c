"""The whole customer view: request customers → features → the three models → response.

Uses the same feature function as training (:func:`models.features.summarize`), so there is
no train/serve skew. No MLflow here: the estimators come from the model store.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from models import playbook as pb
from models.churn import risk_band
from models.exceptions import InvalidInputError
from models.features import SUMMARY_COLUMNS, customer_features, summarize
from service.model_store import ModelStore
from service.schemas import CustomerIn


def _summary_rows(customers: list[tuple[int, CustomerIn]]) -> pd.DataFrame:
    """Summary-feature customers as a frame with :data:`SUMMARY_COLUMNS` (days)."""
    rows = []
    for _, customer in customers:
        s = customer.summary
        assert s is not None
        n = s.frequency + 1
        revenue = s.total_revenue if s.total_revenue is not None else s.monetary_value * n
        row = dict.fromkeys(SUMMARY_COLUMNS, np.nan)
        row.update(
            frequency=float(s.frequency),
            recency=s.recency,
            T=s.T,
            monetary_value=s.monetary_value,
            n_purchases=float(n),
            total_revenue=revenue,
            avg_order_value=revenue / n,
            tenure_days=s.T,
            days_since_last=s.T - s.recency,
            margin_rate=np.nan if s.margin_rate is None else s.margin_rate,
            n_channels=np.nan if s.n_channels is None else float(s.n_channels),
            activity_trend=np.nan if s.activity_trend is None else s.activity_trend,
            spend_trend=np.nan if s.spend_trend is None else s.spend_trend,
        )
        rows.append(row)
    index = pd.Index([c.customer_id for _, c in customers], name="customer_id")
    return pd.DataFrame(rows, index=index, columns=SUMMARY_COLUMNS)


def _transaction_rows(customers: list[tuple[int, CustomerIn]], as_of: date) -> pd.DataFrame:
    records = [
        (c.customer_id, t.timestamp, t.amount, t.cost, t.channel)
        for _, c in customers
        for t in c.transactions or []
    ]
    tx = pd.DataFrame(records, columns=["customer_id", "timestamp", "amount", "cost", "channel"])
    stamps = pd.to_datetime(tx["timestamp"], utc=True).dt.tz_localize(None)
    tx = tx.assign(timestamp=stamps)
    if tx["cost"].isna().all():
        tx = tx.drop(columns="cost")
    if tx["channel"].isna().all():
        tx = tx.drop(columns="channel")
    summary = summarize(tx, as_of)
    missing = [(i, c.customer_id) for i, c in customers if c.customer_id not in summary.index]
    if missing:
        index, cid = missing[0]
        raise InvalidInputError(
            f"customer '{cid}' has no transaction on or before as_of {as_of}",
            field=f"customers.{index}.transactions",
            rows=[i for i, _ in missing],
        )
    return summary.loc[[c.customer_id for _, c in customers]]


def build_features(customers: list[CustomerIn], as_of: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, churn features) in request order; customer ids must be unique."""
    ids = [c.customer_id for c in customers]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dupes = [i for i, cid in enumerate(ids) if cid in seen or seen.add(cid)]  # type: ignore[func-returns-value]
        raise InvalidInputError(
            f"customer_id '{ids[dupes[0]]}' appears more than once",
            field=f"customers.{dupes[0]}.customer_id",
            rows=dupes,
        )
    with_tx = [(i, c) for i, c in enumerate(customers) if c.transactions is not None]
    with_summary = [(i, c) for i, c in enumerate(customers) if c.summary is not None]
    parts = []
    if with_tx:
        parts.append(_transaction_rows(with_tx, as_of))
    if with_summary:
        parts.append(_summary_rows(with_summary))
    summary = pd.concat(parts) if len(parts) > 1 else parts[0]
    summary = summary.loc[ids]
    attribute_rows = [{"customer_id": c.customer_id, **(c.attributes or {})} for c in customers]
    attributes = pd.DataFrame(attribute_rows)
    return summary, customer_features(summary, attributes)


def _align_churn_features(features: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The churn model's columns in order; attributes the caller did not send are missing."""
    return features.reindex(columns=names)


def _num(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def score_customers(
    store: ModelStore, customers: list[CustomerIn], as_of: date
) -> list[dict[str, Any]]:
    """Segments, churn, CLV, value at risk and the recommended action per customer."""
    summary, features = build_features(customers, as_of)
    segment_model = store.get("segmentation").estimator
    churn_loaded = store.get("churn")
    clv_loaded = store.get("clv")
    book = pb.load_playbook(store.settings.playbook)

    churn_model = churn_loaded.estimator
    p_churn = churn_model.predict_proba(
        _align_churn_features(features, list(churn_model.feature_names_in_))
    )[:, 1]
    bands = risk_band(p_churn)
    clv = clv_loaded.estimator.predict(summary)
    segments = segment_model.predict(summary.assign(probability_alive=clv["probability_alive"].to_numpy()))
    threshold = getattr(clv_loaded.estimator, "high_value_threshold_", np.inf)
    churn_horizon = int(float(churn_loaded.params.get("churn_horizon_days", 90)))
    clv_model = clv_loaded.estimator

    out = []
    for i, customer in enumerate(customers):
        seg = segments.iloc[i]
        c = clv.iloc[i]
        label = str(seg["rfm_segment"])
        value = float(c["clv"])
        out.append(
            {
                "customer_id": customer.customer_id,
                "segments": segment_model.describe_row(seg, book),
                "churn": {
                    "probability": float(p_churn[i]),
                    "risk_band": str(bands[i]),
                    "horizon_days": churn_horizon,
                },
                "clv": {
                    "expected_purchases": float(c["expected_purchases"]),
                    "probability_alive": float(c["probability_alive"]),
                    "expected_spend": float(c["expected_spend"]),
                    "clv": value,
                    "clv_lower": _num(c["clv_lower"]),
                    "clv_upper": _num(c["clv_upper"]),
                    "margin": float(c["margin"]),
                    "horizon_days": int(clv_model.horizon_days),
                    "discount_rate": float(clv_model.discount_rate),
                },
                "value_at_risk": float(p_churn[i]) * max(value, 0.0),
                "recommended_action": pb.recommend(label, str(bands[i]), value >= threshold, book),
            }
        )
    return out
