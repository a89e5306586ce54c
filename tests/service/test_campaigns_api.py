"""POST /v1/campaigns/plan: the plan over the customers sent, scored as /v1/customers/score
scores them; 422 naming the field for bad offers or budget."""

from __future__ import annotations

import pytest

from tests.conftest import purchases


def _customers(transactions, n=30):
    ids = transactions["customer_id"].drop_duplicates().iloc[:n]
    return [{"customer_id": c, "transactions": purchases(transactions, c, "cost")} for c in ids]


OFFERS = [
    {"id": "call", "cost": 0.5},
    {"id": "voucher", "cost": 2.0, "cost_when": "accepted", "acceptance_rate": 0.5, "capacity": 3},
]


def test_the_plan_uses_the_scores_of_the_customer_view(client, demo_data):
    transactions, _, _ = demo_data
    customers = _customers(transactions)
    base = {"as_of": "2025-12-31", "customers": customers}
    scored = client.post("/v1/customers/score", json=base).json()["customers"]
    body = {**base, "offers": OFFERS, "budget": 5.0, "acquisition_cost": 40.0}
    response = client.post("/v1/campaigns/plan", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["as_of"] == "2025-12-31"
    assert answer["model_versions"] == {"segmentation": "1", "churn": "1", "clv": "1"}
    summary = answer["summary"]
    assert summary["assumption_based"] is True  # no uplift model is served yet
    assert summary["save_rates"] == {"low": 0.05, "medium": 0.15, "high": 0.1}
    assert summary["customers"] == 30
    assert summary["expected_spend"] <= 5.0 + 1e-9
    assert summary["by_offer"]["voucher"]["customers"] <= 3
    assert summary["optimisation"]["status"] == "optimal"
    # every contact's uplift is P(churn) x the save rate of its band, its value the CLV
    rates = summary["save_rates"]
    by_id = {c["customer_id"]: c for c in scored}
    contacts = answer["contacts"]
    assert summary["customers_contacted"] == len(contacts) > 0
    for contact in contacts:
        churn, clv = by_id[contact["customer_id"]]["churn"], by_id[contact["customer_id"]]["clv"]
        assert contact["expected_save"] == pytest.approx(
            churn["probability"] * rates[churn["risk_band"]]
        )
        assert contact["value"] == pytest.approx(max(clv["clv"], 0.0))
        cost = 0.5 if contact["offer"] == "call" else 1.0
        assert contact["expected_cost"] == pytest.approx(cost)
        assert contact["expected_incremental_profit"] == pytest.approx(
            contact["expected_save"] * contact["value"] - cost
        )
        assert contact["roi"] == pytest.approx(contact["expected_incremental_profit"] / cost)
    profits = [c["expected_incremental_profit"] for c in contacts]
    assert profits == sorted(profits, reverse=True)
    assert summary["expected_incremental_profit"] == pytest.approx(sum(profits))
    acquisition = summary["acquisition"]
    assert acquisition["expected_losses"] == pytest.approx(
        sum(c["churn"]["probability"] for c in scored)
    )
    assert acquisition["cost_of_replacing_avoided_losses"] == pytest.approx(
        40.0 * summary["expected_saves"]
    )


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"budget": -1}, "budget", "greater than or equal to 0"),
        ({"budget": None}, "budget", ""),
        ({"offers": []}, "offers", "at least 1 item"),
        ({"offers": [{"id": "a", "cost": -2}]}, "offers.0.cost", "greater than or equal to 0"),
        ({"offers": [{"id": "a", "cost": 1, "cost_when": "sent"}]}, "offers.0.cost_when", ""),
        ({"offers": [{"id": "a", "cost": 1, "price": 2}]}, "offers.0.price", "Extra inputs"),
        (
            {"offers": [{"id": "a", "cost": 1}, {"id": "a", "cost": 2}]},
            "offers.1.id",
            "request: offer 'a' (offers.1): id 'a' is also offer 0; ids must be unique",
        ),
        (
            {"offers": [{"id": "control", "cost": 1}]},
            "offers.0.id",
            "reserved for the control group",
        ),
        (
            {"offers": [{"id": "a", "cost": 1, "acceptance_rate": 0.3}]},
            "offers.0.acceptance_rate",
            "applies only to an offer paid on acceptance",
        ),
        ({"acquisition_cost": -5}, "acquisition_cost", "greater than or equal to 0"),
        ({"control_share": 0}, "control_share", "greater than 0"),
        ({"control_share": 1}, "control_share", "less than 1"),
        ({"seed": -1}, "seed", "greater than or equal to 0"),
    ],
)
def test_bad_offers_or_budget_are_a_422_naming_the_field(client, demo_data, change, path, message):
    transactions, _, _ = demo_data
    body = {"as_of": "2025-12-31", "customers": _customers(transactions, 2), "offers": OFFERS}
    body["budget"] = 10.0
    body.update(change)
    response = client.post("/v1/campaigns/plan", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"][0]["path"] == path
    assert message in error["details"][0]["message"]


def test_a_control_share_draws_the_control_group_within_each_offer(client, demo_data):
    """``control_share``: a fifth of each offer's contacts get treatment 'control', the same
    ones for the same seed; without it every treatment is null and there is no control."""
    customers = _customers(demo_data[0], 60)
    offers = [{"id": "call", "cost": 0.5}, {"id": "mail", "cost": 0.4}]
    body = {"as_of": "2025-12-31", "customers": customers, "offers": offers, "budget": 20.0}
    plain = client.post("/v1/campaigns/plan", json=body).json()
    assert {c["treatment"] for c in plain["contacts"]} == {None}
    assert plain["summary"]["control"] is None
    answer = client.post("/v1/campaigns/plan", json={**body, "control_share": 0.2}).json()
    contacts = answer["contacts"]
    assert [c["customer_id"] for c in contacts] == [c["customer_id"] for c in plain["contacts"]]
    held = 0
    for offer in {c["offer"] for c in contacts}:
        mine = [c for c in contacts if c["offer"] == offer]
        out = [c for c in mine if c["treatment"] == "control"]
        assert len(out) == round(0.2 * len(mine)), offer
        assert all(c["treatment"] == offer for c in mine if c not in out)
        held += len(out)
    control = answer["summary"]["control"]
    assert control["share"] == 0.2 and control["seed"] == 0 and control["held_out"] == held > 0
    sent = sum(c["expected_cost"] for c in contacts if c["treatment"] != "control")
    assert control["expected_spend_sent"] == pytest.approx(sent)
    again = client.post("/v1/campaigns/plan", json={**body, "control_share": 0.2}).json()
    assert again["contacts"] == contacts
    other = client.post("/v1/campaigns/plan", json={**body, "control_share": 0.2, "seed": 7})
    assert [c["treatment"] for c in other.json()["contacts"]] != [c["treatment"] for c in contacts]


def test_an_offer_too_small_for_the_control_share_is_named(client, demo_data):
    customers = _customers(demo_data[0], 4)
    body = {"as_of": "2025-12-31", "customers": customers, "offers": [OFFERS[0]]}
    answer = client.post(
        "/v1/campaigns/plan", json={**body, "budget": 1.0, "control_share": 0.2}
    ).json()
    assert 1 <= len(answer["contacts"]) <= 2  # round(0.2 x 2) = 0 held out
    assert answer["summary"]["control"]["held_out"] == 0
    assert answer["warnings"] == [
        "no contact of offer(s) call was held out (too few contacts for the control share): "
        "their effect cannot be measured on its own"
    ]


def test_a_body_with_only_customers_is_a_422_naming_the_missing_fields(client, demo_data):
    """Such a body looks like a /v1/customers/score request; it is still read as a plan's."""
    customers = _customers(demo_data[0], 2)
    response = client.post("/v1/campaigns/plan", json={"customers": customers})
    assert response.status_code == 422, response.text
    paths = {d["path"] for d in response.json()["error"]["details"]}
    assert paths == {"offers", "budget"}


def test_the_route_is_documented(client):
    document = client.get("/openapi.json").json()
    route = document["paths"]["/v1/campaigns/plan"]["post"]
    assert route["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PlanRequest"
    }
    assert {"PlanRequest", "OfferIn"} <= set(document["components"]["schemas"])
