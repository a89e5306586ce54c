"""The customer routes on valid-looking JSON the models cannot take: a 422 naming the field,
never a 500 (a lone surrogate, an integer past a float's range, unparsable dates), never a
200 with null or "None" where the response schema has a number or a label (sums and scores
that overflow), and numbers that are numbers (no true/false coerced to 1/0)."""

from __future__ import annotations

import orjson
import pandas as pd
import pytest

from models._columns import as_float
from models.drift import DriftMonitor
from service.schemas import AudienceResponse, ChurnResponse, ScoreResponse, SegmentsResponse

ROUTES = {
    "/v1/customers/score": ScoreResponse,
    "/v1/segments": SegmentsResponse,
    "/v1/churn": ChurnResponse,
    "/v1/segments/audience": AudienceResponse,
}
AUDIENCE = {"scheme": "churn_risk", "label": "high"}
SUMMARY = {"frequency": 4, "recency": 200, "T": 300, "monetary_value": 55.0}
UNICODE = "Input should be a valid string, unable to parse raw data as a unicode string"


def post(client, route: str, customers: list[dict] | str):
    """``customers`` (a list, or JSON text spliced in as it is) to ``route``, as of 2025-12-31."""
    text = customers if isinstance(customers, str) else orjson.dumps(customers).decode()
    extra = ',"scheme":"churn_risk","label":"high"' if route.endswith("audience") else ""
    body = f'{{"as_of":"2025-12-31","customers":{text}{extra}}}'
    return client.post(route, content=body, headers={"content-type": "application/json"})


def error_of(response, status: int = 422) -> dict:
    assert response.status_code == status, response.text
    return response.json()["error"]


def validation(path: str, message: str, kind: str) -> dict:
    return {
        "code": "validation_error",
        "message": f"{path}: {message}",
        "details": [{"path": path, "message": message, "type": kind}],
    }


def invalid(path: str, message: str, rows: list[int]) -> dict:
    detail = {"path": path, "message": message, "rows": rows}
    return {"code": "invalid_input", "message": message, "details": [detail]}


# --- item 2: lone surrogates and integers past a float (were 500s) --------------------------
SUMMARY_JSON = orjson.dumps(SUMMARY).decode()


def raw_customer(**fields: str) -> str:
    """A list of one customer 'a' whose fields are JSON text spliced in as it is."""
    return '[{"customer_id":"a",' + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}]"


SURROGATES = {
    "customers.0.attributes.region": raw_customer(
        summary=SUMMARY_JSON, attributes='{"region":"\\ud800"}'
    ),
    "customers.0.transactions.1.channel": raw_customer(
        transactions='[{"timestamp":"2025-01-01","amount":5},'
        '{"timestamp":"2025-02-01","amount":5,"channel":"\\udfff"}]'
    ),
}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("path", SURROGATES)
def test_a_lone_surrogate_is_a_422_naming_the_field(client, route, path):
    error = error_of(post(client, route, SURROGATES[path]))
    assert error == validation(path, UNICODE, "string_unicode")


BIG = "1" + "0" * 309  # an integer past 1.8e308: json.loads reads it as a Python int
HUGE_INTEGERS = {
    "customers.0.summary.frequency": (
        raw_customer(summary=SUMMARY_JSON.replace('"frequency":4', '"frequency":' + BIG)),
        "Input should be less than or equal to 109937",
        "less_than_equal",
    ),
    "customers.0.attributes.age": (
        raw_customer(summary=SUMMARY_JSON, attributes='{"age":' + BIG + "}"),
        "Input should be an integer between -9223372036854775808 and 9223372036854775807; "
        "send larger numbers as floats",
        "int_range",
    ),
    "customers.0.summary.n_channels": (
        raw_customer(summary=SUMMARY_JSON[:-1] + ',"n_channels":' + BIG + "}"),
        "Input should be less than or equal to 1000000",
        "less_than_equal",
    ),
}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("path", HUGE_INTEGERS)
def test_an_integer_past_a_float_is_a_422_naming_the_field(client, route, path):
    body, message, kind = HUGE_INTEGERS[path]
    assert error_of(post(client, route, body)) == validation(path, message, kind)


@pytest.mark.parametrize(
    ("attributes", "path", "message"),
    [
        (
            {"signup_date": "2025-13-45"},
            "customers.1.attributes.signup_date",
            "signup_date of customer 'b' is not a date: '2025-13-45' "
            "(send a date as ISO 8601 text, e.g. 2024-05-01)",
        ),
        (
            {"complaints": 1, "complaint_date": 20250101},
            "customers.1.attributes.complaint_date",
            "complaint_date of customer 'b' is not a date: 20250101 "
            "(send a date as ISO 8601 text, e.g. 2024-05-01)",
        ),
        (
            {"signup_date": "1066-10-14"},
            "customers.1.attributes.signup_date",
            "signup_date of customer 'b' must be between the years 1900 and 2200; got '1066-10-14'",
        ),
    ],
)
@pytest.mark.parametrize("route", ["/v1/customers/score", "/v1/churn"])
def test_date_attributes_that_are_no_dates_are_a_422_naming_the_field(
    client, route, attributes, path, message
):
    customers = [
        {"customer_id": "a", "summary": SUMMARY},
        {"customer_id": "b", "summary": SUMMARY, "attributes": attributes},
    ]
    error = error_of(post(client, route, customers))
    assert error == {
        "code": "invalid_input",
        "message": message,
        "details": [{"path": path, "message": message}],
    }


def test_date_attributes_with_a_time_zone_and_mixed_formats_are_read(client):
    """Each date is parsed on its own (a column of mixed formats made pandas raise), an offset
    converted to UTC as purchase times are."""
    same = {"region": "north", "age": 40}
    customers = [
        {
            "customer_id": "a",
            "summary": SUMMARY,
            "attributes": {**same, "signup_date": "2024-01-01"},
        },
        {
            "customer_id": "b",
            "summary": SUMMARY,
            "attributes": {**same, "signup_date": "2024-01-01T05:00:00+05:00"},
        },
        {"customer_id": "c", "summary": SUMMARY, "attributes": {**same, "signup_date": "1/1/2024"}},
    ]
    response = post(client, "/v1/churn", customers)
    assert response.status_code == 200, response.text
    rows = response.json()["customers"]
    assert rows[0]["probability"] == rows[1]["probability"] == rows[2]["probability"]
    assert rows[0]["reasons"] == rows[1]["reasons"] == rows[2]["reasons"]


def test_an_attribute_named_customer_id_does_not_replace_the_id(client):
    """It replaced the request's id in the attribute table, so the customer's attributes
    were silently dropped (its region read as missing)."""
    plain = {"customer_id": "a", "summary": SUMMARY, "attributes": {"region": "north"}}
    shadowed = {**plain, "attributes": {"region": "north", "customer_id": 5}}
    without = {"customer_id": "a", "summary": SUMMARY}
    got, want, bare = (
        post(client, "/v1/churn", [c]).json()["customers"][0] for c in (shadowed, plain, without)
    )
    assert got == want
    assert got["probability"] != bare["probability"]  # the region counts
    assert ("region", "missing") in {(r["feature"], r["value"]) for r in bare["reasons"]}


def test_the_drift_monitor_takes_integers_past_a_float():
    """as_float raised OverflowError on a Python integer past 1.8e308 (an object column)."""
    column = pd.Series([10**309, -(10**309), 5, None, "7.5", "x"], dtype=object)
    assert as_float(column).tolist()[:3] == [float("inf"), float("-inf"), 5.0]
    assert as_float(column).tolist()[4] == 7.5
    monitor = DriftMonitor({"age": {"edges": [10.0, 50.0], "expected": [0.3, 0.4, 0.3, 0.0]}})
    monitor.update(pd.DataFrame({"age": column}))
    assert monitor.rows == 6
    assert monitor._counts["age"].tolist() == [2.0, 0.0, 0.0, 4.0]  # ±inf count as missing


# --- item 8: sums and scores that are not finite numbers (were 200s with nulls) -------------
THREE_PURCHASES = [{"timestamp": f"2025-0{m}-01", "amount": 1e308} for m in (1, 3, 5)]


@pytest.mark.parametrize("route", ROUTES)
def test_purchase_amounts_whose_sum_overflows_are_a_422_naming_the_customer(client, route):
    customers = [
        {"customer_id": "ok", "summary": SUMMARY},
        {"customer_id": "big", "transactions": THREE_PURCHASES},
    ]
    message = (
        "the purchase amounts of customer 'big' add up to more than about 1.8e308, the largest "
        "number the service computes with; send them in a larger currency unit"
    )
    assert error_of(post(client, route, customers)) == invalid(
        "customers.1.transactions", message, [1]
    )


def test_costs_and_summary_revenue_that_overflow_name_their_field(client):
    costs = [{**t, "amount": 1.0, "cost": -1e308} for t in THREE_PURCHASES]
    message = (
        "the purchase costs of customer 'a' add up to more than about 1.8e308, the largest "
        "number the service computes with; send them in a larger currency unit"
    )
    error = error_of(post(client, "/v1/churn", [{"customer_id": "a", "transactions": costs}]))
    assert error == invalid("customers.0.transactions", message, [0])
    summary = {**SUMMARY, "monetary_value": 1e308}  # × 5 purchases
    message = (
        "the total revenue of customer 'a', monetary_value × (frequency + 1), is more than "
        "about 1.8e308, the largest number the service computes with; send total_revenue, or "
        "amounts in a larger currency unit"
    )
    error = error_of(post(client, "/v1/segments", [{"customer_id": "a", "summary": summary}]))
    assert error == invalid("customers.0.summary.monetary_value", message, [0])


@pytest.mark.parametrize("route", ["/v1/customers/score", "/v1/segments/audience"])
def test_a_clv_that_is_not_a_finite_number_is_a_422(client, route):
    summary = {**SUMMARY, "monetary_value": 1e307, "total_revenue": 1.0}
    message = (
        "customer 'a' cannot be scored: its values are too large for the models "
        "(expected_spend would not be a finite number); check customers.0.summary"
    )
    error = error_of(post(client, route, [{"customer_id": "a", "summary": summary}]))
    assert error == invalid("customers.0.summary", message, [0])


def test_a_churn_score_that_is_not_a_finite_number_is_a_422(client):
    customers = [
        {"customer_id": "a", "summary": SUMMARY},
        {"customer_id": "b", "summary": SUMMARY, "attributes": {"complaints": 1.7e308}},
    ]
    message = (
        "customer 'b' cannot be scored: its values are too large for the models "
        "(churn_probability would not be a finite number); check customers.1.summary and "
        "customers.1.attributes"
    )
    assert error_of(post(client, "/v1/churn", customers)) == invalid("customers.1", message, [1])


@pytest.mark.parametrize("route", ROUTES)
def test_every_200_holds_its_response_schema(client, route):
    """Finite extremes score, and the answer validates against the route's response model
    (no null in a number field); a customer nothing puts at risk has churn_type null, not
    "None"."""
    customers = [
        {"customer_id": "a", "summary": SUMMARY, "attributes": {"age": 1.7e308}},
        {"customer_id": "b", "transactions": [{"timestamp": "2025-06-01", "amount": 1e300}]},
        {"customer_id": "c", "summary": {**SUMMARY, "monetary_value": 1e100}},
    ]
    response = post(client, route, customers)
    assert response.status_code == 200, response.text
    ROUTES[route].model_validate_json(response.content, strict=False)
    assert b"None" not in response.content and b"NaN" not in response.content
    if route == "/v1/churn":
        first = response.json()["customers"][0]
        assert (first["probability"], first["risk_band"], first["churn_type"]) == (0.0, "low", None)


# --- item 13b: strict numbers, unreadable JSON --------------------------------------------------
@pytest.mark.parametrize(
    ("customer", "path", "message", "kind"),
    [
        (
            {"transactions": [{"timestamp": "2025-01-01", "amount": 5, "cost": False}]},
            "customers.0.transactions.0.cost",
            "Input should be a valid number",
            "float_type",
        ),
        (
            {"transactions": [{"timestamp": "2025-01-01", "amount": True}]},
            "customers.0.transactions.0.amount",
            "Input should be a valid number",
            "float_type",
        ),
        (
            {"transactions": [{"timestamp": "2025-01-01", "amount": "5"}]},
            "customers.0.transactions.0.amount",
            "Input should be a valid number",
            "float_type",
        ),
        (
            {"summary": {**SUMMARY, "frequency": True}},
            "customers.0.summary.frequency",
            "Input should be a valid integer",
            "int_type",
        ),
        (
            {"summary": {**SUMMARY, "n_channels": "2"}},
            "customers.0.summary.n_channels",
            "Input should be a valid integer",
            "int_type",
        ),
        (
            {"summary": {**SUMMARY, "T": False}},
            "customers.0.summary.T",
            "Input should be a valid number",
            "float_type",
        ),
        (
            {"summary": {**SUMMARY, "margin_rate": True}},
            "customers.0.summary.margin_rate",
            "Input should be a valid number",
            "float_type",
        ),
        (
            {"summary": {**SUMMARY, "T": 200_000}},
            "customers.0.summary.T",
            "Input should be less than or equal to 109937",
            "less_than_equal",
        ),
    ],
)
def test_numbers_must_be_numbers(client, customer, path, message, kind):
    response = post(client, "/v1/customers/score", [{"customer_id": "a", **customer}])
    assert error_of(response) == validation(path, message, kind)


@pytest.mark.parametrize("stamp", [1700000000, "1700000000", 17.5])
def test_times_are_text_not_unix_numbers(client, stamp):
    """pydantic's lax mode read a number (or a number as text) as seconds since 1970."""
    customer = {"customer_id": "a", "transactions": [{"timestamp": stamp, "amount": 5.0}]}
    path = "customers.0.transactions.0.timestamp"
    message = "Input should be ISO 8601 text, e.g. 2025-01-31 or 2025-01-31T10:00:00"
    assert error_of(post(client, "/v1/churn", [customer])) == validation(path, message, "iso_8601")
    body = {"as_of": 20251231, "customers": [{"customer_id": "a", "summary": SUMMARY}]}
    response = client.post("/v1/customers/score", json=body)
    assert error_of(response) == validation("as_of", message, "iso_8601")


def test_whole_floats_still_count(client):
    as_float_count = {**SUMMARY, "frequency": 4.0, "n_channels": 2.0}
    as_int = {**SUMMARY, "n_channels": 2}
    a = post(client, "/v1/customers/score", [{"customer_id": "a", "summary": as_float_count}])
    b = post(client, "/v1/customers/score", [{"customer_id": "a", "summary": as_int}])
    assert a.status_code == 200 and a.json() == b.json()


UNREADABLE = {
    "invalid UTF-8": (
        b'{"customers":[{"customer_id":"\xff"}]}',
        "invalid JSON: the body is not valid UTF-8 (byte 30 is 0xff); send UTF-8",
    ),
    "deep nesting": (
        b'{"customers":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "invalid JSON: arrays or objects are nested too deeply",
    ),
}


@pytest.mark.parametrize("case", UNREADABLE)
@pytest.mark.parametrize("route", [*ROUTES, "/v1/admin/promote", "/v1/admin/rollback"])
def test_json_that_cannot_be_read_is_a_422_json_invalid_on_every_route(client, route, case):
    body, message = UNREADABLE[case]
    response = client.post(route, content=body, headers={"content-type": "application/json"})
    assert error_of(response) == validation("body", message, "json_invalid")


@pytest.mark.parametrize("case", UNREADABLE)
@pytest.mark.parametrize("media", ["application/json", "application/x-ndjson"])
def test_invocations_answer_unreadable_json_with_a_422_json_invalid(client, case, media):
    body = UNREADABLE[case][0].replace(b'"customers"', b'"dataframe_records"')
    response = client.post(
        "/v1/models/cvm-clv/invocations", content=body, headers={"content-type": media}
    )
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert [d["type"] for d in error["details"]] == ["json_invalid"]


def test_an_answer_echoing_text_that_is_not_unicode_is_still_sent():
    """orjson refuses a lone surrogate: an error answer naming such text (a dict key in a
    path) would have become a 500 while it was being written."""
    from service.errors import error_response

    response = error_response(422, "validation_error", "a\ud800: bad", [{"path": "a.\udfff"}])
    assert orjson.loads(response.body) == {
        "error": {
            "code": "validation_error",
            "message": "a\\ud800: bad",
            "details": [{"path": "a.\\udfff"}],
        }
    }
