"""Scoring under load: a cap on concurrent scoring (503 busy when it stays full), health routes
that never wait behind scoring, request memory in proportion to the body, and memory handed
back after large requests (issue: hardening)."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import tracemalloc

import anyio
import orjson
import pytest
from fastapi.testclient import TestClient

from service import concurrency, request_body, scoring
from service.app import create_app
from service.concurrency import ScoringSlots
from service.config import Settings
from service.routers import customers
from service.schemas import ScoreRequest

SUMMARY = {"frequency": 3, "recency": 100, "T": 200, "monetary_value": 40.0}
ONE = {"customers": [{"customer_id": "a", "summary": SUMMARY}]}
# Over INLINE_BODY_BYTES: scored in a worker thread, with a scoring slot (a smaller body the
# fast path answers is scored on the event loop at once, in about 1 ms, and takes no slot)
LARGE = {"customers": [{"customer_id": f"c{i}", "summary": SUMMARY} for i in range(150)]}


def _in_thread(fn):
    """Run ``fn`` in a thread; returns (thread, box) where box[0] is its result."""
    box: list = []
    thread = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    thread.start()
    return thread, box


def test_a_full_scoring_cap_answers_503_busy_and_health_never_waits(trained_store, monkeypatch):
    """Two large requests hold both scoring slots and every worker thread the server has: a
    third waits CVM_QUEUE_TIMEOUT, then gets 503 with Retry-After; the health routes answer at
    once (they used to need a worker thread, and scoring had no cap)."""
    assert len(orjson.dumps(LARGE)) > customers.INLINE_BODY_BYTES
    release = threading.Event()
    entered = threading.Semaphore(0)
    score = scoring.score_customers

    def blocked(*args):
        entered.release()
        release.wait(30)
        return score(*args)

    monkeypatch.setattr("service.routers.customers.score_customers", blocked)
    settings = Settings(
        mlflow_tracking_uri=trained_store["uri"],
        reload_interval=0,
        max_concurrent=2,
        queue_timeout=0.5,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        assert app.state.store.wait(120)

        async def two_worker_threads() -> None:
            anyio.to_thread.current_default_thread_limiter().total_tokens = 2

        client.portal.call(two_worker_threads)
        held = [_in_thread(lambda: client.post("/v1/customers/score", json=LARGE)) for _ in "ab"]
        assert entered.acquire(timeout=30) and entered.acquire(timeout=30)
        try:
            for path in ("/health/live", "/health/ready"):
                started = time.monotonic()
                thread, box = _in_thread(lambda path=path: client.get(path))
                thread.join(5)
                assert box and box[0].status_code == 200, f"{path} waited behind scoring"
                assert time.monotonic() - started < 1.0
            started = time.monotonic()
            busy = client.post("/v1/customers/score", json=LARGE)
            waited = time.monotonic() - started
        finally:
            release.set()
        for thread, _ in held:
            thread.join(30)
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "2"
    assert busy.json() == {
        "error": {
            "code": "busy",
            "message": "the service is busy scoring other requests (all 2 scoring slots "
            "stayed taken); retry in a moment",
            "details": [],
        }
    }
    assert 0.4 < waited < 3, waited
    assert [box[0].status_code for _, box in held] == [200, 200]


def test_small_churn_invocations_never_wait_for_a_slot_and_others_take_one(
    client, trained_store, monkeypatch
):
    """Up to 8 KiB, churn rows (a fast path: under 1 ms) are scored on the event loop at once,
    even with every slot taken; other models' rows (5 ms for one segmentation row) and larger
    bodies go to a scoring thread, off the event loop."""
    import mlflow

    uri = mlflow.MlflowClient(trained_store["uri"]).get_model_version_download_uri("cvm-churn", "1")
    example = mlflow.pyfunc.load_model(uri).input_example.reset_index(drop=True)
    row = [None if v != v else v for v in example.astype(object).iloc[0]]
    asked: list[bool] = []
    slots = client.app.state.slots
    acquire = slots.acquire

    async def counting(wait: bool = True) -> None:
        asked.append(wait)
        await acquire(wait)

    monkeypatch.setattr(slots, "acquire", counting)

    def post(name: str, body: dict) -> int:
        return client.post(f"/v1/models/{name}/invocations", json=body).status_code

    split = {"columns": list(example.columns), "data": [row]}
    assert post("cvm-churn", {"dataframe_split": split}) == 200
    assert asked == []
    assert post("cvm-churn", {"dataframe_split": {**split, "data": [row] * 100}}) == 200
    assert asked == [True]
    clv = {
        "frequency": 2.0,
        "recency": 30.0,
        "T": 90.0,
        "monetary_value": 20.0,
        "margin_rate": 0.3,
        "tenure_days": 90.0,
        "total_revenue": 60.0,
    }
    assert post("cvm-clv", {"dataframe_records": [clv]}) == 200
    assert asked == [True, True]


def test_small_customer_view_requests_on_the_fast_path_never_wait_for_a_slot(client, monkeypatch):
    """Up to 8 KiB, a request the fast path answers (about 1 ms for a customer) is scored on
    the event loop at once; larger bodies, and small ones the fast path leaves to pydantic or
    pandas, go to a scoring thread once a slot is free."""
    asked: list[bool] = []
    slots = client.app.state.slots
    acquire = slots.acquire

    async def counting(wait: bool = True) -> None:
        asked.append(wait)
        await acquire(wait)

    monkeypatch.setattr(slots, "acquire", counting)
    tx = {"customer_id": "t", "transactions": [{"timestamp": "2025-03-01T10:00:00", "amount": 9}]}
    for path in ("/v1/customers/score", "/v1/churn", "/v1/segments"):
        assert client.post(path, json={"as_of": "2025-12-31", "customers": [tx]}).status_code == 200
    assert client.post("/v1/customers/score", json=ONE).status_code == 200
    assert asked == []
    assert client.post("/v1/customers/score", json=LARGE).status_code == 200
    assert asked == [True]
    other_form = {**tx, "transactions": [{"timestamp": "2025-03-01 10:00:00", "amount": 9}]}
    assert client.post("/v1/churn", json={"customers": [other_form]}).status_code == 200
    assert asked == [True, True]
    repeated = {"customers": [ONE["customers"][0], ONE["customers"][0]]}
    assert client.post("/v1/segments", json=repeated).status_code == 422
    assert asked == [True, True, True]


def _transactions_body(customers: int, per: int) -> bytes:
    tx = [
        {"timestamp": f"2025-0{1 + k % 9}-1{k % 10}T10:00:00", "amount": 10.0 + k}
        for k in range(per)
    ]
    return orjson.dumps(
        {
            "as_of": "2025-12-31",
            "customers": [{"customer_id": f"c{i}", "transactions": tx} for i in range(customers)],
        }
    )


def test_a_parsed_request_holds_memory_in_proportion_to_its_body():
    """A purchase used to be a pydantic model of about 700 bytes (with its __dict__ and
    fields-set), read from a Python copy of the whole JSON: about 11 times the body.
    Now the JSON is read directly into slotted records: under 4 times."""
    raw = _transactions_body(200, 100)  # 20,000 purchases, about 1.1 MB
    gc.collect()
    tracemalloc.start()
    try:
        parsed = request_body.parse(ScoreRequest, raw, "application/json")
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(len(c.transactions) for c in parsed.customers) == 20_000
    assert held < 4 * len(raw), f"{held / len(raw):.1f} times the body held"
    assert peak < 5 * len(raw), f"{peak / len(raw):.1f} times the body at the peak"


def test_parse_errors_name_the_field_as_fastapi_did():
    def details(raw: bytes, content_type: str | None = "application/json") -> list:
        with pytest.raises(Exception) as caught:
            request_body.parse(ScoreRequest, raw, content_type)
        return [(e["loc"], e["type"]) for e in caught.value.errors()]

    assert details(b"{not json") == [(("body", 1), "json_invalid")]
    assert details(b"") == [(("body",), "missing")]
    assert details(b'{"customers": []}', "text/plain") == [(("body",), "model_attributes_type")]
    assert details(b'{"customers": [{"customer_id": "a"}], "x": 1}') == [
        (("body", "customers", 0), "value_error"),
        (("body", "x"), "extra_forbidden"),
    ]
    bad_tx = b'{"customers": [{"customer_id": "a", "transactions": [{"timestamp": "2025-01-01", "amount": -1, "y": 0}]}]}'
    assert details(bad_tx) == [
        (("body", "customers", 0, "transactions", 0, "amount"), "greater_than_equal"),
        (("body", "customers", 0, "transactions", 0, "y"), "unexpected_keyword_argument"),
    ]


def test_large_requests_pause_the_collector_and_hand_memory_back(monkeypatch):
    released: list[bool] = []
    monkeypatch.setattr(concurrency, "release_memory", lambda: released.append(gc.isenabled()))
    monkeypatch.setattr(concurrency, "RELEASE_DELAY", 0.05)
    seen: list[bool] = []

    async def main() -> None:
        slots = ScoringSlots(2, 1.0)
        large = concurrency.LARGE_BODY_BYTES
        await slots.run(lambda: seen.append(gc.isenabled()), size=100)  # small: no pause
        await asyncio.gather(
            slots.run(lambda: (time.sleep(0.1), seen.append(gc.isenabled())), size=large),
            slots.run(lambda: seen.append(gc.isenabled()), size=large),
        )
        assert gc.isenabled()
        await asyncio.sleep(0.3)

    assert gc.isenabled()
    asyncio.run(main())
    assert seen == [True, False, False]
    assert released == [True]  # once, after the last large request, the collector back on
