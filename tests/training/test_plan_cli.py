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


def test_cvm_plan_writes_the_send_with_a_control_group_per_offer(
    trained_store, demo_data, tmp_path, capsys
):
    """``--campaign-out``: a campaigns file the loader and the report read as it is; a fifth
    of each offer's customers held out, each naming the offer it was held out from."""
    from training.campaigns import load_campaigns

    transactions, customers, _ = demo_data
    tx = tmp_path / "tx.csv"
    transactions.to_csv(tx, index=False)
    offers = tmp_path / "offers.json"
    offers.write_text(json.dumps([{"id": "call", "cost": 1.0}, {"id": "mail", "cost": 0.5}]))
    send = tmp_path / "send.csv"
    argv = ["plan", "--transactions", str(tx), "--as-of", "2025-12-31", "--budget", "200",
            "--offers", str(offers), "--out", str(tmp_path / "plan.csv"), "-q",
            "--campaign-out", str(send), "--campaign-id", "winter"]  # fmt: skip
    assert main(argv) == 0
    said = capsys.readouterr().err
    plan = pd.read_csv(tmp_path / "plan.csv", dtype={"customer_id": str})
    frame, report = load_campaigns(send)
    assert report.n_quarantined == 0
    assert sorted(frame["customer_id"]) == sorted(plan["customer_id"])
    assert set(frame["campaign_id"]) == {"winter"}
    assert set(frame["sent_at"]) == {pd.Timestamp("2026-01-01")}  # the day after --as-of
    merged = frame.merge(plan, on="customer_id")
    assert (merged["planned_offer"] == merged["offer"]).all()
    for offer, group in merged.groupby("offer"):
        held = group["treatment"] == "control"
        assert held.sum() == round(0.2 * len(group)), offer
        assert (group.loc[~held, "treatment"] == offer).all()
        assert (group.loc[held, "cost"] == 0).all()
        assert group.loc[~held, "cost"].to_numpy() == pytest.approx(
            group.loc[~held, "expected_cost"].to_numpy()
        )
    held = int((frame["treatment"] == "control").sum())
    assert f"{len(frame) - held:,} contacts, {held:,} held out as control" in said
    # the same seed draws the same control group; a share that leaves none is refused
    again = tmp_path / "again.csv"
    assert main([*argv[:-4], "--campaign-out", str(again), "--campaign-id", "winter"]) == 0
    assert again.read_text() == send.read_text()
    assert main([*argv, "--control-share", "0"]) == 2
    assert "a campaign without a control group cannot be measured" in capsys.readouterr().err
