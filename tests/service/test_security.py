"""API keys, request limits, CORS and the no-traceback rule."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from service import mlflow_payload, mlflow_scoring, security
from service.app import create_app
from service.config import Settings
from tests.conftest import CLV_ROW

SCORING, OTHER_SCORING, ADMIN = "score-key-1", "score-key-2", "admin-key-1"
SUMMARY = {"frequency": 1, "recency": 5, "T": 9, "monetary_value": 3.0}


def _app(trained_store, **settings):
    return create_app(
        Settings(mlflow_tracking_uri=trained_store["uri"], reload_interval=0, **settings)
    )


@pytest.fixture(scope="module")
def secured(trained_store):
    app = _app(trained_store, api_keys=f"{SCORING}, {OTHER_SCORING}", admin_keys=ADMIN)
    with TestClient(app) as c:
        assert app.state.store.wait(120), app.state.store.error
        yield c


def _error(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


# --- the key ring -----------------------------------------------------------------------------
def test_keys_are_kept_as_digests_and_never_shown():
    ring = security.KeyRing(security.parse_keys(" a-key ,, other "))
    assert len(ring) == 2
    assert ring.matches("a-key") and ring.matches("other")
    assert not ring.matches("a-ke") and not ring.matches("")
    held = repr(vars(ring))
    assert "a-key" not in held and "other" not in held
    assert repr(ring) == "KeyRing(2 keys)"
    settings = Settings(api_keys="s3cret-value", admin_keys="adm1n-value")
    assert "s3cret-value" not in repr(settings) and "adm1n-value" not in str(settings)


@pytest.mark.parametrize(
    ("api", "admin", "key", "scoring", "administer"),
    [
        ("", "", None, "anonymous", "admin"),  # nothing configured: open
        ("s", "a", None, 401, 401),
        ("s", "a", "wrong", 401, 401),
        ("s", "a", "s", "scoring", 403),
        ("s", "a", "a", "admin", "admin"),
        ("s", "", "s", "scoring", 403),  # admin keys not set: admin routes disabled
        ("s", "", None, 401, 403),
        ("", "a", None, "anonymous", 401),  # scoring keys not set: scoring open
        ("", "a", "a", "admin", "admin"),
    ],
)
def test_guard_rules(api, admin, key, scoring, administer):
    guard = security.Guard(
        security.KeyRing(security.parse_keys(api)), security.KeyRing(security.parse_keys(admin))
    )
    for check, want in ((guard.check_scoring, scoring), (guard.check_admin, administer)):
        if isinstance(want, int):
            with pytest.raises(security.AuthError) as caught:
                check(key)
            assert caught.value.status == want
        else:
            assert check(key).role == want


def test_startup_warns_loudly_without_keys(trained_store, caplog):
    app = _app(trained_store, load_on_startup=False)
    with caplog.at_level(logging.WARNING, logger="cvm.security"), TestClient(app):
        pass
    warnings = [r.getMessage() for r in caplog.records if r.name == "cvm.security"]
    assert any("NO API KEYS CONFIGURED" in m for m in warnings)
    caplog.clear()
    app = _app(trained_store, load_on_startup=False, api_keys="k")
    with caplog.at_level(logging.WARNING, logger="cvm.security"), TestClient(app):
        pass
    warnings = [r.getMessage() for r in caplog.records if r.name == "cvm.security"]
    assert warnings == ["CVM_ADMIN_KEYS is not set: admin routes are disabled"]


@pytest.mark.parametrize(
    ("api", "admin", "setting"),
    [(",", "k", "CVM_API_KEYS"), ("k", " , ", "CVM_ADMIN_KEYS"), (" ,, ", None, "CVM_API_KEYS")],
)
def test_a_key_setting_holding_no_key_stops_the_start(trained_store, api, admin, setting):
    with pytest.raises(security.KeySettingError) as caught:
        _app(trained_store, load_on_startup=False, api_keys=api, admin_keys=admin)
    assert str(caught.value) == (
        f"{setting} is set but holds no key (only commas and spaces): list the keys separated "
        f"by commas, or unset {setting}"
    )


def test_an_empty_key_setting_is_unset(trained_store):
    # Docker Compose passes an unset variable as "" (docker-compose.yml): open, as documented
    guard = _app(trained_store, load_on_startup=False, api_keys="", admin_keys="").state.guard
    assert guard.open
    guard = _app(trained_store, load_on_startup=False, api_keys="s", admin_keys="").state.guard
    assert len(guard.scoring) == 1 and len(guard.admin) == 0


# --- over HTTP --------------------------------------------------------------------------------
def test_scoring_routes_need_a_key(secured):
    routes = [
        ("GET", "/v1/models", None),
        ("GET", "/v1/segments", None),
        ("POST", "/v1/customers/score", {"customers": [{"customer_id": "a", "summary": SUMMARY}]}),
        ("POST", "/v1/segments", {"customers": [{"customer_id": "a", "summary": SUMMARY}]}),
        ("POST", "/v1/models/cvm-clv/invocations", {"dataframe_records": [CLV_ROW]}),
    ]
    for method, path, body in routes:
        missing = secured.request(method, path, json=body)
        error = _error(missing, 401)
        assert error["code"] == "unauthorized" and "X-API-Key" in error["message"]
        assert missing.headers["www-authenticate"].startswith("ApiKey")
        wrong = secured.request(method, path, json=body, headers={"X-API-Key": "nope"})
        assert _error(wrong, 401)["message"] == "invalid API key in X-API-Key"
        for key in (SCORING, OTHER_SCORING, ADMIN):
            ok = secured.request(method, path, json=body, headers={"X-API-Key": key})
            assert ok.status_code == 200, (path, ok.text)


def test_admin_routes_need_an_admin_key(secured):
    assert _error(secured.post("/v1/admin/reload"), 401)["code"] == "unauthorized"
    forbidden = secured.post("/v1/admin/reload", headers={"X-API-Key": SCORING})
    assert _error(forbidden, 403)["code"] == "forbidden"
    ok = secured.post("/v1/admin/reload", headers={"X-API-Key": ADMIN})
    assert ok.status_code == 200, ok.text
    for path in ("/v1/admin/promote", "/v1/admin/rollback"):  # alias moves
        body = {"family": "churn"}
        assert _error(secured.post(path, json=body), 401)["code"] == "unauthorized"
        forbidden = secured.post(path, json=body, headers={"X-API-Key": SCORING})
        assert _error(forbidden, 403)["code"] == "forbidden"
        # with the admin key the move is tried: this store has no challenger / no previous
        conflict = secured.post(path, json=body, headers={"X-API-Key": ADMIN})
        assert _error(conflict, 409)["code"] == "registry_conflict"


def test_health_metrics_and_docs_stay_open(secured):
    for path in ("/health/live", "/health/ready", "/metrics", "/openapi.json"):
        assert secured.get(path).status_code == 200, path
    schemes = secured.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["ApiKey"]["description"],
    }


_SCORING, _ADMIN = {"401"}, {"401", "403"}
AUTH_STATUSES = {
    ("POST", "/v1/models/{name}/invocations"): _SCORING,
    ("GET", "/v1/models"): _SCORING,
    ("POST", "/v1/customers/score"): _SCORING,
    ("POST", "/v1/campaigns/plan"): _SCORING,
    ("POST", "/v1/reports/churn"): _SCORING,
    ("GET", "/v1/segments"): _SCORING,
    ("POST", "/v1/segments"): _SCORING,
    ("POST", "/v1/segments/audience"): _SCORING,
    ("POST", "/v1/churn"): _SCORING,
    ("POST", "/v1/admin/reload"): _ADMIN,
    ("POST", "/v1/admin/promote"): _ADMIN,
    ("POST", "/v1/admin/rollback"): _ADMIN,
    ("GET", "/health/live"): set(),
    ("GET", "/health/ready"): set(),
}


def test_openapi_declares_401_and_403_where_a_key_is_needed(secured):
    spec = secured.get("/openapi.json").json()
    assert "/metrics" not in spec["paths"]  # open, and not an API route
    error_schema = {"$ref": "#/components/schemas/ErrorResponse"}
    declared = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            statuses = {s for s in responses if s in ("401", "403")}
            declared[(method.upper(), path)] = statuses
            assert ("security" in operation) == bool(statuses), (method, path)
            for status in statuses:
                assert responses[status]["content"]["application/json"]["schema"] == error_schema
            if "401" in statuses:
                header = responses["401"]["headers"]["WWW-Authenticate"]
                assert header["schema"] == {"type": "string"}
    assert declared == AUTH_STATUSES
    # and what the routes answer is what they declare
    for (method, path), statuses in AUTH_STATUSES.items():
        url = path.replace("{name}", "cvm-churn")
        if statuses:
            assert secured.request(method, url, json={}).status_code == 401, url
        if "403" in statuses:
            scoring = secured.request(method, url, json={}, headers={"X-API-Key": SCORING})
            assert scoring.status_code == 403, url


def test_without_keys_everything_is_open(trained_store):
    with TestClient(_app(trained_store, load_on_startup=False)) as c:
        assert c.get("/v1/models").status_code == 200
        # admin route reachable (the reload itself is the lead's; only auth is checked here)
        assert c.post("/v1/admin/reload").status_code not in (401, 403)


# --- limits -----------------------------------------------------------------------------------
def test_oversized_body_is_413_before_parsing(trained_store, monkeypatch):
    parsed = []
    monkeypatch.setattr(mlflow_payload, "parse_columns", lambda *a: parsed.append(a))
    with TestClient(_app(trained_store, load_on_startup=False, max_body_bytes=1000)) as c:
        big = b'{"inputs": {"x": [' + b"1," * 600 + b"1]}}"
        response = c.post(
            "/v1/models/cvm-clv/invocations",
            content=big,
            headers={"content-type": "application/json", "X-Request-ID": "big-1"},
        )
        error = _error(response, 413)
        assert error["code"] == "payload_too_large" and "1,000 bytes" in error["message"]
        assert response.headers["x-request-id"] == "big-1"
        # a chunked body (no Content-Length) is counted as it arrives
        chunked = c.post(
            "/v1/customers/score",
            content=iter([big[:600], big[600:]]),
            headers={"content-type": "application/json"},
        )
        assert _error(chunked, 413)["code"] == "payload_too_large"
        small = c.post(
            "/v1/customers/score", content=b"{}", headers={"content-type": "application/json"}
        )
        assert small.status_code in (422, 503)  # under the limit: handled as usual
    assert parsed == []


def test_customer_batch_limit_is_422(secured, monkeypatch):
    monkeypatch.setattr(secured.app.state.store.settings, "max_batch", 2)
    customers = [{"customer_id": str(i), "summary": SUMMARY} for i in range(3)]
    response = secured.post(
        "/v1/customers/score", json={"customers": customers}, headers={"X-API-Key": SCORING}
    )
    error = _error(response, 422)
    assert error["details"][0]["path"] == "customers"
    assert "limit is 2" in error["message"]


def test_unexpected_errors_show_no_traceback(secured, monkeypatch, caplog):
    def boom(*args):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(mlflow_scoring, "predict", boom)
    with caplog.at_level(logging.ERROR):
        response = secured.post(
            "/v1/models/cvm-clv/invocations",
            json={"dataframe_records": [CLV_ROW]},
            headers={"X-API-Key": SCORING, "X-Request-ID": "req-500"},
        )
    error = _error(response, 500)
    assert error == {
        "code": "internal_error",
        "message": "internal error; see the service log",
        "details": [],
    }
    assert "Traceback" not in response.text and "secret" not in response.text
    assert response.headers["x-request-id"] == "req-500"
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert logged and logged[0].exc_info is not None  # the traceback goes to the log only


def test_cors_is_off_by_default_and_opt_in(trained_store, secured):
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    response = secured.options("/v1/customers/score", headers=preflight)
    assert "access-control-allow-origin" not in response.headers
    app = _app(trained_store, load_on_startup=False, cors_origins="https://app.example")
    with TestClient(app) as c:
        allowed = c.options("/v1/customers/score", headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        other = c.options(
            "/v1/customers/score", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers
