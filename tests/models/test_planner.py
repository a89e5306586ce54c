"""The retention planner: hand-worked plans, the exact optimum against brute force, offers."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from models.exceptions import InvalidInputError
from models.planner import (
    DEFAULT_SAVE_RATES,
    Offer,
    assumed_uplift,
    format_summary,
    load_offers,
    parse_offers,
    parse_save_rates,
    plan,
    plan_customers,
)

# Three customers, two offers (worked by hand below).
#   values: A 1000, B 500, C 200
#   call: 10 per contact; voucher: 50 on acceptance, 40 % accept -> expected cost 20
#   uplift     call   voucher     profit = uplift x value - expected cost
#   A          0.05   0.10        A: call 40, voucher 80
#   B          0.04   0.10        B: call 10, voucher 30
#   C         -0.02   0.05        C: call -14, voucher -10 (never worth it)
IDS = ["A", "B", "C"]
VALUE = np.array([1000.0, 500.0, 200.0])
UPLIFT = np.array([[0.05, 0.10], [0.04, 0.10], [-0.02, 0.05]])
OFFERS = [
    Offer("call", 10.0),
    Offer("voucher", 50.0, cost_when="accepted", acceptance_rate=0.4),
]


def _chosen(result) -> dict[str, str]:
    return dict(zip(result.contacts["customer_id"], result.contacts["offer"], strict=True))


def test_a_budget_that_binds_chooses_the_best_combination_not_the_best_pairs():
    # budget 30: A voucher + B call (20 + 10) earns 90; A voucher + B voucher needs 40
    result = plan(IDS, UPLIFT, VALUE, OFFERS, 30.0)
    assert _chosen(result) == {"A": "voucher", "B": "call"}
    s = result.summary
    assert s["expected_incremental_profit"] == pytest.approx(90.0)
    assert s["expected_spend"] == pytest.approx(30.0)
    assert s["expected_saves"] == pytest.approx(0.14)
    assert s["roi"] == pytest.approx(3.0)
    assert s["optimisation"]["status"] == "optimal"
    assert s["optimisation"]["pruned_pairs"] == 2  # C's two pairs lose money
    first = result.contacts.iloc[0]  # highest profit first
    assert (first["customer_id"], first["expected_cost"], first["roi"]) == ("A", 20.0, 4.0)
    assert first["expected_incremental_profit"] == pytest.approx(80.0)


def test_enough_budget_gives_every_customer_its_best_offer_and_leaves_the_rest_unspent():
    result = plan(IDS, UPLIFT, VALUE, OFFERS, 1000.0)
    assert _chosen(result) == {"A": "voucher", "B": "voucher"}
    assert result.summary["expected_incremental_profit"] == pytest.approx(110.0)
    assert result.summary["expected_spend"] == pytest.approx(40.0)


def test_capacity_binds():
    offers = [OFFERS[0], Offer("voucher", 50.0, "accepted", capacity=1, acceptance_rate=0.4)]
    result = plan(IDS, UPLIFT, VALUE, offers, 1000.0)
    assert _chosen(result) == {"A": "voucher", "B": "call"}
    assert result.summary["by_offer"]["voucher"] == {
        "customers": 1,
        "capacity": 1,
        "expected_saves": pytest.approx(0.10),
        "expected_spend": pytest.approx(20.0),
        "expected_incremental_profit": pytest.approx(80.0),
    }


def test_a_cost_paid_on_acceptance_without_a_rate_counts_in_full():
    assert Offer("v", 50.0, "accepted").expected_cost == 50.0
    assert Offer("v", 50.0, "accepted", acceptance_rate=0.25).expected_cost == 12.5
    assert Offer("v", 50.0).expected_cost == 50.0


def test_acquisition_comparison():
    result = plan(
        IDS, UPLIFT, VALUE, OFFERS, 30.0, acquisition_cost=300.0,
        churn_probability=[0.5, 0.4, 0.9],
    )  # fmt: skip
    acq = result.summary["acquisition"]
    assert acq["expected_losses"] == pytest.approx(1.8)
    assert acq["cost_of_replacing_losses"] == pytest.approx(540.0)
    assert acq["losses_avoided"] == pytest.approx(0.14)
    assert acq["cost_of_replacing_avoided_losses"] == pytest.approx(42.0)
    assert acq["retention_cost_per_save"] == pytest.approx(30.0 / 0.14)
    assert acq["acquisition_to_retention_ratio"] == pytest.approx(1.4)
    text = format_summary(result.summary)
    assert "1.4x its retention spend" in text and "540.00" in text
    assert "read the expected profit as an upper estimate" in text  # estimated uplift


def _brute_force(uplift, value, offers, budget) -> float:
    n, k = uplift.shape
    cost = np.array([o.expected_cost for o in offers])
    profit = uplift * value[:, None] - cost
    best = 0.0
    for assignment in itertools.product(range(k + 1), repeat=n):
        a = np.array(assignment)
        sent = np.flatnonzero(a < k)
        if cost[a[sent]].sum() > budget + 1e-9:
            continue
        if any(
            o.capacity is not None and (a == j).sum() > o.capacity for j, o in enumerate(offers)
        ):
            continue
        best = max(best, float(profit[sent, a[sent]].sum()))
    return best


@pytest.mark.parametrize("seed", range(12))
def test_the_plan_is_the_brute_force_optimum_on_small_random_instances(seed):
    rng = np.random.default_rng(seed)
    uplift = rng.uniform(-0.1, 0.35, (8, 3))
    value = rng.uniform(0, 300, 8)
    offers = [
        Offer("a", float(rng.uniform(2, 10)), capacity=int(rng.integers(1, 4))),
        Offer("b", float(rng.uniform(5, 20))),
        Offer("c", float(rng.uniform(10, 40)), "accepted", capacity=2, acceptance_rate=0.5),
    ]
    budget = float(rng.uniform(15, 60))
    result = plan(range(8), uplift, value, offers, budget)
    best = _brute_force(uplift, value, offers, budget)
    s = result.summary
    assert s["expected_incremental_profit"] == pytest.approx(best, abs=1e-6)
    assert s["optimisation"]["status"] == "optimal"
    assert s["expected_spend"] <= budget + 1e-9
    for o in offers:
        assert o.capacity is None or s["by_offer"][o.id]["customers"] <= o.capacity
    assert result.contacts["customer_id"].is_unique
    # the rounded relaxation alone (no integer programme): feasible, below the optimum, and
    # its bound above it
    rounded = plan(range(8), uplift, value, offers, budget, max_exact_pairs=0)
    r = rounded.summary
    assert r["expected_spend"] <= budget + 1e-9
    assert r["expected_incremental_profit"] <= best + 1e-9
    assert r["optimisation"]["bound"] >= best - 1e-6
    if r["optimisation"]["method"] == "lp_rounding":
        gap = (r["optimisation"]["bound"] - r["expected_incremental_profit"]) / r["optimisation"][
            "bound"
        ]
        assert r["optimisation"]["optimality_gap"] == pytest.approx(gap)


def test_sleeping_dogs_are_never_contacted_even_with_budget_to_spare():
    rng = np.random.default_rng(3)
    uplift = rng.uniform(-0.2, 0.3, (200, 2))
    uplift[:50] = -np.abs(uplift[:50])  # contact drives these away
    result = plan(
        np.arange(200), uplift, np.full(200, 500.0), [Offer("a", 1.0), Offer("b", 0.0)], 1e6
    )
    contacted = set(result.contacts["customer_id"])
    assert contacted.isdisjoint(range(50))
    chosen = uplift[result.contacts["customer_id"].to_numpy(int), :]
    assert (chosen.max(axis=1) > 0).all()
    # a free offer with no effect is not sent either (profit 0 is no gain)
    none = plan([1], [[0.0]], [100.0], [Offer("free", 0.0)], 10.0)
    assert none.contacts.empty and none.summary["roi"] is None


def test_without_uplift_the_plan_assumes_save_rates_by_risk_band():
    result = plan_customers(
        ["A", "B", "C"],
        churn_probability=[0.8, 0.5, 0.1],
        risk_band=["high", "medium", "low"],
        clv=[1000.0, 1000.0, 1000.0],
        offers=[Offer("call", 10.0)],
        budget=100.0,
    )
    # uplift = P(churn) x save rate: 0.8 x 0.10, 0.5 x 0.15, 0.1 x 0.05
    assert result.summary["assumption_based"] is True
    assert result.summary["save_rates"] == DEFAULT_SAVE_RATES
    assert list(result.contacts["customer_id"]) == ["A", "B"]  # C: 5 - 10 < 0
    assert list(result.contacts["expected_save"]) == pytest.approx([0.08, 0.075])
    assert result.summary["expected_incremental_profit"] == pytest.approx(70.0 + 65.0)
    assert "assumption-based" in format_summary(result.summary)
    assert "upper estimate" not in format_summary(result.summary)
    assert assumed_uplift([0.5], ["medium"], 3).tolist() == [[0.075, 0.075, 0.075]]
    given = plan_customers(["A"], [0.8], ["high"], [1000.0], [Offer("c", 10.0)], 100.0,
                           uplift=np.array([[0.2]]))  # fmt: skip
    assert given.summary["assumption_based"] is False and given.summary["save_rates"] is None


def test_save_rates_option():
    assert parse_save_rates("high=0.3") == {"low": 0.05, "medium": 0.15, "high": 0.3}
    with pytest.raises(InvalidInputError, match="unknown risk band 'hi'"):
        parse_save_rates("hi=0.3")
    with pytest.raises(InvalidInputError, match="the rate of low must be a number from 0 to 1"):
        parse_save_rates("low=2")


@pytest.mark.parametrize(
    ("offers", "message", "field"),
    [
        ([], "expected a non-empty list of offers", "offers"),
        ({"id": "a"}, "expected a non-empty list of offers, got dict", "offers"),
        (["a"], "offer 0 is a str", "offers.0"),
        ([{"cost": 1}], "offer 0: id must be a non-empty text, got None", "offers.0.id"),
        ([{"id": "a", "cost": -1}], "offer 'a' (offers.0): cost must be a number >= 0, got -1",
         "offers.0.cost"),
        ([{"id": "a", "cost": "5"}], "cost must be a number >= 0, got '5'", "offers.0.cost"),
        ([{"id": "a", "cost": 1}, {"id": "a", "cost": 2}],
         "offer 'a' (offers.1): id 'a' is also offer 0", "offers.1.id"),
        ([{"id": "control", "cost": 1}], "reserved for the control group", "offers.0.id"),
        ([{"id": "a", "cost": 1, "cost_when": "sent"}],
         "cost_when must be 'contacted' or 'accepted', got 'sent'", "offers.0.cost_when"),
        ([{"id": "a", "cost": 1, "capacity": 2.5}],
         "capacity must be a whole number >= 0 or null", "offers.0.capacity"),
        ([{"id": "a", "cost": 1, "capacity": True}], "capacity must be", "offers.0.capacity"),
        ([{"id": "a", "cost": 1, "cost_when": "accepted", "acceptance_rate": 1.5}],
         "acceptance_rate must be a number from 0 to 1, got 1.5", "offers.0.acceptance_rate"),
        ([{"id": "a", "cost": 1, "acceptance_rate": 0.5}],
         "acceptance_rate applies only to an offer paid on acceptance",
         "offers.0.acceptance_rate"),
        ([{"id": "a", "cost": 1, "price": 2}], "unknown field(s) price", "offers.0.price"),
    ],
)  # fmt: skip
def test_offers_are_validated_with_the_offer_and_field_named(offers, message, field):
    with pytest.raises(InvalidInputError) as err:
        parse_offers(offers, source="offers.json")
    assert err.value.message.startswith("offers.json: ")
    assert message in err.value.message
    assert err.value.field == field


def test_offers_file(tmp_path):
    path = tmp_path / "offers.json"
    path.write_text(json.dumps([{"id": "call", "cost": 2}, {"id": "v", "cost": 30,
                                "cost_when": "accepted", "acceptance_rate": 0.2, "capacity": 5}]))  # fmt: skip
    call, voucher = load_offers(path)
    assert call == Offer("call", 2.0)
    assert voucher == Offer("v", 30.0, "accepted", 5, 0.2) and voucher.expected_cost == 6.0
    path.write_text("[{")
    with pytest.raises(InvalidInputError, match="offers.json: not a JSON file"):
        load_offers(path)
    with pytest.raises(InvalidInputError, match="missing.json: offers file not found"):
        load_offers(tmp_path / "missing.json")


def test_bad_budget_and_shapes():
    with pytest.raises(InvalidInputError, match="budget must be a number >= 0, got -1"):
        plan(IDS, UPLIFT, VALUE, OFFERS, -1)
    with pytest.raises(InvalidInputError, match=r"expected \(3 customers, 2 offers\)"):
        plan(IDS, UPLIFT[:, :1], VALUE, OFFERS, 10.0)
