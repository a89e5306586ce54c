"""The whole customer view: request customers → features → the three models → response.

Uses the same feature function as training (:func:`models.features.summarize`), so there is
no train/serve skew. No MLflow here: the estimators come from the model store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd

from models import playbook as pb
from models.churn.features import churn_features, churn_features_from_summary
from models.churn.reasons import churn_reasons
from models.churn.risk import BAND_NAMES, band_of
from models.churn.rules import early_warnings
from models.clv.periodic import with_period_columns
from models.customer_view import (
    label_notes,
    recommended_actions,
    score_frame,
    segment_frame,
    select_audience,
)
from models.exceptions import InvalidInputError
from models.features import SUMMARY_COLUMNS, implied_revenue_12m, repeated_rows, summarize
from models.segments.value_index import VALUE_INDEX_COLUMN
from models.uplift.model import served_input
from service import fast_scoring
from service.model_store import LoadedModel, ModelStore, scoring_versions
from service.schemas import CustomerIn
from service.score_checks import attribute_rows, check_churn, check_scores, check_summary

# A default as_of (today) this many days after the request's latest purchase is warned about.
STALE_DAYS = 365
_LISTED = 5  # customers named in a warning


@dataclass
class RequestNotes:
    """A request's options beyond its customers, and the warnings its answer carries."""

    keep_duplicates: bool = False
    warnings: list[str] = field(default_factory=list)
    # days from the request's latest purchase to as_of (set when the features are built)
    days_since_latest: float | None = None
    # False: the pandas path only (the reference the fast path is checked against)
    fast: bool = True
    # True: the customers were read by service/fast_request.py, which the pandas path cannot
    # score: fast_scoring.NeedsReference when the fast path cannot answer
    fast_only: bool = False


def _fast(
    found: tuple[dict[str, Any], fast_scoring.Built] | None, notes: RequestNotes | None
) -> dict[str, Any] | None:
    """The fast path's answer (service/fast_scoring.py), its warnings and latest purchase
    noted as the pandas path notes them; None when the pandas path must answer."""
    if found is None:
        return None
    answer, built = found
    if notes is not None:
        notes.warnings.extend(built.warnings)
        notes.days_since_latest = built.days_since_latest
    return answer


def _use_fast(notes: RequestNotes | None) -> bool:
    return notes is None or notes.fast


def _reference(notes: RequestNotes | None) -> None:
    """Before the pandas path: NeedsReference when the request was read without pydantic."""
    if notes is not None and notes.fast_only:
        raise fast_scoring.NeedsReference


def _keep(notes: RequestNotes | None) -> bool:
    return notes is not None and notes.keep_duplicates


def model_as_of(loaded: dict[str, LoadedModel], now: datetime | None = None) -> date:
    """``"as_of": "model"``: the served versions' data date plus the days since each was
    registered (the latest over the families), so that data which ends when the training
    data ended is scored as the models saw it, moved on by the time that has passed."""
    now = now or datetime.now(UTC)
    dates = []
    for model in loaded.values():
        text = model.tags.get("as_of") or model.params.get("as_of")
        if not text:
            continue
        try:
            day = date.fromisoformat(str(text)[:10])
        except ValueError:
            continue
        elapsed = 0
        if model.registered_at is not None:
            registered = datetime.fromtimestamp(model.registered_at, UTC).date()
            elapsed = max((now.date() - registered).days, 0)
        dates.append(date.fromordinal(day.toordinal() + elapsed))
    if not dates:
        raise InvalidInputError(
            'the served models record no data date, so "as_of": "model" cannot be used: '
            "send as_of as a date (YYYY-MM-DD)",
            field="as_of",
        )
    return max(dates)


def stale_default_warning(as_of: date, notes: RequestNotes) -> None:
    """When as_of defaulted to today: a warning if the latest purchase sent is more than
    :data:`STALE_DAYS` days before it (every customer then looks lapsed: churn near 1, CLV
    near 0)."""
    days = notes.days_since_latest
    if days is None or not days > STALE_DAYS:
        return
    notes.warnings.append(
        f"as_of was not given, so today ({as_of}, UTC) was used; the latest purchase sent is "
        f"{days:,.0f} days before it, so every customer is scored as silent for at least that "
        'long. Send "as_of": "YYYY-MM-DD" (the day your data ends), or "as_of": "model" for '
        "the served models' data date plus the days since they were trained."
    )


def _drop_repeats(tx: pd.DataFrame, notes: RequestNotes | None) -> pd.DataFrame:
    """The purchases without exact repeats (:func:`models.features.repeated_rows`, the rule
    of training's loader), unless the request keeps them; a warning says what was dropped."""
    repeated = repeated_rows(tx)
    if not repeated.any():
        return tx
    per_customer = tx.loc[repeated, "customer_id"].value_counts(sort=False)
    named = ", ".join(f"{cid} ({n})" for cid, n in per_customer.head(_LISTED).items())
    more = f" and {len(per_customer) - _LISTED:,} more" if len(per_customer) > _LISTED else ""
    n = int(repeated.sum())
    if notes is not None and notes.keep_duplicates:
        notes.warnings.append(
            f"{n:,} purchase(s) identical to an earlier one of the same customer were kept as "
            f"asked (keep_duplicates): {named}{more}."
        )
        return tx
    if notes is not None:
        notes.warnings.append(
            f"{n:,} purchase(s) identical to an earlier one of the same customer (same time, "
            f"amount, cost and channel) were dropped, as training drops them: {named}{more}. "
            'Send "keep_duplicates": true to keep them (cvm --keep-duplicates in batch).'
        )
    return tx[~repeated]


def _summary_rows(customers: list[tuple[int, CustomerIn]]) -> pd.DataFrame:
    """Summary-feature customers as a frame with :data:`SUMMARY_COLUMNS` (days)."""
    rows = []
    for _, customer in customers:
        s = customer.summary
        assert s is not None
        n = s.frequency + 1
        revenue = s.total_revenue if s.total_revenue is not None else s.monetary_value * n
        # the profit columns as summarize computes them from costs: margin rate × revenue
        profit = np.nan if s.margin_rate is None else s.margin_rate * revenue
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
            revenue_12m=(
                implied_revenue_12m(revenue, s.T, s.recency)
                if s.revenue_12m is None
                else s.revenue_12m
            ),
            total_profit=profit,
            profit_per_purchase=profit / n,
            n_channels=np.nan if s.n_channels is None else float(s.n_channels),
            activity_trend=np.nan if s.activity_trend is None else s.activity_trend,
            spend_trend=np.nan if s.spend_trend is None else s.spend_trend,
        )
        rows.append(row)
    index = pd.Index([c.customer_id for _, c in customers], name="customer_id")
    return pd.DataFrame(rows, index=index, columns=SUMMARY_COLUMNS)


def transaction_frame(
    customers: list[tuple[int, CustomerIn]], notes: RequestNotes | None = None
) -> pd.DataFrame:
    """The purchases of ``(index, customer)`` pairs as a transactions frame (timestamps in
    UTC, no time zone), exact repeats dropped unless the request keeps them (warned)."""
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
    return _drop_repeats(tx, notes)


def _transaction_rows(
    customers: list[tuple[int, CustomerIn]], tx: pd.DataFrame, as_of: date
) -> pd.DataFrame:
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


def build_features(
    customers: list[CustomerIn],
    as_of: date,
    notes: RequestNotes | None = None,
    clv_model: Any = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, churn features) in request order; customer ids must be unique. ``notes``:
    the request's options (keep_duplicates) and where its warnings go. ``clv_model``: the
    served CLV estimator; a BG/BB one gets the periods of the customers sent with purchases
    (:func:`models.clv.periodic.with_period_columns`; summaries are converted by the model)."""
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
    attributes = pd.DataFrame(attribute_rows(customers))
    summaries, features = [], []
    if with_tx:  # the training feature functions on the raw purchases: no train/serve skew
        tx = transaction_frame(with_tx, notes)
        part = _transaction_rows(with_tx, tx, as_of)
        summaries.append(with_period_columns(clv_model, part, tx, as_of))
        features.append(churn_features(tx, pd.Timestamp(as_of), attributes))
    if with_summary:
        summary_part = _summary_rows(with_summary)
        summaries.append(summary_part)
        features.append(churn_features_from_summary(summary_part, attributes, pd.Timestamp(as_of)))
    summary = pd.concat(summaries).loc[ids]
    check_summary(summary, customers)
    if notes is not None and len(summary):
        notes.days_since_latest = float(summary["days_since_last"].min())
    return summary, pd.concat(features).reindex(ids)


def _num(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _value_index(row: pd.Series) -> float | None:
    """The AHP value index (None: missing, or a model saved without it)."""
    value = row.get(VALUE_INDEX_COLUMN)
    return None if value is None else _num(value)


def _text_or_none(value: Any) -> str | None:
    """A label, or None where there is none (never the text "None")."""
    return None if value is None or pd.isna(value) else str(value)


def _track_drift(loaded: dict[str, Any], summary: pd.DataFrame, features: pd.DataFrame) -> None:
    """Feed what is scored to each served version's drift monitor."""
    for family, frame in (("segmentation", summary), ("clv", summary), ("churn", features)):
        monitor = loaded[family].drift if family in loaded else None
        if monitor is not None:
            monitor.update(frame)


def _clv_block(row: pd.Series, clv_model: Any) -> dict[str, Any]:
    return {
        "expected_purchases": float(row["expected_purchases"]),
        "probability_alive": float(row["probability_alive"]),
        "expected_spend": float(row["expected_spend"]),
        "clv": float(row["clv"]),
        "clv_lower": _num(row["clv_lower"]),
        "clv_upper": _num(row["clv_upper"]),
        "margin": float(row["margin"]),
        "horizon_days": int(clv_model.horizon_days),
        "discount_rate": float(clv_model.discount_rate),
    }


def _value_block(row: pd.Series) -> dict[str, Any]:
    return {
        "historical": float(row["historical_value"]),
        "current": _num(row["current_value"]),
        "potential": float(row["potential_value"]),
        "margin": float(row["value_margin"]),
    }


def segment_customers(
    store: ModelStore,
    customers: list[CustomerIn],
    as_of: date,
    notes: RequestNotes | None = None,
) -> dict[str, Any]:
    """Every scheme's label, with name, description and actions, per customer
    (``{"model_version", "customers"}``)."""
    if _use_fast(notes):
        fast = _fast(fast_scoring.segment_customers(store, customers, as_of, _keep(notes)), notes)
        if fast is not None:
            return fast
    _reference(notes)
    loaded = store.snapshot()
    summary, features = build_features(customers, as_of, notes, loaded["clv"].estimator)
    frame = segment_frame({f: m.estimator for f, m in loaded.items()}, summary, features)
    segment_model = loaded["segmentation"].estimator
    book = pb.load_playbook(store.settings.playbook)
    rows = [
        {
            "customer_id": c.customer_id,
            "segments": segment_model.describe_row(frame.iloc[i], book),
            "ahp_value_index": _value_index(frame.iloc[i]),
        }
        for i, c in enumerate(customers)
    ]
    return {"model_version": loaded["segmentation"].version, "customers": rows}


def _customer_view(
    store: ModelStore,
    customers: list[CustomerIn],
    as_of: date,
    loaded: dict[str, LoadedModel] | None = None,
    notes: RequestNotes | None = None,
) -> tuple[dict[str, LoadedModel], pd.DataFrame]:
    """(the served versions, :func:`score_frame` of the customers), with drift tracked; one
    consistent set of versions for the whole request (``loaded``: the request's snapshot when
    the caller took it already)."""
    loaded, frame, _ = _view_and_features(store, customers, as_of, loaded, notes)
    return loaded, frame


def _view_and_features(
    store: ModelStore,
    customers: list[CustomerIn],
    as_of: date,
    loaded: dict[str, LoadedModel] | None = None,
    notes: RequestNotes | None = None,
) -> tuple[dict[str, LoadedModel], pd.DataFrame, pd.DataFrame]:
    """:func:`_customer_view` and the churn features it used (request order)."""
    loaded = loaded if loaded is not None else store.snapshot()
    summary, features = build_features(customers, as_of, notes, loaded["clv"].estimator)
    frame = score_frame({f: m.estimator for f, m in loaded.items()}, summary, features)
    check_scores(frame, customers)
    _track_drift(loaded, summary, features)
    return loaded, frame, features


def score_customers(
    store: ModelStore,
    customers: list[CustomerIn],
    as_of: date,
    notes: RequestNotes | None = None,
) -> dict[str, Any]:
    """Segments, churn, CLV, value at risk and the recommended action per customer, with the
    versions that computed them (``{"model_versions", "customers"}``)."""
    if _use_fast(notes):
        fast = _fast(fast_scoring.score_customers(store, customers, as_of, _keep(notes)), notes)
        if fast is not None:
            return fast
    _reference(notes)
    loaded, frame = _customer_view(store, customers, as_of, None, notes)
    book = pb.load_playbook(store.settings.playbook)
    actions = recommended_actions(frame, book)
    notes_by_row = label_notes(frame)
    segment_model = loaded["segmentation"].estimator
    clv_model = loaded["clv"].estimator
    churn_horizon = int(float(loaded["churn"].params.get("churn_horizon_days", 90)))
    out = []
    for i, customer in enumerate(customers):
        row = frame.iloc[i]
        out.append(
            {
                "customer_id": customer.customer_id,
                "segments": segment_model.describe_row(row, book),
                "ahp_value_index": _value_index(row),
                "churn": {
                    "probability": float(row["churn_probability"]),
                    "risk_band": str(row["risk_band"]),
                    "horizon_days": churn_horizon,
                },
                "clv": _clv_block(row, clv_model),
                "value": _value_block(row),
                "value_at_risk": float(row["value_at_risk"]),
                "recommended_action": actions.iloc[i].to_dict(),
                "notes": notes_by_row[i],
            }
        )
    return {"model_versions": scoring_versions(loaded), "customers": out}


def plan_inputs(
    store: ModelStore,
    customers: list[CustomerIn],
    as_of: date,
    notes: RequestNotes | None = None,
) -> tuple[dict[str, str], pd.DataFrame, pd.DataFrame, Any]:
    """What a campaign plan needs of the posted customers, from one snapshot of the served
    models: (the versions used, a frame of ``customer_id``, ``churn_probability``,
    ``risk_band`` and ``clv`` in request order, the churn features in the same order, the
    served uplift model or None). The scores are those of the customer view
    (/v1/customers/score); the versions include ``uplift`` when it is served."""
    loaded, frame, features = _view_and_features(store, customers, as_of, None, notes)
    scores = pd.DataFrame(
        {
            "customer_id": [c.customer_id for c in customers],
            "churn_probability": frame["churn_probability"].to_numpy(dtype=float),
            "risk_band": frame["risk_band"].astype(str).to_numpy(),
            "clv": frame["clv"].to_numpy(dtype=float),
        }
    )
    versions = scoring_versions(loaded)
    uplift = loaded.get("uplift")
    if uplift is not None:
        versions["uplift"] = uplift.version
    if uplift is None:
        return versions, scores, features.reset_index(drop=True), None
    model = uplift.estimator
    return versions, scores, served_input(model, features).reset_index(drop=True), model


def churn_customers(
    store: ModelStore,
    customers: list[CustomerIn],
    as_of: date,
    notes: RequestNotes | None = None,
) -> dict[str, Any]:
    """Churn probability, risk band, top-3 reasons with churn type, and early-warning alerts."""
    if _use_fast(notes):
        fast = _fast(fast_scoring.churn_customers(store, customers, as_of, _keep(notes)), notes)
        if fast is not None:
            return fast
    _reference(notes)
    loaded = store.snapshot()
    summary, features = build_features(customers, as_of, notes)
    churn = loaded["churn"]
    model = churn.estimator
    reasons = churn_reasons(model, features.reindex(columns=list(model.feature_names_in_)))
    check_churn(reasons, customers)
    alerts = early_warnings(features)
    _track_drift(loaded, summary, features)
    horizon = int(float(churn.params.get("churn_horizon_days", 90)))
    rows = []
    for i, customer in enumerate(customers):
        probability = float(reasons["churn_probability"].iloc[i])
        rows.append(
            {
                "customer_id": customer.customer_id,
                "probability": probability,
                "risk_band": str(band_of(model, [probability])[0]),
                "horizon_days": horizon,
                "churn_type": _text_or_none(reasons["churn_type"].iloc[i]),
                "reasons": [
                    {**r, "value": str(r["value"]), "contribution": float(r["contribution"])}
                    for r in reasons["reasons"].iloc[i]
                ],
                "alerts": list(alerts["alerts"].iloc[i]),
            }
        )
    return {"model_version": churn.version, "customers": rows}


def scheme_labels(
    store: ModelStore, scheme: str, loaded: dict[str, LoadedModel] | None = None
) -> list[str]:
    """The labels a scheme can give (its catalogue in the served segmentation version, or in
    ``loaded``, the request's snapshot)."""
    if scheme == "churn_risk":
        return list(BAND_NAMES)
    book = pb.load_playbook(store.settings.playbook)
    segmentation = (loaded if loaded is not None else store.snapshot())["segmentation"]
    catalogue = segmentation.estimator.catalogue(book)
    return [str(entry["label"]) for entry in catalogue[scheme]["labels"]]


def audience_customers(
    store: ModelStore,
    customers: list[CustomerIn],
    as_of: date,
    scheme: str,
    label: str,
    notes: RequestNotes | None = None,
) -> dict[str, Any]:
    """The customers carrying ``label`` in ``scheme``, highest CLV first, with their value,
    risk and recommended action (``{"model_versions", "scored", "count", "customers"}``)."""
    loaded = store.snapshot()  # one set of versions for the label check and the scores
    labels = scheme_labels(store, scheme, loaded)
    if label not in labels:
        raise InvalidInputError(
            f"{scheme} has no label {label!r}; its labels are {', '.join(labels)}",
            field="label",
        )
    if _use_fast(notes):
        found = fast_scoring.audience_customers(
            store, customers, as_of, scheme, label, _keep(notes), loaded
        )
        fast = _fast(found, notes)
        if fast is not None:
            return fast
    _reference(notes)
    loaded, frame = _customer_view(store, customers, as_of, loaded, notes)
    frame = frame.assign(_row=np.arange(len(frame)))
    chosen = select_audience(frame, scheme, label)
    actions = recommended_actions(chosen, pb.load_playbook(store.settings.playbook))
    members = [
        {
            "customer_id": customers[int(row)].customer_id,
            "clv": float(clv),
            "churn_probability": float(p),
            "value_at_risk": float(var),
            "recommended_action": action,
        }
        for row, clv, p, var, action in zip(
            chosen["_row"],
            chosen["clv"],
            chosen["churn_probability"],
            chosen["value_at_risk"],
            actions.to_dict(orient="records"),
            strict=True,
        )
    ]
    return {
        "model_versions": scoring_versions(loaded),
        "scored": len(customers),
        "count": len(members),
        "customers": members,
    }
