"""The MLflow-compatible route takes ``text/csv`` as ``mlflow models serve`` does (its scoring
server reads the body with pandas.read_csv), checked like the JSON forms with errors naming
row and column; and a 200 never carries null where the model always has a number."""

from __future__ import annotations

import io

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient
from mlflow.pyfunc.scoring_server import parse_csv_input

from models.exceptions import InvalidInputError
from service import mlflow_scoring
from service.app import create_app
from service.config import Settings
from tests.conftest import CLV_ROW
from tests.service.test_invocations import FAMILIES, batch, expected, payload, pyfuncs

__all__ = ["pyfuncs"]  # the fixture, shared with test_invocations

CSV = {"content-type": "text/csv"}
CLV_HEADER = ",".join(CLV_ROW)
CLV_LINE = ",".join(str(v) for v in CLV_ROW.values())


def post_csv(client, text: str | bytes, model: str = "cvm-clv", headers: dict = CSV):
    return client.post(f"/v1/models/{model}/invocations", content=text, headers=headers)


def error_of(response, status: int = 422) -> dict:
    assert response.status_code == status, response.text
    return response.json()["error"]


@pytest.mark.parametrize("family", FAMILIES)
def test_csv_bodies_answer_as_mlflows_server_reads_them(client, pyfuncs, family):
    """The frame MLflow's own CSV parser makes of the body, through the pyfunc, is the
    answer; ``DataFrame.to_csv()``'s index column (its default) is ignored."""
    pyfunc = pyfuncs[family]
    frame = batch(pyfunc, 40, seed=5)
    text = frame.to_csv(index=False)
    mlflow_frame = parse_csv_input(io.StringIO(text), schema=pyfunc.metadata.get_input_schema())
    want = {"predictions": expected(pyfunc, mlflow_frame)}
    response = post_csv(client, text, f"cvm-{family}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == want
    with_index = post_csv(
        client, frame.to_csv(), f"cvm-{family}", {"content-type": "text/csv; charset=utf-8"}
    )
    assert with_index.json() == want
    json_body = client.post(
        f"/v1/models/cvm-{family}/invocations", json=payload(frame, "dataframe_split")
    )
    assert json_body.json() == want  # the same rows as JSON


def test_csv_missing_values_are_read_as_pandas_reads_them(client, pyfuncs):
    frame = batch(pyfuncs["churn"], 3, seed=1)
    text = frame.to_csv(index=False, na_rep="NA")
    mlflow_frame = parse_csv_input(
        io.StringIO(text), schema=pyfuncs["churn"].metadata.get_input_schema()
    )
    assert mlflow_frame.isna().to_numpy().any()  # the example holds missing values
    response = post_csv(client, text, "cvm-churn")
    assert response.json() == {"predictions": expected(pyfuncs["churn"], mlflow_frame)}


def _validation(path: str, message: str, kind: str) -> dict:
    return {"path": path, "message": message, "type": kind}


@pytest.mark.parametrize(
    ("body", "details"),
    [
        (
            f"{CLV_HEADER}\n{CLV_LINE}\n2,twelve,90,20.0,0.3,90,60.0\n2,30,90,inf,true,90,60.0\n",
            [
                _validation(
                    "rows.1.recency",
                    "recency: expected a number, got string 'twelve'",
                    "float_type",
                ),
                _validation(
                    "rows.2.monetary_value",
                    "monetary_value: expected a finite number, got Infinity",
                    "finite_number",
                ),
                _validation(
                    "rows.2.margin_rate",
                    "margin_rate: expected a number, got string 'true'",
                    "float_type",
                ),
            ],
        ),
        (
            f"{CLV_HEADER}\n{CLV_LINE}\n2,30\n",
            [_validation("rows.1", "2 fields where the header has 7", "length")],
        ),
        (
            f"{CLV_HEADER},bogus,frequency\n{CLV_LINE},1,2\n",
            [
                _validation(
                    "columns.8", "column 'frequency' appears more than once", "value_error"
                ),
                _validation(
                    "columns.7",
                    "unknown column 'bogus'; the model's columns are 'frequency', 'recency', "
                    "'T', 'monetary_value', 'margin_rate', 'tenure_days', 'total_revenue'",
                    "extra_forbidden",
                ),
            ],
        ),
        (
            "frequency,recency\n1,2\n",
            [
                _validation(
                    "columns",
                    "missing column(s) 'T', 'monetary_value', 'margin_rate', 'tenure_days', "
                    "'total_revenue'",
                    "missing",
                )
            ],
        ),
        (f"{CLV_HEADER}\n\n", [_validation("rows", "no rows: send at least one", "too_short")]),
        (
            "",
            [
                _validation(
                    "body", "no header: the first line of a CSV body names the columns", "missing"
                )
            ],
        ),
        (
            f"{CLV_HEADER}\n{CLV_LINE}\n".encode() + b"\xff,1\n",
            [
                _validation(
                    "body", "invalid CSV: byte 98 is 0xff, not UTF-8; send UTF-8", "csv_invalid"
                )
            ],
        ),
    ],
    ids=["types", "short row", "columns", "missing columns", "no rows", "empty", "not UTF-8"],
)
def test_csv_errors_name_the_row_and_column(client, body, details):
    error = error_of(post_csv(client, body))
    assert error["code"] == "validation_error"
    assert error["details"] == details


def test_csv_bodies_keep_the_body_and_batch_limits(trained_store, client, pyfuncs, monkeypatch):
    frame = batch(pyfuncs["clv"], 300, seed=2)
    app = create_app(
        Settings(mlflow_tracking_uri=trained_store["uri"], reload_interval=0, max_body_bytes=1000)
    )
    with TestClient(app) as small:
        assert app.state.store.wait(120)
        assert error_of(post_csv(small, frame.to_csv(index=False)), 413)["code"] == (
            "payload_too_large"
        )
    monkeypatch.setattr(client.app.state.store.settings, "max_batch", 4)
    error = error_of(post_csv(client, batch(pyfuncs["clv"], 5).to_csv(index=False)))
    assert error["message"] == "5 rows in one request; the limit is 4 (CVM_MAX_BATCH)"
    assert error["details"][0]["path"] == "rows"


def test_a_csv_charset_other_than_utf8_is_415(client):
    response = post_csv(
        client, f"{CLV_HEADER}\n{CLV_LINE}\n", headers={"content-type": "text/csv; charset=latin-1"}
    )
    assert error_of(response, 415)["message"] == (
        "send application/json or text/csv (UTF-8), or application/x-ndjson to stream; "
        "got 'text/csv; charset=latin-1'"
    )


# --- predictions that are not finite numbers (were 200s with null) ----------------------------
def _unscorable(rows: list[int], output: str) -> dict:
    which = f"row {rows[0]}" if len(rows) == 1 else "rows " + ", ".join(map(str, rows))
    their = "its" if len(rows) == 1 else "their"
    message = (
        f"{which} cannot be scored: {their} values are too large for the model ({output} would "
        "not be a finite number)"
    )
    detail = {"path": f"rows.{rows[0]}", "message": message, "rows": rows}
    return {"code": "invalid_input", "message": message, "details": [detail]}


def test_clv_rows_too_large_to_score_are_a_422_naming_the_rows(client):
    rows = [CLV_ROW, CLV_ROW, {**CLV_ROW, "monetary_value": 1e308}, CLV_ROW]
    want = _unscorable([2], "expected_spend")
    url = "/v1/models/cvm-clv/invocations"
    assert error_of(client.post(url, json={"dataframe_records": rows})) == want
    text = CLV_HEADER + "\n" + "\n".join(",".join(map(str, r.values())) for r in rows) + "\n"
    assert error_of(post_csv(client, text)) == want
    ndjson = b"".join(orjson.dumps(r) + b"\n" for r in rows)
    response = client.post(url, content=ndjson, headers={"content-type": "application/x-ndjson"})
    assert error_of(response) == want


def test_churn_rows_too_large_to_score_are_a_422_naming_the_rows(client, pyfuncs):
    frame = batch(pyfuncs["churn"], 4, seed=6)
    numbers = [c for c in frame.columns if frame[c].dtype.kind == "f"]
    frame.loc[[1, 3], numbers] = 1e308
    response = client.post(
        "/v1/models/cvm-churn/invocations", json=payload(frame, "dataframe_split")
    )
    assert error_of(response) == _unscorable([1, 3], "churn_probability")


def test_segmentation_numbers_are_null_only_where_an_input_is_missing(client, pyfuncs):
    """The documented exception: the segmentation model's numbers come from its inputs."""
    frame = batch(pyfuncs["segmentation"], 2, seed=7)
    frame.loc[1, "total_profit"] = np.nan
    response = client.post(
        "/v1/models/cvm-segmentation/invocations", json=payload(frame, "dataframe_records")
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected(pyfuncs["segmentation"], frame)}


def test_rows_are_named_from_the_stream_offset():
    out = {"churn_probability": np.array([0.2, np.nan, 0.4, np.nan]), "risk_band": []}
    with pytest.raises(InvalidInputError) as caught:
        mlflow_scoring.check_numbers("churn", out, offset=4000)
    assert (caught.value.field, caught.value.rows) == ("rows.4001", [4001, 4003])
    mlflow_scoring.check_numbers("segmentation", {"value_index": np.array([np.nan])})
