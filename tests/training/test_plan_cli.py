"""``cvm plan``: the champion models score the customers, the plan goes to a file."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from training.cli import main


def test_cvm_plan_writes_the_contact_list_and_prints_the_summary(
    trained_store, demo_data, tmp_path, capsys
):
    transactions, customers, _ = demo_data
    tx, cust = tmp_path / "tx.csv", tmp_path / "customers.csv"
    transactions.to_csv(tx, index=False)
    customers.to_csv(cust, index=False)
    offers = tmp_path / "offers.json"
    offers.write_text(
        json.dumps(
            [
                {"id": "call", "cost": 1.0},
                {"id": "voucher", "cost": 5.0, "cost_when": "accepted", "acceptance_rate": 0.4,
                 "capacity": 20},
            ]
        )
    )  # fmt: skip
    out = tmp_path / "plan.csv"
    argv = ["plan", "--transactions", str(tx), "--customers", str(cust), "--as-of",
            "2025-12-31", "--budget", "150", "--offers", str(offers), "--acquisition-cost",
            "50", "--out", str(out), "-q"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    plan = pd.read_csv(out, dtype={"customer_id": str})
    assert list(plan.columns) == [
        "customer_id", "offer", "expected_save", "value", "expected_incremental_profit",
        "expected_cost", "roi",
    ]  # fmt: skip
    assert len(plan) > 0 and plan["customer_id"].is_unique
    assert plan["expected_cost"].sum() <= 150 + 1e-6
    assert (plan["offer"] == "voucher").sum() <= 20
    assert (plan["expected_incremental_profit"] > 0).all()
    assert f"customers contacted:          {len(plan):,}" in printed
    assert "assumption-based" in printed and "optimal" in printed
    assert "to replace by acquisition" in printed

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": "call", "cost": -1}]))
    assert main([*argv[:10], str(bad), *argv[11:]]) == 2
    assert "bad.json: offer 'call' (offers.0): cost must be a number >= 0, got -1" in (
        capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        main([*argv[:8], "-5", *argv[9:]])
