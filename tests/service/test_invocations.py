"""The MLflow-compatible route: same payloads and answers as `mlflow models serve`, stricter
validation, and the one error shape (every bad value named by its path, rows by index)."""

from __future__ import annotations

import math

import mlflow
import numpy as np
import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from models.exceptions import InvalidInputError
from service import mlflow_payload, mlflow_scoring
from service.app import create_app
from service.config import Settings
from service.input_schema import InputSchema

FAMILIES = ("segmentation", "churn", "clv")
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


@pytest.fixture(scope="module")
def pyfuncs(trained_store):
    """Each family's registered pyfunc, loaded the way `mlflow models serve` loads it."""
    client = mlflow.MlflowClient(trained_store["uri"], trained_store["uri"])
    return {
        family: mlflow.pyfunc.load_model(
            client.get_model_version_download_uri(f"cvm-{family}", "1")
        )
        for family in FAMILIES
    }


def _rows(frame: pd.DataFrame) -> list[list]:
    """Frame rows as JSON values (NaN → null)."""
    return [
        [None if isinstance(v, float) and math.isnan(v) else v for v in row]
        for row in frame.astype(object).itertuples(index=False)
    ]


def payload(frame: pd.DataFrame, fmt: str) -> dict:
    columns = list(frame.columns)
    rows = _rows(frame)
    records = [dict(zip(columns, row, strict=True)) for row in rows]
    if fmt == "dataframe_split":
        return {"dataframe_split": {"columns": columns, "data": rows}}
    if fmt == "dataframe_records":
        return {"dataframe_records": records}
    if fmt == "instances":
        return {"instances": records}
    return {"inputs": {c: [r[i] for r in rows] for i, c in enumerate(columns)}}


def expected(pyfunc, frame: pd.DataFrame) -> list[dict]:
    """What MLflow's scoring server answers: the pyfunc's frame as records (NaN → null)."""
    out = pyfunc.predict(frame).to_dict(orient="records")
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in out
    ]


def batch(pyfunc, n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` rows made from the model's input example, numeric columns jittered."""
    example = pyfunc.input_example.reset_index(drop=True)
    frame = example.iloc[np.arange(n) % len(example)].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_float_dtype(values) and not (values.dropna() % 1 == 0).all():
            frame[column] = values * rng.uniform(0.9, 1.1, n)  # counts stay whole
    return frame


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("family", FAMILIES)
def test_every_payload_format_answers_like_the_pyfunc(client, pyfuncs, family, fmt):
    example = pyfuncs[family].input_example
    response = client.post(f"/v1/models/cvm-{family}/invocations", json=payload(example, fmt))
    assert response.status_code == 200, response.text
    assert response.headers["x-model-name"] == f"cvm-{family}"
    assert response.headers["x-model-version"] == "1"
    assert response.json() == {"predictions": expected(pyfuncs[family], example)}


@pytest.mark.parametrize("family", FAMILIES)
def test_a_thousand_row_batch_is_identical_to_the_pyfunc(client, pyfuncs, family):
    frame = batch(pyfuncs[family], 1000, seed=3)
    body = payload(frame, "dataframe_split")
    response = client.post(f"/v1/models/cvm-{family}/invocations", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == expected(pyfuncs[family], frame)


def test_churn_optional_columns_may_be_left_out(client, pyfuncs):
    schema = pyfuncs["churn"].metadata.get_input_schema()
    optional = [c.name for c in schema.inputs if not c.required]
    assert optional, "the churn signature has optional columns"
    frame = pyfuncs["churn"].input_example.copy()
    frame[optional] = np.nan
    body = payload(frame.drop(columns=optional), "dataframe_records")
    response = client.post("/v1/models/cvm-churn/invocations", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == expected(pyfuncs["churn"], frame)


def _error(response, status=422):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_a_bad_value_is_named_by_row_index_and_column(client, pyfuncs):
    frame = pyfuncs["clv"].input_example
    body = payload(frame, "dataframe_split")
    recency = body["dataframe_split"]["columns"].index("recency")
    body["dataframe_split"]["data"][3][recency] = "twelve"
    body["dataframe_split"]["data"][1][0] = True  # a boolean is not a number either
    error = _error(client.post("/v1/models/cvm-clv/invocations", json=body))
    assert error["code"] == "validation_error"
    paths = {d["path"]: d["message"] for d in error["details"]}
    assert paths == {
        "dataframe_split.data.3." + str(recency): "recency: expected a number, got string 'twelve'",
        "dataframe_split.data.1.0": "frequency: expected a number, got true",
    }
    assert "(and 1 more)" in error["message"]


def test_records_name_unknown_and_missing_columns_per_row(client, pyfuncs):
    records = payload(pyfuncs["clv"].input_example, "dataframe_records")["dataframe_records"]
    records[2]["colour"] = "red"
    del records[4]["T"]
    error = _error(
        client.post("/v1/models/cvm-clv/invocations", json={"dataframe_records": records})
    )
    details = {d["path"]: d for d in error["details"]}
    assert set(details) == {"dataframe_records.2.colour", "dataframe_records.4.T"}
    assert details["dataframe_records.2.colour"]["type"] == "extra_forbidden"
    assert "unknown column 'colour'" in details["dataframe_records.2.colour"]["message"]
    assert details["dataframe_records.4.T"]["message"] == "missing column 'T'"


def test_split_names_unknown_columns_and_short_rows(client, pyfuncs):
    body = payload(pyfuncs["clv"].input_example, "dataframe_split")
    body["dataframe_split"]["columns"][0] = "freq"
    error = _error(client.post("/v1/models/cvm-clv/invocations", json=body))
    assert {d["path"] for d in error["details"]} == {
        "dataframe_split.columns.0",
        "dataframe_split.columns",
    }
    assert "missing column(s) 'frequency'" in str(error["details"])

    body = payload(pyfuncs["clv"].input_example, "dataframe_split")
    body["dataframe_split"]["data"][2] = body["dataframe_split"]["data"][2][:-1]
    error = _error(client.post("/v1/models/cvm-clv/invocations", json=body))
    assert error["details"][0]["path"] == "dataframe_split.data.2"
    assert "6 values where there are 7 columns" in error["message"]


def test_columnar_inputs_name_the_column_and_row(client, pyfuncs):
    body = payload(pyfuncs["clv"].input_example, "inputs")
    body["inputs"]["monetary_value"][4] = [1.0]
    error = _error(client.post("/v1/models/cvm-clv/invocations", json=body))
    assert error["details"][0]["path"] == "inputs.monetary_value.4"
    assert "expected a number, got an array" in error["message"]
    body = payload(pyfuncs["clv"].input_example, "inputs")
    body["inputs"]["T"] = body["inputs"]["T"][:2]
    error = _error(client.post("/v1/models/cvm-clv/invocations", json=body))
    assert error["details"][0]["path"] == "inputs.T"


def test_a_string_column_rejects_numbers(client, pyfuncs):
    records = payload(pyfuncs["churn"].input_example, "dataframe_records")["dataframe_records"]
    records[1]["region"] = 7
    error = _error(
        client.post("/v1/models/cvm-churn/invocations", json={"dataframe_records": records})
    )
    assert error["details"][0]["path"] == "dataframe_records.1.region"
    assert error["details"][0]["message"] == "region: expected a string, got number 7"


@pytest.mark.parametrize(
    ("body", "path", "fragment"),
    [
        ({}, "body", "expected exactly one of"),
        ({"dataframe_records": [], "inputs": {}}, "body", "got 2"),
        ({"dataframe_records": []}, "dataframe_records", "no rows"),
        ({"rows": []}, "rows", "unknown field"),
        ({"dataframe_records": [{}], "params": {"x": 1}}, "params", "no params"),
        ({"dataframe_split": {"columns": ["frequency"]}}, "dataframe_split.data", "required"),
        ({"dataframe_records": [1, 2]}, "dataframe_records.0", "expected a record"),
        ({"inputs": 5}, "inputs", "expected records"),
        ([1, 2], "body", "expected a JSON object"),
    ],
)
def test_malformed_bodies_get_the_one_error_shape(client, body, path, fragment):
    error = _error(client.post("/v1/models/cvm-clv/invocations", json=body))
    assert error["details"][0]["path"] == path
    assert fragment in error["message"]


def test_invalid_json_unknown_model_and_media_type(client):
    error = _error(client.post("/v1/models/cvm-clv/invocations", content=b'{"inputs": '))
    assert error["details"][0]["path"] == "body" and "invalid JSON" in error["message"]
    error = _error(client.post("/v1/models/cvm-foo/invocations", json={"inputs": {}}), 404)
    assert error["code"] == "not_found" and "cvm-churn" in error["message"]
    response = client.post(
        "/v1/models/cvm-clv/invocations",
        content=b"a,b\n1,2",
        headers={"content-type": "text/plain"},
    )
    assert _error(response, 415)["code"] == "unsupported_media_type"


def test_batch_row_limit_is_422(client, pyfuncs, monkeypatch):
    monkeypatch.setattr(client.app.state.store.settings, "max_batch", 4)
    body = payload(pyfuncs["clv"].input_example, "dataframe_split")  # 5 rows
    error = _error(client.post("/v1/models/cvm-clv/invocations", json=body))
    assert error["code"] == "invalid_input"
    assert error["details"][0]["path"] == "dataframe_split"
    assert "5 rows in one request; the limit is 4" in error["message"]


def test_rows_scored_are_counted_per_model_version(client, pyfuncs):
    def scored() -> float:
        text = client.get("/metrics").text
        line = next(
            (
                x
                for x in text.splitlines()
                if x.startswith('cvm_rows_scored_total{model="cvm-clv",version="1"}')
            ),
            None,
        )
        return float(line.rsplit(" ", 1)[1]) if line else 0.0

    before = scored()
    body = payload(pyfuncs["clv"].input_example, "dataframe_split")
    assert client.post("/v1/models/cvm-clv/invocations", json=body).status_code == 200
    assert scored() == before + 5


# --- strict conversion, without a model -------------------------------------------------------
SCHEMA = InputSchema.from_mlflow(
    [
        {"name": "n", "type": "long", "required": True},
        {"name": "x", "type": "double", "required": True},
        {"name": "flag", "type": "boolean", "required": False},
        {"name": "label", "type": "string", "required": False},
    ]
)


def _validation_errors(body: bytes) -> list[dict]:
    from fastapi.exceptions import RequestValidationError

    with pytest.raises(RequestValidationError) as caught:
        mlflow_payload.parse_payload(body, SCHEMA, 100)
    return list(caught.value.errors())


def test_no_silent_float_to_int_truncation():
    errors = _validation_errors(b'{"inputs": {"n": [1, 2.5, 3.0], "x": [1, 2, 3]}}')
    assert [(e["loc"], e["type"]) for e in errors] == [
        (("body", "inputs", "n", 1), "int_type"),
        (("body", "inputs", "n", 2), "int_type"),
    ]
    assert "not truncated" in errors[0]["msg"]


def test_types_are_converted_exactly():
    frame = mlflow_payload.parse_payload(
        b'{"dataframe_records": [{"n": 1, "x": 2, "flag": true, "label": "a"},'
        b' {"n": 9007199254740993, "x": null}]}',
        SCHEMA,
        100,
    )
    assert list(frame.columns) == ["n", "x", "flag", "label"]
    assert frame["n"].dtype == np.int64 and frame["n"].tolist() == [1, 9007199254740993]
    assert frame["x"].dtype == np.float64 and np.isnan(frame["x"].iloc[1])
    assert frame["label"].tolist()[0] == "a" and pd.isna(frame["label"].tolist()[1])
    assert frame["flag"].dtype == "boolean" and pd.isna(frame["flag"].iloc[1])
    nullable = mlflow_payload.parse_payload(
        b'{"inputs": {"n": [1, null], "x": [1, 2]}}', SCHEMA, 100
    )
    assert nullable["n"].dtype == "Int64" and nullable["n"].tolist()[0] == 1
    errors = _validation_errors(b'{"dataframe_records": [{"n": 1, "x": "1.5", "flag": 1}]}')
    assert {e["loc"][-1]: e["type"] for e in errors} == {"x": "float_type", "flag": "bool_type"}


def test_errors_are_capped_and_batch_limit_comes_first():
    rows = b",".join(b'{"n": "a", "x": "b"}' for _ in range(50))
    errors = _validation_errors(b'{"dataframe_records": [' + rows + b"]}")
    assert len(errors) == mlflow_payload.MAX_ERRORS
    with pytest.raises(InvalidInputError, match="50 rows in one request; the limit is 10"):
        mlflow_payload.parse_payload(b'{"dataframe_records": [' + rows + b"]}", SCHEMA, 10)


# --- the error contract on the customer routes -----------------------------------------------
def test_customer_batch_errors_name_each_bad_row_by_index(client):
    good = {
        "customer_id": "a",
        "summary": {"frequency": 1, "recency": 5, "T": 9, "monetary_value": 3},
    }
    customers = [
        good,
        {"customer_id": "b", "transactions": [{"timestamp": "yesterday", "amount": 5}]},
        {**good, "customer_id": "c"},
        {
            "customer_id": "d",
            "summary": {"frequency": 1.5, "recency": 5, "T": 9, "monetary_value": 3},
        },
    ]
    error = _error(client.post("/v1/customers/score", json={"customers": customers}))
    paths = [d["path"] for d in error["details"]]
    assert paths == ["customers.1.transactions.0.timestamp", "customers.3.summary.frequency"]
    assert error["message"].startswith("customers.1.transactions.0.timestamp: ")
    assert "(and 1 more)" in error["message"]


def test_estimators_with_a_columns_api_get_arrays_without_a_frame():
    class FastChurn:
        feature_names_in_ = np.array(["n", "x"])

        def predict_proba_columns(self, columns, n):
            assert isinstance(columns["x"], np.ndarray) and n == 2
            p = np.clip(columns["x"], 0, 1)
            return np.column_stack([1 - p, p])

        def predict_proba(self, frame):  # pragma: no cover - the fast path must win
            raise AssertionError("DataFrame path used")

    columns, n = mlflow_payload.parse_columns(
        b'{"inputs": {"n": [1, 2], "x": [0.1, 0.9]}}', SCHEMA, 10
    )
    out = mlflow_scoring.predict("churn", FastChurn(), columns, n)
    assert out["churn_probability"].tolist() == [0.1, 0.9]
    assert out["risk_band"].tolist() == ["low", "high"]


# --- NDJSON streaming (service/streaming.py) --------------------------------------------------
NDJSON = {"content-type": "application/x-ndjson"}


def ndjson(frame: pd.DataFrame) -> bytes:
    columns = list(frame.columns)
    return b"".join(
        orjson.dumps(dict(zip(columns, row, strict=True))) + b"\n" for row in _rows(frame)
    )


def test_ndjson_stream_answers_one_line_per_row_like_the_pyfunc_per_chunk(client, pyfuncs):
    from service.streaming import CHUNK_ROWS

    n = 2 * CHUNK_ROWS + 321
    frame = batch(pyfuncs["churn"], n, seed=11)
    body = ndjson(frame).replace(b"\n", b"\n\n", 7)  # blank lines are skipped
    response = client.post("/v1/models/cvm-churn/invocations", content=body, headers=NDJSON)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["x-model-version"] == "1"
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    assert len(lines) == n
    want = []
    for start in range(0, n, CHUNK_ROWS):  # scored a chunk at a time, as the pyfunc would be
        want += expected(pyfuncs["churn"], frame.iloc[start : start + CHUNK_ROWS])
    assert lines == want


def test_ndjson_stream_may_arrive_in_pieces_and_ignores_the_body_limit(trained_store, pyfuncs):
    frame = batch(pyfuncs["clv"], 300, seed=2)
    body = ndjson(frame)
    settings = Settings(
        mlflow_tracking_uri=trained_store["uri"], reload_interval=0, max_body_bytes=1000
    )
    app = create_app(settings)
    with TestClient(app) as small:
        assert app.state.store.wait(120)
        pieces = (body[i : i + 777] for i in range(0, len(body), 777))  # splits records
        response = small.post("/v1/models/cvm-clv/invocations", content=pieces, headers=NDJSON)
        assert response.status_code == 200, response.text
        lines = [orjson.loads(line) for line in response.content.splitlines()]
        assert lines == expected(pyfuncs["clv"], frame)
        # the same rows as one JSON body are over the limit
        json_body = orjson.dumps(payload(frame, "dataframe_split"))
        too_big = small.post(
            "/v1/models/cvm-clv/invocations",
            content=json_body,
            headers={"content-type": "application/json"},
        )
        assert too_big.status_code == 413


def test_ndjson_errors_in_the_first_chunk_are_422_by_row(client, pyfuncs):
    frame = batch(pyfuncs["churn"], 50, seed=4)
    lines = ndjson(frame).splitlines()
    lines[7] = lines[7].replace(b'"region":', b'"region":7,"_was":', 1)
    lines[9] = b'{"frequency": 1,'
    response = client.post(
        "/v1/models/cvm-churn/invocations", content=b"\n".join(lines), headers=NDJSON
    )
    error = _error(response)
    assert error["code"] == "validation_error"
    assert [d["path"] for d in error["details"]] == ["rows.9"]  # JSON is checked first
    assert "invalid JSON" in error["details"][0]["message"]
    lines[9] = lines[8]
    response = client.post(
        "/v1/models/cvm-churn/invocations", content=b"\n".join(lines), headers=NDJSON
    )
    paths = [d["path"] for d in _error(response)["details"]]
    assert paths == ["rows.7._was"]
    empty = client.post("/v1/models/cvm-churn/invocations", content=b"\n \n", headers=NDJSON)
    assert _error(empty)["details"][0]["path"] == "rows"


def test_ndjson_error_after_the_first_chunk_ends_the_stream_with_an_error_line(client, pyfuncs):
    from service.streaming import CHUNK_ROWS

    frame = batch(pyfuncs["churn"], CHUNK_ROWS + 100, seed=5)
    lines = ndjson(frame).splitlines()
    bad = CHUNK_ROWS + 42
    lines[bad] = orjson.dumps({**orjson.loads(lines[bad]), "age": "old"})
    response = client.post(
        "/v1/models/cvm-churn/invocations", content=b"\n".join(lines), headers=NDJSON
    )
    assert response.status_code == 200  # sent before the bad row was read
    out = response.content.splitlines()
    assert len(out) == CHUNK_ROWS + 1
    last = orjson.loads(out[-1])
    assert last["rows_scored"] == CHUNK_ROWS
    assert last["error"]["code"] == "validation_error"
    assert [d["path"] for d in last["error"]["details"]] == [f"rows.{bad}.age"]


def test_ndjson_limits_long_lines_and_stream_rows(trained_store, pyfuncs, monkeypatch):
    from service import streaming

    frame = batch(pyfuncs["clv"], 30, seed=6)
    settings = Settings(
        mlflow_tracking_uri=trained_store["uri"], reload_interval=0, max_stream_rows=25
    )
    app = create_app(settings)
    monkeypatch.setattr(streaming, "CHUNK_ROWS", 10)
    monkeypatch.setattr(streaming.row_chunks, "__defaults__", (10, 4096))
    with TestClient(app) as limited:
        assert app.state.store.wait(120)
        response = limited.post(
            "/v1/models/cvm-clv/invocations", content=ndjson(frame), headers=NDJSON
        )
        out = response.content.splitlines()
        assert len(out) == 21  # two chunks of 10 scored, then the limit
        last = orjson.loads(out[-1])
        assert last["rows_scored"] == 20 and "CVM_MAX_STREAM_ROWS" in last["error"]["message"]
        # the limit applies to the first chunk too (a normal 422 then)
        app.state.settings.max_stream_rows = 5
        response = limited.post(
            "/v1/models/cvm-clv/invocations", content=ndjson(frame.head(8)), headers=NDJSON
        )
        assert "more than 5 rows" in _error(response)["message"]
        app.state.settings.max_stream_rows = 25
        long_line = b'{"frequency": 1, "pad": "' + b"x" * 5000 + b'"}\n'
        response = limited.post("/v1/models/cvm-clv/invocations", content=long_line, headers=NDJSON)
        assert "longer than 4,096 bytes" in _error(response)["message"]


def test_the_store_checks_a_fast_path_against_the_pyfunc_when_it_loads(pyfuncs):
    from service.model_store import _check_fast_path

    pyfunc = pyfuncs["churn"]
    example = pyfunc.input_example
    scored = pyfunc.predict(example)
    estimator = pyfunc.unwrap_python_model().model
    assert _check_fast_path("cvm-churn", 1, estimator, example, scored)

    class Drifting:  # a fast path that no longer matches the estimator
        def predict_proba_columns(self, columns, n=None):
            p = estimator.predict_proba_columns(columns, n)
            return p + np.array([-1e-9, 1e-9])

    class Broken:
        feature_names_in_ = estimator.feature_names_in_

        def predict_proba_columns(self, columns, n=None):
            raise RuntimeError("compiled for another version")

        def predict_proba(self, frame):
            return estimator.predict_proba(frame)

    assert not _check_fast_path("cvm-churn", 1, Drifting(), example, scored)

    import copy

    drifting = copy.deepcopy(estimator)  # a real model whose fast path disagrees
    drifting.raw_score_fast = lambda encoded: estimator.raw_score(encoded) + 1e-9
    assert not _check_fast_path("cvm-churn", 1, drifting, example, scored)
    assert drifting.fast_path_disabled_.startswith("differs from the pyfunc")
    columns = {c: example[c].tolist() for c in example.columns}
    assert np.array_equal(  # disabled: the customer view's calls get the plain path too
        drifting.predict_proba_columns(columns)[:, 1], scored["churn_probability"].to_numpy()
    )
    assert not _check_fast_path("cvm-churn", 1, Broken(), example, scored)
    columns, n = mlflow_payload.parse_columns(
        orjson.dumps(payload(example, "dataframe_split")),
        InputSchema.from_mlflow(pyfunc.metadata.get_input_schema().to_dict()),
        100,
    )
    # a version whose check failed is scored through the DataFrame path, like the pyfunc
    out = mlflow_scoring.predict("churn", Broken(), columns, n, fast_path=False)
    assert out["churn_probability"].tolist() == scored["churn_probability"].tolist()


def test_ndjson_with_crlf_line_ends_and_a_charset(client, pyfuncs):
    frame = batch(pyfuncs["clv"], 5, seed=8)
    body = ndjson(frame).replace(b"\n", b"\r\n")
    response = client.post(
        "/v1/models/cvm-clv/invocations",
        content=body,
        headers={"content-type": "application/x-ndjson; charset=utf-8"},
    )
    assert response.status_code == 200, response.text
    assert [orjson.loads(x) for x in response.content.splitlines()] == expected(
        pyfuncs["clv"], frame
    )


def test_a_client_gone_before_its_body_is_in_is_not_a_server_error(client):
    from service import observability

    app = client.app

    async def drive():
        messages = [
            {"type": "http.request", "body": b'{"frequency": 1}\n', "more_body": True},
            {"type": "http.disconnect"},
        ]
        sent = []

        async def receive():
            return messages.pop(0)

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/models/cvm-clv/invocations",
            "raw_path": b"/v1/models/cvm-clv/invocations",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", b"application/x-ndjson")],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        await app(scope, receive, send)
        return sent

    import anyio

    before = observability.ERRORS.labels("499", "client_closed_request")._value.get()
    sent = anyio.run(drive)
    assert sent[0]["status"] == 499
    assert observability.ERRORS.labels("499", "client_closed_request")._value.get() == before + 1


def test_ndjson_a_huge_line_is_stopped_while_the_body_arrives(client):
    from service.streaming import MAX_LINE_BYTES

    good = b'{"frequency": 1}\n\n'
    pieces = [good] + [b"x" * 65536] * (MAX_LINE_BYTES // 65536 + 2)
    response = client.post("/v1/models/cvm-clv/invocations", content=iter(pieces), headers=NDJSON)
    error = _error(response)
    assert error["message"].startswith("line 3 of the body is longer than 1,048,576 bytes")


# --- MLflow's NaN / Infinity literals ---------------------------------------------------------
def _literals(raw: bytes) -> list[str]:
    """The NaN / Infinity literals of a JSON text (outside strings), as the stdlib reads them."""
    import json

    found: list[str] = []
    json.loads(raw, parse_constant=lambda name: found.append(name))
    return found


@pytest.mark.parametrize("family", FAMILIES)
def test_each_models_own_serving_input_example_is_served_unchanged(
    client, trained_store, pyfuncs, family
):
    """The body MLflow wrote for the version (`mlflow models serve` accepts it) gets 200 here."""
    from pathlib import Path

    name = f"cvm-{family}"
    version = client.app.state.store.models[family].version
    registry = mlflow.MlflowClient(trained_store["uri"], trained_store["uri"])
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=registry.get_model_version_download_uri(name, version),
        tracking_uri=trained_store["uri"],
    )
    raw = (Path(local) / "serving_input_example.json").read_bytes()
    if family == "churn":  # the case this guards: MLflow writes missing values as NaN
        assert "NaN" in _literals(raw), "the churn example has no NaN literal any more"
    response = client.post(
        f"/v1/models/{name}/invocations",
        content=raw,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    rows = len(orjson.loads(raw.replace(b"NaN", b"null"))["dataframe_split"]["data"])
    predictions = response.json()["predictions"]
    assert len(predictions) == rows
    assert predictions == expected(pyfuncs[family], pyfuncs[family].input_example)


def test_nan_literals_are_missing_values_in_every_form():
    records = (
        b'{"dataframe_records": [{"n": 1, "x": NaN, "flag": NaN, "label": "NaN Infinity"},'
        b' {"n": NaN, "x": 2.5, "label": NaN}]}'
    )
    frame = mlflow_payload.parse_payload(records, SCHEMA, 100)
    assert np.isnan(frame["x"].iloc[0]) and frame["x"].iloc[1] == 2.5
    assert frame["n"].dtype == "Int64" and pd.isna(frame["n"].iloc[1])
    assert pd.isna(frame["flag"]).all()
    assert frame["label"].iloc[0] == "NaN Infinity" and pd.isna(frame["label"].iloc[1])
    split = b'{"dataframe_split": {"columns": ["n", "x"], "data": [[1, NaN], [2, 3.0]]}}'
    assert np.isnan(mlflow_payload.parse_payload(split, SCHEMA, 100)["x"].iloc[0])
    columnar = b'{"inputs": {"n": [1, 2], "x": [NaN, NaN]}}'
    assert mlflow_payload.parse_payload(columnar, SCHEMA, 100)["x"].isna().all()


def test_infinity_literals_are_named_errors():
    errors = _validation_errors(b'{"inputs": {"n": [1, 2], "x": [Infinity, -Infinity]}}')
    assert [(e["loc"], e["type"]) for e in errors] == [
        (("body", "inputs", "x", 0), "finite_number"),
        (("body", "inputs", "x", 1), "finite_number"),
    ]
    assert errors[0]["msg"] == "x: expected a finite number, got Infinity"
    assert errors[1]["msg"] == "x: expected a finite number, got -Infinity"
    errors = _validation_errors(b'{"dataframe_records": [{"n": Infinity, "x": NaN}]}')
    assert [(e["loc"], e["msg"]) for e in errors] == [
        (("body", "dataframe_records", 0, "n"), "n: expected an integer, got Infinity")
    ]


@pytest.mark.parametrize(
    "body",
    [
        b'{"inputs": {"n": [NaN, 1}}',  # broken elsewhere
        b'{"inputs": {"n": [1], "x": [-NaN]}}',  # not a literal Python writes or reads
        b'{"inputs": {"n": [1], "x": [NaNa]}}',
        b'{"inputs": {"n": [1], "x": [nan]}}',
        b'{"inputs": {"n": [1], "x": [1e999]}}',
        b'{"inputs": {"n": [1], "x": [Infinity], "\xff": 1}}',  # not UTF-8
    ],
)
def test_bodies_that_are_not_json_with_literals_stay_invalid(body):
    errors = _validation_errors(body)
    assert [e["type"] for e in errors] == ["json_invalid"]
    assert errors[0]["msg"].startswith("invalid JSON: ")


def test_nan_and_infinity_literals_through_the_route_and_ndjson(client, pyfuncs):
    frame = batch(pyfuncs["churn"], 6, seed=9)
    body = orjson.dumps(payload(frame, "dataframe_split")).replace(b"null", b"NaN")
    response = client.post(
        "/v1/models/cvm-churn/invocations",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == expected(pyfuncs["churn"], frame)
    lines = ndjson(frame).replace(b"null", b"NaN").splitlines()
    assert any(b"NaN" in line for line in lines)
    response = client.post(
        "/v1/models/cvm-churn/invocations", content=b"\n".join(lines), headers=NDJSON
    )
    assert response.status_code == 200, response.text
    assert [orjson.loads(x) for x in response.content.splitlines()] == expected(
        pyfuncs["churn"], frame
    )
    lines[4] = lines[4].replace(b'"age":', b'"age":Infinity,"_age":', 1)
    response = client.post(
        "/v1/models/cvm-churn/invocations", content=b"\n".join(lines), headers=NDJSON
    )
    error = _error(response)
    assert [d["path"] for d in error["details"]] == ["rows.4._age"]  # columns are checked first
    lines[4] = orjson.dumps(
        {**orjson.loads(lines[1].replace(b"NaN", b"null")), "age": 1.0}
    ).replace(b'"age":1.0', b'"age":-Infinity')
    error = _error(
        client.post("/v1/models/cvm-churn/invocations", content=b"\n".join(lines), headers=NDJSON)
    )
    assert [(d["path"], d["type"]) for d in error["details"]] == [("rows.4.age", "finite_number")]
    assert error["message"] == "rows.4.age: age: expected a finite number, got -Infinity"
