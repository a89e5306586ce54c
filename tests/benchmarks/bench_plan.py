"""Retention planning against the truth of a simulated campaign: ``make bench-plan``.

A synthetic data set with two randomised campaigns (``training.synthetic.generate_campaigns``)
is cut the day before the second campaign is sent. The four families are trained on that
history (the uplift model sees the first campaign only), and a plan is made for the second
campaign's customers. The generator knows every such customer's *true* uplift for every
offer, so each targeting rule is scored on the same footing:

    true incremental profit = Σ over the contacts (true uplift × value − offer cost)

with ``value`` the CLV every rule sees (the champion CLV model's). The plan (uplift model +
allocation) is compared with the two rules marketing teams use without an uplift model,
highest churn probability first and highest value at risk first, each sending one offer to as
many customers as the budget pays for (every offer tried, the best kept), and also when they
are allowed to spend only what the plan spent. The sleeping dogs (customers whom every offer
drives away) must be contacted less often than the average customer.

Run: ``python -m tests.benchmarks.bench_plan [--customers 10000] [--seeds 5,6,7]``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

BUDGET_PER_CUSTOMER = 2.5  # the budget: a quarter of the customers at the middle offer's cost


@dataclass
class PlanTruth:
    """The true outcome of the plan and of the baseline rules on one simulated campaign."""

    customers: int
    budget: float
    plan_contacts: int
    plan_spend: float
    plan_profit: float
    plan_expected_profit: float
    rules: dict[str, dict[str, Any]]  # rule -> {"offer", "contacts", "profit", "same_spend_profit"}
    negative_customers: int
    negative_contact_rate: float
    contact_rate: float
    uplift_qini: float
    seconds: float

    def margins(self) -> dict[str, float]:
        """The plan's true profit minus each rule's (full budget and same spend)."""
        out = {}
        for rule, r in self.rules.items():
            out[rule] = self.plan_profit - r["profit"]
            out[f"{rule} (same spend)"] = self.plan_profit - r["same_spend_profit"]
        return out

    def lines(self) -> list[str]:
        rows = [
            f"{self.customers:,} customers, budget {self.budget:,.0f}, holdout Qini of the "
            f"uplift model {self.uplift_qini:.4f}",
            f"  plan: {self.plan_contacts:,} contacts, spend {self.plan_spend:,.0f}, true "
            f"incremental profit {self.plan_profit:,.0f} (expected {self.plan_expected_profit:,.0f})",
        ]
        for rule, r in self.rules.items():
            rows.append(
                f"  {rule}: best offer {r['offer']}, {r['contacts']:,} contacts, true profit "
                f"{r['profit']:,.0f}; at the plan's spend {r['same_spend_profit']:,.0f}"
            )
        for name, margin in self.margins().items():
            rows.append(f"  margin of the plan over {name}: {margin:+,.0f}")
        rows.append(
            f"  customers every offer drives away: {self.negative_customers:,}, contacted "
            f"{self.negative_contact_rate:.1%} against {self.contact_rate:.1%} of all customers"
        )
        return rows


def evaluate(customers: int = 10_000, seed: int = 5) -> PlanTruth:
    """Generate, train on the history before the second campaign, plan, score against the
    truth (see the module's docstring)."""
    from models.planner import Offer
    from training import batch, synthetic
    from training.pipeline import TrainConfig, train_all
    from training.plan import plan_campaign

    start = time.perf_counter()
    tx, table, truth = synthetic.generate(customers, seed=seed, as_of="2025-12-31")
    tx, campaigns, truth = synthetic.generate_campaigns(tx, table, truth, seed=seed)
    last = sorted(campaigns["campaign_id"].unique())[-1]
    sent = pd.Timestamp(campaigns.loc[campaigns["campaign_id"] == last, "sent_at"].min())
    as_of = sent.normalize() - pd.Timedelta(days=1)
    history = tx[tx["timestamp"] < sent.normalize()]
    earlier = campaigns[campaigns["campaign_id"] != last]
    result = train_all(
        history, table, TrainConfig(as_of=as_of), progress=lambda m: None, campaigns=earlier
    )
    members = campaigns.loc[campaigns["campaign_id"] == last, "customer_id"].unique()
    tx_members = history[history["customer_id"].isin(members)]
    table_members = table[table["customer_id"].isin(members)]
    offers = [Offer(id=o, cost=cost) for o, (cost, _) in synthetic.OFFERS.items()]
    cost = {o.id: o.cost for o in offers}
    budget = BUDGET_PER_CUSTOMER * len(members)

    plan = plan_campaign(
        result.models, tx_members, table_members, as_of, offers, budget, progress=lambda m: None
    )
    scored = batch.score_customers(
        result.models, tx_members, table_members, as_of, progress=lambda m: None
    ).set_index("customer_id")
    value = scored["clv"].clip(lower=0.0)
    rows = truth.campaigns[truth.campaigns["campaign_id"] == last]
    true_uplift = rows.pivot_table(index="customer_id", columns="offer", values="true_uplift")

    def true_profit(assignment: pd.Series) -> float:
        if assignment.empty:
            return 0.0
        uplift = true_uplift.to_numpy()[
            true_uplift.index.get_indexer(assignment.index),
            true_uplift.columns.get_indexer(assignment.to_numpy()),
        ]
        spend = sum(cost[o] for o in assignment.to_numpy())
        return float(np.sum(uplift * value.reindex(assignment.index).to_numpy()) - spend)

    chosen = plan.contacts.set_index("customer_id")["offer"]
    spend = float(plan.summary["expected_spend"])
    rules = {}
    for rule, column in (
        ("highest churn probability", "churn_probability"),
        ("highest value at risk", "value_at_risk"),
    ):
        order = scored.sort_values(column, ascending=False, kind="stable").index
        best: dict[str, Any] | None = None
        same_spend = -np.inf
        for offer in offers:
            k = int(budget // offer.cost)
            profit = true_profit(pd.Series(offer.id, index=order[:k]))
            if best is None or profit > best["profit"]:
                best = {"offer": offer.id, "contacts": min(k, len(order)), "profit": profit}
            same = true_profit(pd.Series(offer.id, index=order[: int(spend // offer.cost)]))
            same_spend = max(same_spend, same)
        assert best is not None
        rules[rule] = {**best, "same_spend_profit": float(same_spend)}
    negative = true_uplift.index[(true_uplift < 0).all(axis=1)]
    return PlanTruth(
        customers=len(members),
        budget=budget,
        plan_contacts=len(chosen),
        plan_spend=spend,
        plan_profit=true_profit(chosen),
        plan_expected_profit=float(plan.summary["expected_incremental_profit"]),
        rules=rules,
        negative_customers=len(negative),
        negative_contact_rate=float(chosen.index.isin(negative).sum() / max(len(negative), 1)),
        contact_rate=len(chosen) / len(members),
        uplift_qini=float(result.metrics["uplift_qini"]),
        seconds=time.perf_counter() - start,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seeds", default="5,6,7")
    args = parser.parse_args(argv)
    failed = 0
    for seed in [int(s) for s in args.seeds.split(",")]:
        result = evaluate(args.customers, seed)
        print(f"seed {seed} ({result.seconds:.0f} s):")
        print("\n".join(result.lines()))
        ok = all(m > 0 for m in result.margins().values()) and (
            result.negative_contact_rate < result.contact_rate
        )
        print(
            f"  {'PASS' if ok else 'FAIL'}: the plan beats every rule and leaves the sleeping "
            "dogs out more often than the average customer"
        )
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
