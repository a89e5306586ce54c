"""The customer-view routes on the column-wise fast path (:mod:`models.fast_view`).

Each function here answers as its counterpart in :mod:`service.scoring` does, with the same
numbers and texts, from numpy columns built straight from the parsed request (no DataFrame).
It returns None when the request or a served model is outside the fast path, and also when
the request is invalid in a way the pandas path reports (repeated customer ids, a customer
without a purchase by ``as_of``, sums or scores that are not finite numbers): the caller then
takes the pandas path, the reference, which raises its usual 422.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from models import fast_view as fv
from models import playbook as pb
from models.churn.reasons import load_churn_types
from models.churn.risk import band_of
from models.customer_value import VALUE_COLUMNS, value_parts
from models.customer_view import AUDIENCE_COLUMNS, CLV_SEGMENT_INPUTS
from models.exceptions import InvalidInputError
from models.features import SUMMARY_COLUMNS
from service.model_store import LoadedModel, ModelStore, scoring_versions
from service.schemas import CustomerIn
from service.score_checks import REQUIRED_SUMMARY, SHOWN_SCORES, attribute_rows

log = logging.getLogger("cvm.scoring")

_LISTED = 5  # customers named in a warning (as service.scoring)
_TYPES = load_churn_types()


class NeedsReference(Exception):
    """The fast path cannot answer a request whose customers have no pydantic objects
    (service/fast_request.py): the caller parses it with pydantic and takes the pandas path."""


@dataclass
class Built:
    """A request's columns: summary and churn features (request order), and its warnings."""

    summary: fv.Columns
    features: fv.Columns
    warnings: list[str]
    days_since_latest: float | None


_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _purchases(customers: list[CustomerIn]) -> fv.Purchases:
    """The request's purchases as columns (``customer``: the position in the request; times
    in UTC, as ``pd.to_datetime(..., utc=True)`` reads them)."""
    with_tx = [(i, c.transactions) for i, c in enumerate(customers) if c.transactions is not None]
    txs = [t for _, transactions in with_tx for t in transactions]
    owner = np.repeat(
        np.array([i for i, _ in with_tx], dtype=np.int64),
        np.array([len(transactions) for _, transactions in with_tx], dtype=np.int64),
    )
    epoch, epoch_utc, step = _EPOCH, _EPOCH_UTC, _MICROSECOND
    micros = [
        (t.timestamp - (epoch if t.timestamp.tzinfo is None else epoch_utc)) // step for t in txs
    ]
    codes: dict[str, int] = {}
    channel = [-1 if t.channel is None else codes.setdefault(t.channel, len(codes)) for t in txs]
    return fv.Purchases(
        owner,
        np.array(micros, dtype=np.int64) * 1000,
        np.array([t.amount for t in txs], dtype=float),
        np.array([t.cost for t in txs], dtype=float),  # None → NaN
        np.array(channel, dtype=np.int64),
        list(codes),
        len(customers),
        customer_rank=_id_ranks(customers),
    )


def _id_ranks(customers: list[CustomerIn]) -> np.ndarray:
    """Each customer's place in the order of the customer ids as text."""
    ids = [c.customer_id for c in customers]
    rank = np.empty(len(ids), dtype=np.int64)
    rank[sorted(range(len(ids)), key=ids.__getitem__)] = np.arange(len(ids))
    return rank


def _repeat_warning(
    purchases: fv.Purchases, customers: list[CustomerIn], keep: bool
) -> tuple[fv.Purchases, list[str]]:
    """``service.scoring._drop_repeats`` on columns."""
    repeated = purchases.repeated()
    if not repeated.any():
        return purchases, []
    counts: dict[str, int] = {}
    for i in purchases.customer[repeated].tolist():
        cid = customers[i].customer_id
        counts[cid] = counts.get(cid, 0) + 1
    named = ", ".join(f"{cid} ({n})" for cid, n in list(counts.items())[:_LISTED])
    more = f" and {len(counts) - _LISTED:,} more" if len(counts) > _LISTED else ""
    n = int(repeated.sum())
    if keep:
        return purchases, [
            f"{n:,} purchase(s) identical to an earlier one of the same customer were kept as "
            f"asked (keep_duplicates): {named}{more}."
        ]
    return purchases.take(np.flatnonzero(~repeated)), [
        f"{n:,} purchase(s) identical to an earlier one of the same customer (same time, "
        f"amount, cost and channel) were dropped, as training drops them: {named}{more}. "
        'Send "keep_duplicates": true to keep them (cvm --keep-duplicates in batch).'
    ]


def build(customers: list[CustomerIn], as_of: date, keep_duplicates: bool) -> Built:
    """``service.scoring.build_features`` as columns; :class:`fv.Unsupported` where the
    pandas path must answer (it raises the request's error, or covers the case)."""
    ids = [c.customer_id for c in customers]
    if len(set(ids)) != len(ids):
        raise fv.Unsupported("repeated customer ids")
    attributes = fv.attribute_columns(attribute_rows(customers))
    n = len(customers)
    summary = {name: np.full(n, np.nan) for name in SUMMARY_COLUMNS}
    warnings: list[str] = []
    main: list[str | None] | None = None
    with_tx = np.array([c.transactions is not None for c in customers], dtype=bool)
    if with_tx.any():
        # read from the body as columns (service/fast_request.py), else from the objects
        purchases = getattr(customers, "purchases", None)
        if purchases is None:
            purchases = _purchases(customers)
        purchases, warnings = _repeat_warning(purchases, customers, keep_duplicates)
        bought_summary, bought = fv.summarize_purchases(purchases, as_of)
        if (with_tx & ~bought).any():
            raise fv.Unsupported("a customer without a purchase by as_of")
        summary = bought_summary
        if purchases.has_channel:
            main = fv.main_channel(purchases, as_of)
    if not with_tx.all():
        rows = np.flatnonzero(~with_tx)
        given = fv.summary_rows([customers[i].summary.__dict__ for i in rows])  # type: ignore[union-attr]
        for name in SUMMARY_COLUMNS:
            summary[name][rows] = given[name]
    values = np.column_stack([summary[c] for c in SUMMARY_COLUMNS])
    required = [j for j, c in enumerate(SUMMARY_COLUMNS) if c in REQUIRED_SUMMARY]
    if np.isinf(values).any() or np.isnan(values[:, required]).any():
        raise fv.Unsupported("sums that are not finite numbers")
    features = fv.churn_feature_columns(summary, attributes, as_of, main)
    latest = float(np.min(summary["days_since_last"])) if n else None
    return Built(summary, features, warnings, latest)


def _track_drift(loaded: dict[str, LoadedModel], built: Built, n: int) -> None:
    for family, columns in (
        ("segmentation", built.summary),
        ("clv", built.summary),
        ("churn", built.features),
    ):
        monitor = loaded[family].drift if family in loaded else None
        if monitor is not None:
            monitor.update_columns(columns, n)


def _segments(
    loaded: dict[str, LoadedModel], built: Built, n: int, interval: bool = False
) -> fv.Columns:
    """``models.customer_view.segment_frame`` as columns (CLV, then every scheme); the CLV
    interval only with ``interval`` (only /v1/customers/score shows it)."""
    clv = fv.clv_columns(loaded["clv"].estimator, built.summary, interval)
    table = {**built.summary, **{c: clv[c] for c in CLV_SEGMENT_INPUTS}}
    segmentation = loaded["segmentation"].estimator
    index = getattr(segmentation, "value_index_", None)  # customer columns it reads
    for column in index.columns_ if index is not None else ():
        if column not in table and column in built.features:
            table[column] = built.features[column]
    out = fv.segment_columns(segmentation, table, n)
    out.update(clv)
    return out


def _view(
    loaded: dict[str, LoadedModel], built: Built, n: int, interval: bool = False
) -> fv.Columns:
    """``models.customer_view.score_frame`` as columns, its scores checked finite."""
    frame = _segments(loaded, built, n, interval)
    frame.update(
        value_parts(
            lambda c: np.asarray(built.summary[c] if c in built.summary else frame[c], float)
        )
    )
    churn = loaded["churn"].estimator
    inputs = fv.churn_inputs(churn, built.features, n)
    _, p_churn = fv.churn_scores(churn, inputs, n)
    threshold = getattr(loaded["clv"].estimator, "high_value_threshold_", np.inf)
    fv.with_churn(frame, churn, np.asarray(p_churn, dtype=float), threshold)
    for column in SHOWN_SCORES:
        if not np.isfinite(np.asarray(frame[column], dtype=float)).all():
            raise fv.Unsupported("a score that is not a finite number")
    return frame


def _clv_blocks(frame: fv.Columns, n: int, model: Any) -> list[dict[str, Any]]:
    """``service.scoring._clv_block`` of every customer."""
    names = ("expected_purchases", "probability_alive", "expected_spend", "clv", "margin")
    c = {name: np.asarray(frame[name], dtype=float).tolist() for name in names}
    bounds = {}
    for name in ("clv_lower", "clv_upper"):
        values = np.asarray(frame[name], dtype=float).tolist()
        bounds[name] = [v if math.isfinite(v) else None for v in values]
    horizon, rate = int(model.horizon_days), float(model.discount_rate)
    return [
        {
            "expected_purchases": c["expected_purchases"][i],
            "probability_alive": c["probability_alive"][i],
            "expected_spend": c["expected_spend"][i],
            "clv": c["clv"][i],
            "clv_lower": bounds["clv_lower"][i],
            "clv_upper": bounds["clv_upper"][i],
            "margin": c["margin"][i],
            "horizon_days": horizon,
            "discount_rate": rate,
        }
        for i in range(n)
    ]


def _value_blocks(frame: fv.Columns, n: int) -> list[dict[str, Any]]:
    """``service.scoring._value_block`` of every customer."""
    c = {name: np.asarray(frame[name], dtype=float).tolist() for name in VALUE_COLUMNS}
    current = [v if math.isfinite(v) else None for v in c["current_value"]]
    return [
        {
            "historical": c["historical_value"][i],
            "current": current[i],
            "potential": c["potential_value"][i],
            "margin": c["value_margin"][i],
        }
        for i in range(n)
    ]


def _attempt(work: Any, *args: Any) -> Any:
    """``work(*args)``, or None when the pandas path must answer."""
    try:
        return work(*args)
    except fv.Unsupported as exc:
        log.debug("customer view on the pandas path: %s", exc)
    except InvalidInputError as exc:  # the pandas path raises it, with its own wording
        log.debug("customer view on the pandas path: %s", exc.message)
    return None


def _prepare(
    store: ModelStore,
    customers: list[CustomerIn],
    as_of: date,
    keep_duplicates: bool,
    loaded: dict[str, LoadedModel] | None = None,
) -> tuple[dict[str, LoadedModel], Built]:
    loaded = loaded if loaded is not None else store.snapshot()
    fv.check_models({f: m.estimator for f, m in loaded.items()})
    return loaded, build(customers, as_of, keep_duplicates)


def score_customers(
    store: ModelStore, customers: list[CustomerIn], as_of: date, keep_duplicates: bool
) -> tuple[dict[str, Any], Built] | None:
    """``service.scoring.score_customers`` (answer, built columns), or None."""
    return _attempt(_score, store, customers, as_of, keep_duplicates)


def _score(
    store: ModelStore, customers: list[CustomerIn], as_of: date, keep_duplicates: bool
) -> tuple[dict[str, Any], Built]:
    loaded, built = _prepare(store, customers, as_of, keep_duplicates)
    n = len(customers)
    frame = _view(loaded, built, n, interval=True)
    _track_drift(loaded, built, n)
    book = pb.load_playbook(store.settings.playbook)
    segment_model = loaded["segmentation"].estimator
    clv_model = loaded["clv"].estimator
    churn_horizon = int(float(loaded["churn"].params.get("churn_horizon_days", 90)))
    segments = fv.describe_segments(segment_model, frame, n, book)
    value_index = fv.value_indices(frame, n)
    actions = fv.recommended_actions(frame, range(n), book)
    notes = fv.label_notes(frame, n)
    clv_blocks = _clv_blocks(frame, n, clv_model)
    value_blocks = _value_blocks(frame, n)
    p_churn = np.asarray(frame["churn_probability"], dtype=float).tolist()
    bands = np.asarray(frame["risk_band"]).tolist()
    at_risk = np.asarray(frame["value_at_risk"], dtype=float).tolist()
    out = [
        {
            "customer_id": customer.customer_id,
            "segments": segments[i],
            "ahp_value_index": value_index[i],
            "churn": {
                "probability": p_churn[i],
                "risk_band": str(bands[i]),
                "horizon_days": churn_horizon,
            },
            "clv": clv_blocks[i],
            "value": value_blocks[i],
            "value_at_risk": at_risk[i],
            "recommended_action": actions[i],
            "notes": notes[i],
        }
        for i, customer in enumerate(customers)
    ]
    answer = {"model_versions": scoring_versions(loaded), "customers": out}
    return answer, built


def churn_customers(
    store: ModelStore, customers: list[CustomerIn], as_of: date, keep_duplicates: bool
) -> tuple[dict[str, Any], Built] | None:
    """``service.scoring.churn_customers`` (answer, built columns), or None."""
    return _attempt(_churn, store, customers, as_of, keep_duplicates)


def _churn(
    store: ModelStore, customers: list[CustomerIn], as_of: date, keep_duplicates: bool
) -> tuple[dict[str, Any], Built]:
    loaded, built = _prepare(store, customers, as_of, keep_duplicates)
    n = len(customers)
    churn = loaded["churn"]
    model = churn.estimator
    inputs = fv.churn_inputs(model, built.features, n)
    encoded = model.encoder_.transform_columns(inputs, n)
    probability, churn_type, reasons = fv.reason_rows(model, inputs, encoded, _TYPES)
    probability = np.asarray(probability, dtype=float)
    if not np.isfinite(probability).all() or any(
        not np.isfinite(r["contribution"]) for rows in reasons for r in rows
    ):
        raise fv.Unsupported("a churn score that is not a finite number")
    alerts = fv.alerts(built.features, n)
    _track_drift(loaded, built, n)
    horizon = int(float(churn.params.get("churn_horizon_days", 90)))
    bands = band_of(model, probability).tolist()
    p = probability.tolist()
    rows = [
        {
            "customer_id": customer.customer_id,
            "probability": p[i],
            "risk_band": str(bands[i]),
            "horizon_days": horizon,
            "churn_type": churn_type[i],
            "reasons": [
                {**r, "value": str(r["value"]), "contribution": float(r["contribution"])}
                for r in reasons[i]
            ],
            "alerts": alerts[i],
        }
        for i, customer in enumerate(customers)
    ]
    return {"model_version": churn.version, "customers": rows}, built


def segment_customers(
    store: ModelStore, customers: list[CustomerIn], as_of: date, keep_duplicates: bool
) -> tuple[dict[str, Any], Built] | None:
    """``service.scoring.segment_customers`` (answer, built columns), or None."""
    return _attempt(_segment, store, customers, as_of, keep_duplicates)


def _segment(
    store: ModelStore, customers: list[CustomerIn], as_of: date, keep_duplicates: bool
) -> tuple[dict[str, Any], Built]:
    loaded, built = _prepare(store, customers, as_of, keep_duplicates)
    n = len(customers)
    frame = _segments(loaded, built, n)
    book = pb.load_playbook(store.settings.playbook)
    segments = fv.describe_segments(loaded["segmentation"].estimator, frame, n, book)
    value_index = fv.value_indices(frame, n)
    rows = [
        {"customer_id": c.customer_id, "segments": segments[i], "ahp_value_index": value_index[i]}
        for i, c in enumerate(customers)
    ]
    return {"model_version": loaded["segmentation"].version, "customers": rows}, built


def audience_customers(
    store: ModelStore,
    customers: list[CustomerIn],
    as_of: date,
    scheme: str,
    label: str,
    keep_duplicates: bool,
    loaded: dict[str, LoadedModel],
) -> tuple[dict[str, Any], Built] | None:
    """``service.scoring.audience_customers`` after its label check (answer, built
    columns), or None."""
    return _attempt(_audience, store, customers, as_of, scheme, label, keep_duplicates, loaded)


def _audience(
    store: ModelStore,
    customers: list[CustomerIn],
    as_of: date,
    scheme: str,
    label: str,
    keep_duplicates: bool,
    loaded: dict[str, LoadedModel],
) -> tuple[dict[str, Any], Built]:
    loaded, built = _prepare(store, customers, as_of, keep_duplicates, loaded)
    n = len(customers)
    frame = _view(loaded, built, n)
    _track_drift(loaded, built, n)
    column = np.asarray(frame[AUDIENCE_COLUMNS[scheme]])
    matches = np.flatnonzero(np.array([str(v) == str(label) for v in column.tolist()], bool))
    clv = np.asarray(frame["clv"], dtype=float)
    chosen = matches[np.argsort(-clv[matches], kind="stable")].tolist()
    actions = fv.recommended_actions(frame, chosen, pb.load_playbook(store.settings.playbook))
    p_churn = np.asarray(frame["churn_probability"], dtype=float)
    at_risk = np.asarray(frame["value_at_risk"], dtype=float)
    members = [
        {
            "customer_id": customers[row].customer_id,
            "clv": float(clv[row]),
            "churn_probability": float(p_churn[row]),
            "value_at_risk": float(at_risk[row]),
            "recommended_action": action,
        }
        for row, action in zip(chosen, actions, strict=True)
    ]
    answer = {
        "model_versions": scoring_versions(loaded),
        "scored": n,
        "count": len(members),
        "customers": members,
    }
    return answer, built
