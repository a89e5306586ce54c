"""Golden test of the customer view's column-wise fast path against the pandas path.

1,000 random customers (purchases with costs, channels, time zones, same-day purchases and
exact repeats; summaries with and without their optional fields; attributes seen in
training, unseen categories, missing values, complaints and dates) are scored by both paths
on every customer-view route, as one batch and one customer at a time. Every label, text,
integer and flag must be equal; every number equal or within 1e-12 relative.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import numpy as np
import orjson
import pytest

from service import fast_request, fast_scoring
from service.config import Settings
from service.model_store import ModelStore
from service.schemas import AudienceRequest, ScoreRequest
from service.scoring import (
    RequestNotes,
    audience_customers,
    churn_customers,
    score_customers,
    segment_customers,
)

AS_OF = "2025-12-31"
RELATIVE = 1e-12


@pytest.fixture(scope="module")
def store(trained_store):
    store = ModelStore(Settings(mlflow_tracking_uri=trained_store["uri"], reload_interval=0))
    store.start_loading()
    assert store.wait(120), store.error
    yield store
    store.stop()


def _timestamp(rng: np.random.Generator, day: int) -> str:
    stamp = f"{np.datetime64('2024-01-01') + day}T{int(rng.integers(0, 24)):02d}:" + (
        f"{int(rng.integers(0, 60)):02d}:{int(rng.integers(0, 60)):02d}"
    )
    zone = rng.choice(["", "", "Z", "+02:00", "-05:30"])
    return stamp + str(zone)


def _transactions(rng: np.random.Generator) -> list[dict[str, Any]]:
    n = int(rng.choice([1, 2, 3, 5, 10, 20]))
    days = rng.integers(0, 760, n)  # some after as_of (2025-12-31): ignored
    days[0] = min(days[0], 700)  # at least one purchase by as_of
    if rng.random() < 0.5:
        days = np.sort(days)  # in time order (pandas sums these by reduceat), or not
    channels = ["store", "online", "phone", "kiosk"]
    out = []
    for day in days:
        item: dict[str, Any] = {
            "timestamp": _timestamp(rng, int(day)),
            "amount": float(np.round(rng.lognormal(3.5, 1.0), int(rng.integers(0, 3)))),
        }
        if rng.random() < 0.6:
            item["cost"] = float(np.round(item["amount"] * rng.uniform(0.2, 1.1), 2))
        if rng.random() < 0.8:
            item["channel"] = str(rng.choice(channels))
        out.append(item)
        if rng.random() < 0.1:  # the same day again, or an exact repeat
            again = dict(item) if rng.random() < 0.5 else {**item, "amount": item["amount"] + 1}
            out.append(again)
    return out


def _summary(rng: np.random.Generator) -> dict[str, Any]:
    frequency = int(rng.integers(0, 15))
    T = float(rng.integers(1, 800))
    recency = 0.0 if frequency == 0 else float(np.round(rng.uniform(0, T), 1))
    out: dict[str, Any] = {
        "frequency": frequency,
        "recency": recency,
        "T": T,
        "monetary_value": 0.0 if frequency == 0 else float(np.round(rng.uniform(5, 300), 2)),
    }
    for key, draw in (
        ("total_revenue", lambda: float(np.round(rng.uniform(10, 3000), 2))),
        ("margin_rate", lambda: float(np.round(rng.uniform(-0.2, 0.8), 3))),
        ("n_channels", lambda: int(rng.integers(0, 4))),
        ("activity_trend", lambda: float(np.round(rng.uniform(-1, 1), 3))),
        ("spend_trend", lambda: float(np.round(rng.uniform(-1, 1), 3))),
    ):
        if rng.random() < 0.5:
            out[key] = draw()
    if "total_revenue" in out and frequency % 3 == 0:  # (no draw: the stream stays as it was)
        out["revenue_12m"] = float(np.round(out["total_revenue"] * frequency / 15, 2))
    return out


def _attributes(rng: np.random.Generator) -> dict[str, Any] | None:
    if rng.random() < 0.15:
        return None
    out: dict[str, Any] = {}
    pick = rng.random
    if pick() < 0.8:  # seen regions, an unseen one, an explicit null
        out["region"] = rng.choice(["north", "south", "east", "west", "atlantis", None])
    if pick() < 0.8:
        out["age"] = int(rng.integers(18, 90)) if pick() < 0.7 else None
    if pick() < 0.5:
        out["acquisition_channel"] = str(rng.choice(["online", "store", "referral", "tv"]))
    if pick() < 0.4:
        out["complaints"] = int(rng.integers(0, 4))
        if pick() < 0.7:
            out["complaint_resolved"] = int(rng.integers(0, 2))
        if pick() < 0.5:
            out["resolution_days"] = float(rng.integers(1, 30))
        if pick() < 0.3:
            out["complaint_date"] = str(np.datetime64("2025-06-01") + int(rng.integers(0, 400)))
        if pick() < 0.3:
            out["resolution_date"] = str(np.datetime64("2025-06-01") + int(rng.integers(0, 400)))
    if pick() < 0.5:
        out["signup_date"] = str(np.datetime64("2020-01-01") + int(rng.integers(0, 2400)))
    if pick() < 0.2:
        out["loyalty_points"] = float(np.round(rng.uniform(0, 500), 1))
    return {k: (None if v is None else v) for k, v in out.items()}


def random_customers(n: int, seed: int = 18) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    customers = []
    for i in range(n):
        customer: dict[str, Any] = {"customer_id": f"G{int(rng.integers(0, 10**6)):06d}-{i}"}
        if rng.random() < 0.75:
            customer["transactions"] = _transactions(rng)
        else:
            customer["summary"] = _summary(rng)
        attributes = _attributes(rng)
        if attributes is not None:
            customer["attributes"] = attributes
        customers.append(customer)
    return customers


def _compare(fast: Any, reference: Any, where: str, counts: dict[str, int]) -> None:
    """Equal structures; floats equal or within :data:`RELATIVE`."""
    if isinstance(reference, dict):
        assert isinstance(fast, dict) and list(fast) == list(reference), where
        for key in reference:
            _compare(fast[key], reference[key], f"{where}.{key}", counts)
    elif isinstance(reference, list):
        assert isinstance(fast, list) and len(fast) == len(reference), where
        for i, (a, b) in enumerate(zip(fast, reference, strict=True)):
            _compare(a, b, f"{where}[{i}]", counts)
    elif isinstance(reference, float) and not isinstance(reference, bool):
        assert isinstance(fast, float), where
        if fast == reference or (math.isnan(fast) and math.isnan(reference)):
            counts["exact"] += 1
        else:
            assert abs(fast - reference) <= RELATIVE * abs(reference), (where, fast, reference)
            counts["close"] += 1
    else:
        assert type(fast) is type(reference) and fast == reference, (where, fast, reference)


def _both(work: Any, store: ModelStore, body: Any, *args: Any) -> tuple[Any, Any]:
    answers = []
    for fast in (True, False):
        notes = RequestNotes(keep_duplicates=body.keep_duplicates, fast=fast)
        answer = work(store, body.customers, body.as_of, *args, notes)
        answers.append({**answer, "warnings": notes.warnings})
    return answers[0], answers[1]


@pytest.fixture(scope="module")
def batch() -> ScoreRequest:
    return ScoreRequest.model_validate({"as_of": AS_OF, "customers": random_customers(1000)})


@pytest.mark.parametrize("work", [score_customers, churn_customers, segment_customers])
def test_fast_path_gives_the_pandas_answers_on_1000_random_customers(store, batch, work):
    # the fast path takes the whole batch (it falls back to pandas only when it must)
    finder = getattr(fast_scoring, work.__name__)
    assert finder(store, batch.customers, batch.as_of, False) is not None
    fast, reference = _both(work, store, batch)
    counts = {"exact": 0, "close": 0}
    _compare(fast, reference, work.__name__, counts)
    assert len(reference["customers"]) == 1000
    assert any("were dropped" in w for w in reference["warnings"])  # repeats were sent
    assert counts["exact"] > 0 or work is segment_customers  # segments: labels only


def test_fast_path_one_customer_at_a_time(store):
    counts = {"exact": 0, "close": 0}
    for customer in random_customers(60, seed=3):
        body = ScoreRequest.model_validate({"as_of": AS_OF, "customers": [customer]})
        for work in (score_customers, churn_customers, segment_customers):
            fast, reference = _both(work, store, body)
            _compare(fast, reference, f"{customer['customer_id']} {work.__name__}", counts)
    assert counts["exact"] > 600  # 60 customers, 14 numbers each


@pytest.mark.parametrize(
    ("scheme", "label"),
    [
        ("churn_risk", "high"),
        ("rfm", "champions"),
        ("behaviour", "0"),
        ("nine_grid_strategy", "planned_exit"),
    ],
)
def test_fast_path_audiences(store, scheme, label):
    body = AudienceRequest.model_validate(
        {
            "as_of": AS_OF,
            "customers": random_customers(300, seed=5),
            "scheme": scheme,
            "label": label,
        }
    )
    fast, reference = _both(audience_customers, store, body, scheme, label)
    counts = {"exact": 0, "close": 0}
    _compare(fast, reference, f"audience {scheme}={label}", counts)
    assert reference["count"] == len(reference["customers"])


def test_keep_duplicates_and_the_summary_customers(store):
    customers = random_customers(200, seed=9)
    body = ScoreRequest.model_validate(
        {"as_of": AS_OF, "keep_duplicates": True, "customers": customers}
    )
    fast, reference = _both(score_customers, store, body)
    _compare(fast, reference, "keep_duplicates", {"exact": 0, "close": 0})
    assert any("were kept as asked" in w for w in reference["warnings"])


def test_requests_the_fast_path_leaves_to_pandas(store):
    customers = random_customers(5, seed=11)
    repeated = ScoreRequest.model_validate(
        {
            "as_of": AS_OF,
            "customers": [
                customers[0],
                {**customers[1], "customer_id": customers[0]["customer_id"]},
            ],
        }
    )
    assert fast_scoring.score_customers(store, repeated.customers, repeated.as_of, False) is None
    late = ScoreRequest.model_validate(
        {
            "as_of": AS_OF,
            "customers": [
                {"customer_id": "L1", "transactions": [{"timestamp": "2026-03-01", "amount": 5.0}]}
            ],
        }
    )
    assert fast_scoring.score_customers(store, late.customers, late.as_of, False) is None
    text = ScoreRequest.model_validate(
        {
            "as_of": AS_OF,
            "customers": [{**customers[2], "attributes": {"complaints": "two"}}],
        }
    )
    assert fast_scoring.churn_customers(store, text.customers, date(2025, 12, 31), False) is None


# --- the orjson reader (service/fast_request.py) against pydantic -----------------------------
def _plain_times(customers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The customers with every timestamp as YYYY-MM-DDTHH:MM:SS (the reader's vector form)."""
    return [
        {
            **c,
            "transactions": [{**t, "timestamp": t["timestamp"][:19]} for t in c["transactions"]],
        }
        if "transactions" in c
        else c
        for c in customers
    ]


@pytest.mark.parametrize("times", ["as drawn", "plain"])
def test_the_orjson_reader_reads_what_pydantic_reads_on_1000_random_customers(times):
    customers = random_customers(1000)
    if times == "plain":
        customers = _plain_times(customers)
    raw = orjson.dumps({"as_of": AS_OF, "keep_duplicates": True, "customers": customers})
    fast = fast_request.parse(raw, "application/json")
    reference = ScoreRequest.model_validate_json(raw)
    assert fast is not None
    assert (fast.as_of, fast.keep_duplicates) == (reference.as_of, reference.keep_duplicates)
    assert len(fast.customers) == len(reference.customers) == 1000
    for a, b in zip(fast.customers, reference.customers, strict=True):
        assert a.customer_id == b.customer_id
        assert a.attributes == b.attributes
        assert a.summary == b.summary
        assert (a.transactions is None) == (b.transactions is None)
    ours, theirs = fast.customers.purchases, fast_scoring._purchases(reference.customers)
    assert ours is not None
    for name in ("customer", "ns", "amount", "cost", "channel", "customer_rank"):
        a, b = getattr(ours, name), getattr(theirs, name)
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), name
    assert (ours.channels, ours.n, ours.has_channel) == (
        theirs.channels,
        theirs.n,
        theirs.has_channel,
    )
    assert len(ours) > 5000


def test_the_orjson_reader_gives_the_same_answers(store):
    customers = random_customers(300, seed=7)
    raw = orjson.dumps({"as_of": AS_OF, "customers": customers})
    fast = fast_request.parse(raw, "application/json")
    reference = ScoreRequest.model_validate_json(raw)
    assert fast is not None
    for work in (score_customers, churn_customers, segment_customers):
        answers = []
        for body, notes in (
            (fast, RequestNotes(fast_only=True)),
            (reference, RequestNotes(fast=False)),
        ):
            answer = work(store, body.customers, reference.as_of, notes)
            answers.append({**answer, "warnings": notes.warnings})
        _compare(answers[0], answers[1], work.__name__, {"exact": 0, "close": 0})


@pytest.mark.parametrize(
    "change",
    [
        {"amount": "12.5"},  # text, not a number
        {"amount": True},
        {"amount": -1.0},
        {"cost": False},
        {"channel": 3},
        {"channel": "x" * 201},
        {"timestamp": 1735689600},  # a number is not a time
        {"timestamp": "2025-02-30T10:00:00"},  # no such day
        {"timestamp": "1850-01-01T10:00:00"},  # before the supported years
        {"timestamp": "2025-01-15 10:00:00"},  # another ISO 8601 form: pydantic reads it
        {"coupon": "X1"},  # an unknown field
    ],
)
def test_the_orjson_reader_leaves_unusual_bodies_to_pydantic(change):
    customer = _plain_times(random_customers(3, seed=2))
    customer[0] = {"customer_id": "U1", "transactions": [{"timestamp": "2025-01-15T10:00:00"}]}
    customer[0]["transactions"][0].update({"amount": 10.0, **change})
    raw = orjson.dumps({"as_of": AS_OF, "customers": customer})
    assert fast_request.parse(raw, "application/json") is None
    good = {**customer[0], "transactions": [{"timestamp": "2025-01-15T10:00:00", "amount": 1}]}
    assert fast_request.parse(orjson.dumps({"customers": [good]}), "application/json")


@pytest.mark.parametrize(
    "body",
    [
        {"customers": []},
        {"as_of": "2025-12-31T00:00:00", "customers": [{"customer_id": "A"}]},
        {"customers": [{"customer_id": "", "summary": {}}]},
        {"customers": [{"customer_id": "A", "transactions": [], "summary": None}]},
        {"customers": [{"customer_id": "A", "summary": {"frequency": 1}}]},
        {"keep_duplicates": 1, "customers": [{"customer_id": "A", "summary": {}}]},
        {"customers": [{"customer_id": "A", "summary": {}, "attributes": {"a": [1]}}]},
        {"limit": 3, "customers": [{"customer_id": "A", "summary": {}}]},
    ],
)
def test_the_orjson_reader_leaves_invalid_requests_to_pydantic(body):
    assert fast_request.parse(orjson.dumps(body), "application/json") is None
    assert fast_request.parse(b'{"customers": [', "application/json") is None
