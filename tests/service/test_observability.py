"""Request ids, Prometheus metrics and structured JSON logs."""

from __future__ import annotations

import io
import json
import logging
import re

from service import observability
from tests.conftest import CLV_ROW

INVOCATIONS = "/v1/models/{name}/invocations"


def sample(text: str, metric: str, /, **labels: str) -> float:
    """The value of one sample in an exposition text (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(metric + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.rsplit(" ", 1)[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# --- request ids ------------------------------------------------------------------------------
def test_request_id_is_echoed_or_made(client):
    echoed = client.get("/health/live", headers={"X-Request-ID": "abc-123.x:y"})
    assert echoed.headers["x-request-id"] == "abc-123.x:y"
    made = client.get("/health/live")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert client.get("/health/live").headers["x-request-id"] != made.headers["x-request-id"]
    for unsafe in ("a" * 129, "has space", "new\\nline", "<script>"):
        replaced = client.get("/health/live", headers={"X-Request-ID": unsafe})
        assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"]), unsafe
    # on error responses too
    missing = client.get("/nowhere", headers={"X-Request-ID": "r-404"})
    assert missing.status_code == 404 and missing.headers["x-request-id"] == "r-404"


# --- metrics ----------------------------------------------------------------------------------
def test_requests_latency_rows_and_errors_are_counted(client):
    before = client.get("/metrics").text
    labels = {"method": "POST", "route": INVOCATIONS, "model": "cvm-clv", "version": "1"}
    ok = client.post("/v1/models/cvm-clv/invocations", json={"dataframe_records": [CLV_ROW] * 3})
    assert ok.status_code == 200, ok.text
    bad = client.post("/v1/models/cvm-clv/invocations", json={"dataframe_records": [{"x": 1}]})
    assert bad.status_code == 422
    client.get("/no/such/route/12345")
    after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text

    def delta(name: str, **want: str) -> float:
        return sample(text, name, **want) - sample(before, name, **want)

    assert delta("cvm_http_requests_total", status="200", **labels) == 1
    assert delta("cvm_http_requests_total", status="422", **labels) == 1
    assert delta("cvm_http_request_duration_seconds_count", **labels) == 2
    assert delta("cvm_http_request_duration_seconds_bucket", le="+Inf", **labels) == 2
    assert delta("cvm_rows_scored_total", model="cvm-clv", version="1") == 3
    assert delta("cvm_http_errors_total", status="422", code="validation_error") == 1
    assert delta("cvm_http_errors_total", status="404", code="not_found") == 1
    # unmatched paths share one label: a scanner cannot blow up the series count
    assert delta("cvm_http_requests_total", route="<unmatched>", status="404") == 1
    assert "/no/such/route/12345" not in text


def test_whole_view_routes_carry_the_served_versions(client):
    body = {
        "customers": [
            {
                "customer_id": "a",
                "summary": {"frequency": 1, "recency": 5, "T": 9, "monetary_value": 3},
            }
        ]
    }
    assert client.post("/v1/customers/score", json=body).status_code == 200
    text = client.get("/metrics").text
    count = sample(
        text,
        "cvm_http_requests_total",
        route="/v1/customers/score",
        status="200",
        model="customer-view",
        version="churn:1,clv:1,segmentation:1",
    )
    assert count >= 1


def test_served_models_and_load_events_are_exported(client):
    text = client.get("/metrics").text
    for family in ("segmentation", "churn", "clv"):
        assert sample(text, "cvm_model_info", family=family, name=f"cvm-{family}", version="1") == 1
        assert sample(text, "cvm_model_loaded_timestamp_seconds", family=family) > 1.7e9
        assert sample(text, "cvm_model_loads_total", family=family, outcome="ok") >= 1
    assert "cvm_models_ready 1.0" in text
    assert "process_resident_memory_bytes" in text
    before = sample(text, "cvm_model_loads_total", family="churn", version="99", outcome="error")
    observability.record_model_load("churn", "99", False, seconds=0.5)
    text = client.get("/metrics").text
    after = sample(text, "cvm_model_loads_total", family="churn", version="99", outcome="error")
    assert after == before + 1
    assert sample(text, "cvm_model_load_duration_seconds_count", family="churn") >= 1


# --- logs -------------------------------------------------------------------------------------
def test_access_log_lines_are_json_with_the_request_id(client, caplog):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(observability.JsonFormatter())
    access = logging.getLogger("cvm.access")
    access.addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="cvm.access"):
            client.post(
                "/v1/models/cvm-clv/invocations",
                json={"dataframe_records": [CLV_ROW]},
                headers={"X-Request-ID": "log-me-1"},
            )
    finally:
        access.removeHandler(handler)
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    (line,) = [x for x in lines if x.get("request_id") == "log-me-1"]
    assert line["level"] == "INFO" and line["logger"] == "cvm.access"
    assert line["route"] == INVOCATIONS and line["path"] == "/v1/models/cvm-clv/invocations"
    assert line["status"] == 200 and line["duration_ms"] > 0
    assert line["model"] == "cvm-clv" and line["model_version"] == "1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["ts"])


def test_json_formatter_carries_context_and_exceptions():
    formatter = observability.JsonFormatter()
    token = observability.request_id_var.set("ctx-7")
    try:
        try:
            raise ValueError("bad thing")
        except ValueError:
            record = logging.getLogger("cvm.test").makeRecord(
                "cvm.test",
                logging.ERROR,
                __file__,
                1,
                "failed %s",
                ("x",),
                exc_info=True,
                extra={"rows": 3},
            )
            import sys

            record.exc_info = sys.exc_info()
        out = json.loads(formatter.format(record))
    finally:
        observability.request_id_var.reset(token)
    assert out["message"] == "failed x" and out["request_id"] == "ctx-7" and out["rows"] == 3
    assert out["exc_type"] == "ValueError" and "bad thing" in out["exc"]


def test_configure_logging_is_idempotent():
    root = logging.getLogger()
    level = root.level
    try:
        observability.configure_logging("json", "WARNING")
        observability.configure_logging("text", "INFO")
        ours = [h for h in root.handlers if getattr(h, "_cvm", False)]
        assert len(ours) == 1 and isinstance(ours[0].formatter, observability.TextFormatter)
        assert logging.getLogger("uvicorn.access").disabled
    finally:
        for handler in [h for h in root.handlers if getattr(h, "_cvm", False)]:
            root.removeHandler(handler)
        root.setLevel(level)
