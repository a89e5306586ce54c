"""Acceptance of the retention planner against the generator's truth: on a campaign the
models never saw, the plan's true incremental profit beats targeting by highest churn
probability and by highest value at risk under the same budget (and at the plan's own spend),
and the customers every offer drives away are contacted less often than the average one.
The margins are printed (``pytest -s``; ``make bench-plan`` runs more seeds)."""

from __future__ import annotations

import pytest

from tests.benchmarks.bench_plan import evaluate


@pytest.fixture(scope="module")
def outcome():
    return evaluate(customers=10_000, seed=5)


def test_the_plan_beats_churn_and_value_at_risk_targeting(outcome):
    print("\n" + "\n".join(outcome.lines()))
    assert outcome.plan_spend <= outcome.budget + 1e-6
    assert outcome.plan_profit > 0
    margins = outcome.margins()
    assert set(margins) == {
        "highest churn probability",
        "highest churn probability (same spend)",
        "highest value at risk",
        "highest value at risk (same spend)",
    }
    for rule, margin in margins.items():
        assert margin > 0, f"{rule}: {margin:+.0f}"


def test_sleeping_dogs_are_left_out_more_often(outcome):
    assert outcome.negative_customers > 100
    assert outcome.negative_contact_rate < outcome.contact_rate
