"""POST /v1/reports/churn: the churn KPI table of a posted batch, worked by hand."""

import pytest

from models.churn.segment_kpi import SEGMENT_SCHEMES
from service.routers.reports import SchemeName

# Active = a purchase in the 30 days up to a boundary (active_days 30); boundaries 1 Jan,
# 1 Feb, 1 Mar 2025 (MS from 2025-01-01 to as_of 2025-03-31).
#   A: 15 Dec, 20 Jan, 25 Feb      active at all three
#   B: 20 Dec                      active 1 Jan only: lost in January
#   C: 10 Dec, 20 Feb              active 1 Jan, lapsed 1 Feb (lost), back by 1 Mar
#   D: 10 Jan                      new in January, lost in February
#   E: 10 Feb                      new in February
BATCH = {
    "A": [("2024-12-15", 100.0), ("2025-01-20", 110.0), ("2025-02-25", 120.0)],
    "B": [("2024-12-20", 50.0)],
    "C": [("2024-12-10", 40.0), ("2025-02-20", 60.0)],
    "D": [("2025-01-10", 80.0)],
    "E": [("2025-02-10", 70.0)],
}


def _customers(batch=BATCH, until=None):
    return [
        {
            "customer_id": cid,
            "transactions": [
                {"timestamp": f"{day}T12:00:00", "amount": amount}
                for day, amount in purchases
                if until is None or day <= until
            ],
        }
        for cid, purchases in batch.items()
        if until is None or any(day <= until for day, _ in purchases)
    ]


def _request(**extra):
    return {
        "as_of": "2025-03-31",
        "start": "2025-01-01",
        "active_days": 30,
        "margin": 0.25,
        "customers": _customers(),
        **extra,
    }


def test_the_churn_table_of_a_hand_made_batch(client):
    response = client.post("/v1/reports/churn", json=_request())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_versions"] == {} and body["warnings"] == []
    assert (body["by"], body["freq"], body["start"], body["as_of"]) == (
        None,
        "MS",
        "2025-01-01",
        "2025-03-31",
    )
    # January: start {A, B, C} 3, end {A, D} 2, lost B and C, new D → 2 / 2 = 1.0 and 2 / 3;
    # lost revenue: B's 50 and C's 40 in the 30 days before 1 Jan, × 0.25 = 22.5.
    # February: start {A, D} 2, end {A, C, E} 3, lost D, new E, C back → 1 / 3 and 1 / 2;
    # change 1/3 − 1 = −2/3, −66.7 %; lost revenue D's 80 → loss 20.
    assert body["periods"] == [
        {
            "segment": "all",
            "period_start": "2025-01-01",
            "period_end": "2025-02-01",
            "customers_start": 3,
            "new_customers": 1,
            "reactivated_customers": 0,
            "customers_end": 2,
            "lost_customers": 2,
            "churn_rate": 1.0,
            "conventional_churn_rate": pytest.approx(2 / 3),
            "churn_rate_change": None,
            "churn_rate_change_pct": None,
            "lost_revenue": 90.0,
            "churn_loss": 22.5,
        },
        {
            "segment": "all",
            "period_start": "2025-02-01",
            "period_end": "2025-03-01",
            "customers_start": 2,
            "new_customers": 1,
            "reactivated_customers": 1,
            "customers_end": 3,
            "lost_customers": 1,
            "churn_rate": pytest.approx(1 / 3),
            "conventional_churn_rate": 0.5,
            "churn_rate_change": pytest.approx(1 / 3 - 1),
            "churn_rate_change_pct": pytest.approx(-200 / 3),
            "lost_revenue": 80.0,
            "churn_loss": 20.0,
        },
    ]


def _labels(client, as_of, until):
    """Each customer's value type as /v1/segments gives it on the purchases up to ``until``."""
    answer = client.post(
        "/v1/segments", json={"as_of": as_of, "customers": _customers(until=until)}
    )
    assert answer.status_code == 200, answer.text
    return {
        c["customer_id"]: c["segments"]["value_matrix"]["label"] for c in answer.json()["customers"]
    }


def test_by_value_type_each_customer_in_the_segment_of_the_period_start(client):
    response = client.post("/v1/reports/churn", json=_request(by="value_matrix"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_versions"] == {"segmentation": "1", "clv": "1"}
    rows = {(r["segment"], r["period_start"]): r for r in body["periods"]}
    january = _labels(client, "2025-01-01", "2025-01-01")  # A, B, C have bought by then
    february = _labels(client, "2025-02-01", "2025-02-01")  # A, B, C, D
    assert set(january) == {"A", "B", "C"} and set(february) == {"A", "B", "C", "D"}
    # who is where, from the hand-worked activity above
    start = {"2025-01-01": {"A", "B", "C"}, "2025-02-01": {"A", "D"}}
    end = {"2025-01-01": {"A", "D"}, "2025-02-01": {"A", "C", "E"}}
    for period, labels in (("2025-01-01", january), ("2025-02-01", february)):
        labelled = {**labels, **{c: "no_history" for c in BATCH if c not in labels}}
        for segment in set(labelled.values()):
            members = {c for c, label in labelled.items() if label == segment}
            row = rows[(segment, period)]
            assert row["customers_start"] == len(members & start[period]), (segment, period)
            assert row["customers_end"] == len(members & end[period]), (segment, period)
            lost = members & start[period] - end[period]
            assert row["lost_customers"] == len(lost), (segment, period)
    # D and E had not bought by the start of their first period: no label yet, new customers
    first = rows[("no_history", "2025-01-01")]
    assert (first["customers_start"], first["new_customers"], first["customers_end"]) == (0, 1, 1)
    assert first["churn_rate"] == 0.0
    assert rows[("no_history", "2025-02-01")]["new_customers"] == 1  # E
    # the segments add up to everyone
    for period in start:
        parts = [r for (s, p), r in rows.items() if p == period and s != "all"]
        assert sum(r["lost_customers"] for r in parts) == rows[("all", period)]["lost_customers"]


def test_summary_only_customers_are_named_not_dropped(client):
    payload = _request()
    payload["customers"].insert(
        1,
        {
            "customer_id": "S",
            "summary": {"frequency": 2, "recency": 30, "T": 90, "monetary_value": 20.0},
        },
    )
    response = client.post("/v1/reports/churn", json=payload)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["message"].startswith("1 customer(s) sent a summary, not transactions")
    assert "customers 1 (S)" in error["message"]
    assert error["details"][0]["path"] == "customers.1.transactions"
    assert error["details"][0]["rows"] == [1]


def test_the_request_offers_the_schemes_the_report_knows():
    assert tuple(SEGMENT_SCHEMES) == SchemeName.__args__


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"by": "region"}, "by", "Input should be 'value_matrix', 'rfm', 'lifecycle'"),
        ({"freq": "fortnight"}, "freq", "freq 'fortnight' is not a period frequency"),
        ({"freq": "D"}, "freq", "2025-01-01 to 2025-03-31 in 'D' periods makes more than 60"),
        ({"freq": "-1MS"}, "freq", "freq '-1MS' is not a period frequency"),
        ({"start": "1800-01-01"}, "start", "must be between the years 1900 and 2200"),
        (
            {"start": "2025-03-15"},
            "freq",
            "2025-03-15 to 2025-03-31 holds fewer than two 'MS' period boundaries",
        ),
        ({"active_days": 0}, "active_days", "Input should be greater than or equal to 1"),
    ],
)
def test_bad_options_are_a_422_naming_the_field(client, extra, field, message):
    response = client.post("/v1/reports/churn", json=_request(**extra))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert message in error["message"], error
    assert error["details"][0]["path"] == field
