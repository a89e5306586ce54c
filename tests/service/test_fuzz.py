"""Fuzzing: schemathesis against the OpenAPI schema of every route (no 5xx, the one error
shape on every error), and hypothesis on the request schemas."""

from __future__ import annotations

import math
import os

import orjson
import pandas as pd
import pytest
import schemathesis
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from pydantic import ValidationError
from schemathesis.checks import CHECKS, load_all_checks, not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance

from models.exceptions import InvalidInputError
from service import mlflow_payload as inv
from service.app import create_app
from service.config import Settings
from service.input_schema import InputSchema
from service.schemas import ScoreRequest
from tests.service.store_copies import copy_store

EXAMPLES = int(os.environ.get("CVM_FUZZ_EXAMPLES", "60"))


@pytest.fixture(scope="module")
def api(trained_store):
    app = create_app(
        Settings(mlflow_tracking_uri=trained_store["uri"], reload_interval=0, max_batch=50)
    )
    with TestClient(app):
        assert app.state.store.wait(120), app.state.store.error
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


def one_error_shape(ctx, response, case) -> None:
    """Every answer has a request id; every error the one JSON error shape, no traceback."""
    assert response.headers.get("x-request-id"), "no X-Request-ID"
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message", "details"}, body
        assert "Traceback" not in response.text


def operations(api) -> list:
    found = [result.ok() for result in api.get_all_operations()]
    assert {op.path for op in found} >= {
        "/v1/models/{name}/invocations",
        "/v1/customers/score",
        "/v1/segments",
        "/v1/models",
        "/health/ready",
    }
    return found


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda m: m.value)
def test_no_route_answers_a_server_error(api, mode):
    """Every operation of the OpenAPI document, valid (positive) and invalid (negative) data."""
    failures = []
    for operation in operations(api):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case):
            case.call_and_validate(checks=[not_a_server_error, one_error_shape])

        try:
            check()
        except Unsatisfiable:  # no parameters or body: nothing invalid to send
            assert mode is schemathesis.GenerationMode.NEGATIVE
        except Exception as exc:  # every operation is fuzzed; all failures are reported
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:3000])
    assert not failures, "\n\n".join(failures)


# --- every check of schemathesis on every route, on a store with keys set -------------------
SCORING_KEY = "fuzz-scoring-key"
ADMIN_KEY = "fuzz-admin-key"
ALL_ROUTES = {
    ("POST", "/v1/models/{name}/invocations"),
    ("POST", "/v1/customers/score"),
    ("POST", "/v1/segments"),
    ("GET", "/v1/segments"),
    ("POST", "/v1/segments/audience"),
    ("POST", "/v1/churn"),
    ("POST", "/v1/campaigns/plan"),
    ("POST", "/v1/reports/churn"),
    ("GET", "/v1/models"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("POST", "/v1/admin/reload"),
    ("POST", "/v1/admin/promote"),
    ("POST", "/v1/admin/rollback"),
}
# Refusals of schema-valid data for rules the OpenAPI document cannot state: the customer
# schemas' cross-field rules (recency <= T, ...: pydantic's value_error), the service's checks
# of a request as a whole (duplicate ids, purchases before as_of, labels of the served
# catalogue, sums too large to compute: invalid_input), on /invocations the columns and types
# of the served version's signature (the document takes any column), and on the alias moves
# the registry's state (this store has no @challenger and no previous champion: a 409).
CROSS_FIELD = frozenset({"value_error"})
SIGNATURE = CROSS_FIELD | {
    "extra_forbidden",
    "missing",
    "length",
    "float_type",
    "int_type",
    "string_type",
    "bool_type",
    "finite_number",
    "csv_invalid",
}
REGISTRY_STATE = frozenset({"registry_conflict", "gate_refused"})


def _a_rule_the_schema_cannot_state(response, case) -> bool:
    if response.status_code == 409 and case.path.startswith("/v1/admin/"):
        return response.json()["error"]["code"] in REGISTRY_STATE
    if response.status_code != 422:
        return False
    error = response.json()["error"]
    if error["code"] == "invalid_input":
        return True
    allowed = SIGNATURE if case.path.endswith("/invocations") else CROSS_FIELD
    return error["code"] == "validation_error" and {d["type"] for d in error["details"]} <= allowed


def accepts_positive_data(ctx, response, case):
    """schemathesis' positive_data_acceptance, but for the rules the document cannot state."""
    if _a_rule_the_schema_cannot_state(response, case):
        return None
    return positive_data_acceptance(ctx, response, case)


def every_check() -> list:
    """Every check schemathesis has (the stateful ones have nothing to follow here and pass),
    positive_data_acceptance as :func:`accepts_positive_data`."""
    load_all_checks()
    names = CHECKS.get_all_names()
    assert {"status_code_conformance", "response_schema_conformance"} <= set(names)
    checks = [CHECKS.get_one(n) for n in names if n != "positive_data_acceptance"]
    return [*checks, accepts_positive_data, one_error_shape]


@pytest.fixture(scope="module")
def api_with_keys(trained_store, tmp_path_factory):
    # a copy of the store: the admin routes may move aliases
    uri = copy_store(trained_store["uri"], tmp_path_factory.mktemp("fuzz-store"))
    app = create_app(
        Settings(
            mlflow_tracking_uri=uri,
            reload_interval=0,
            max_batch=50,
            api_keys=SCORING_KEY,
            admin_keys=ADMIN_KEY,
        )
    )
    with TestClient(app):
        assert app.state.store.wait(120), app.state.store.error
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda m: m.value)
def test_every_route_passes_every_schemathesis_check(api_with_keys, mode):
    """Status codes, content types, headers and response bodies as documented (no null in a
    number), schema-valid data accepted and invalid data refused, the key required: on every
    route of the OpenAPI document (the customer routes, the MLflow-compatible route with JSON
    and CSV bodies, the catalogue, health and admin routes), with the scoring key on scoring
    routes and the admin key on admin routes."""
    checks = every_check()
    found = operations(api_with_keys)
    assert {(op.method.upper(), op.path) for op in found} == ALL_ROUTES
    failures = []
    for operation in found:
        key = ADMIN_KEY if operation.path.startswith("/v1/admin/") else SCORING_KEY

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case):
            # called below, in the same iteration
            case.call_and_validate(checks=checks, headers={"X-API-Key": key})  # noqa: B023

        try:
            check()
        except Unsatisfiable:
            assert mode is schemathesis.GenerationMode.NEGATIVE
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis: an exception group
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:3000])
    assert not failures, "\n\n".join(failures)


# --- hypothesis: the MLflow payload parser -----------------------------------------------------
SCHEMA = InputSchema.from_mlflow(
    [
        {"name": "n", "type": "long", "required": True},
        {"name": "x", "type": "double", "required": True},
        {"name": "s", "type": "string", "required": False},
    ]
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)
cells = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4)
)
column_names = st.sampled_from(["n", "x", "s", "extra"])
records = st.lists(st.dictionaries(column_names, cells, max_size=4), max_size=6)


@st.composite
def payloads(draw):
    kind = draw(st.sampled_from([*inv.FORMATS, "junk"]))
    if kind == "junk":
        return draw(json_values)
    if kind == "dataframe_split":
        columns = draw(st.lists(column_names, max_size=4))
        width = draw(st.sampled_from([len(columns), len(columns) + 1]))
        data = draw(st.lists(st.lists(cells, min_size=width, max_size=width), max_size=5))
        return {"dataframe_split": {"columns": columns, "data": data}}
    if kind in ("inputs", "instances") and draw(st.booleans()):
        return {kind: draw(st.dictionaries(column_names, st.lists(cells, max_size=4), max_size=4))}
    return {kind: draw(records)}


@given(payloads())
@settings(max_examples=400, deadline=None, derandomize=True)
def test_the_parser_accepts_or_names_the_error(body):
    try:
        frame = inv.parse_payload(orjson.dumps(body), SCHEMA, 100)
    except RequestValidationError as exc:
        errors = exc.errors()
        assert 1 <= len(errors) <= inv.MAX_ERRORS
        assert all(e["loc"][0] == "body" and e["msg"] and e["type"] for e in errors)
        return
    except InvalidInputError:  # the row limit
        return
    assert list(frame.columns) == ["n", "x", "s"]
    assert len(frame) >= 1


@given(
    st.lists(
        st.tuples(
            st.integers(-(2**63), 2**63 - 1),
            st.none() | st.floats(allow_nan=False, allow_infinity=False),
            st.none() | st.text(max_size=6),
        ),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from(inv.FORMATS),
)
@settings(max_examples=200, deadline=None, derandomize=True)
def test_valid_payloads_convert_exactly(rows, fmt):
    names = ["n", "x", "s"]
    if fmt == "dataframe_split":
        body = {fmt: {"columns": names, "data": [list(r) for r in rows]}}
    elif fmt == "inputs":
        body = {fmt: {name: [r[i] for r in rows] for i, name in enumerate(names)}}
    else:
        body = {fmt: [dict(zip(names, r, strict=True)) for r in rows]}
    frame = inv.parse_payload(orjson.dumps(body), SCHEMA, 100)
    assert frame["n"].tolist() == [r[0] for r in rows]  # exact 64-bit integers
    for got, (_, x, s) in zip(frame.itertuples(index=False), rows, strict=True):
        assert (math.isnan(got.x) and x is None) or got.x == x
        assert got.s == s or (s is None and pd.isna(got.s))


# --- hypothesis: the customer request schema ---------------------------------------------------
@given(json_values)
@settings(max_examples=300, deadline=None, derandomize=True)
def test_score_request_validation_never_crashes(value):
    try:
        ScoreRequest.model_validate_json(orjson.dumps({"customers": [value]}))
    except ValidationError as exc:
        assert all(e["loc"] for e in exc.errors())
