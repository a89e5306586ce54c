"""The README's worked example of a retention campaign (plan → simulated campaign → report →
retrain → promote) runs as written, in a fresh folder with its own registry. Then its claims
are checked against the generator's truth: the history before the send day is the same in both worlds,
the simulated campaign is the plan with a 20 % control group, the report's interval for all
offers covers the true mean uplift of the treated customers, and the retrained uplift model
is promoted."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pandas as pd
import pytest

from tests.e2e.server import ROOT

pytestmark = pytest.mark.e2e

HEADING = "#### Worked example: plan, simulated campaign, report, retrain"
SEND_DAY = "2025-09-22"


def _example() -> str:
    text = (ROOT / "README.md").read_text()
    assert HEADING in text, "the README lost its worked example"
    after = text.split(HEADING, 1)[1]
    block = re.search(r"^```bash\n(.*?)^```", after, re.MULTILINE | re.DOTALL)
    assert block is not None
    return block.group(1)


def test_the_worked_example_runs_and_its_claims_hold(tmp_path):
    script = _example()
    shim = tmp_path / ".venv" / "bin" / "cvm"
    shim.parent.mkdir(parents=True)
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m training "$@"\n')
    shim.chmod(0o755)
    env = {
        **os.environ,
        "CVM_HOME": str(tmp_path / ".cvm"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
    }
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout

    # the plan: within the budget, offers from the file
    plan = pd.read_csv(tmp_path / "plan.csv", dtype={"customer_id": str})
    assert len(plan) > 50
    assert plan["expected_cost"].sum() <= 2500 + 1e-6
    assert set(plan["offer"]) <= {"reminder", "discount", "voucher"}
    assert (plan["offer"] == "voucher").sum() <= 150

    # the same history up to the send day in both worlds
    def before(folder: str) -> pd.DataFrame:
        tx = pd.read_csv(tmp_path / folder / "transactions.csv", dtype={"customer_id": str})
        return tx[tx["timestamp"] < SEND_DAY].reset_index(drop=True)

    pd.testing.assert_frame_equal(before("history"), before("after"))

    # the simulated campaign is the plan, with about a fifth held out as control
    campaigns = pd.read_csv(tmp_path / "after" / "campaigns.csv", dtype={"customer_id": str})
    sent = campaigns[campaigns["campaign_id"] == "plan"]
    assert sorted(sent["customer_id"]) == sorted(plan["customer_id"])
    merged = sent.merge(plan, on="customer_id")
    treated = merged[merged["treatment"] != "control"]
    assert (treated["treatment"] == treated["offer"]).all()
    assert 0.12 < (merged["treatment"] == "control").mean() < 0.28
    assert set(campaigns["campaign_id"]) == {"camp1", "plan"}

    # the report's interval for all offers covers the true mean uplift of the treated
    truth = pd.read_csv(tmp_path / "after" / "campaign_truth.csv", dtype={"customer_id": str})
    truth = truth[(truth["campaign_id"] == "plan") & (truth["treatment"] == truth["offer"])]
    true_points = 100 * truth["true_uplift"].mean()
    row = re.search(
        r"^all offers\s+all control \([\d,]+\)\s+([+-][\d.]+) \[([+-][\d.]+), ([+-][\d.]+)\]",
        out,
        re.MULTILINE,
    )
    assert row is not None, out
    estimate, low, high = (float(v) for v in row.groups())
    print(f"\nall offers: {estimate:+.1f} [{low:+.1f}, {high:+.1f}], truth {true_points:+.1f}")
    assert low <= true_points <= high
    # each offer is compared with the customers held out from it
    for offer in sorted(set(treated["offer"])):
        held = int(((merged["treatment"] == "control") & (merged["offer"] == offer)).sum())
        shown = rf"^\s*{offer}\s+held out from {offer} \({held:,}\)"
        assert re.search(shown, out, re.MULTILINE), out
    assert (tmp_path / "plan.png").stat().st_size > 0

    # retrained on both campaigns, measured on the plan's; promoted when the gate says so
    assert "registered cvm-uplift version 2 as @challenger" in out
    assert "(latest campaigns: plan)" in run.stderr
    assert "compared only with the offer they were held out from" in run.stderr
    from mlflow import MlflowClient

    uri = env["MLFLOW_TRACKING_URI"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # not the session's store
    gate = re.search(
        r"uplift: (?:passes|fails) the gate: uplift_qini ([\d.-]+) vs champion ([\d.-]+) \((\w+)",
        out,
    )
    assert gate is not None, out
    challenger, champion, verdict = float(gate[1]), float(gate[2]), gate[3]
    passed = challenger >= champion - 0.005
    assert verdict == ("ok" if passed else "WORSE")
    expected = "2" if passed else "1"
    assert str(client.get_model_version_by_alias("cvm-uplift", "champion").version) == expected
    for family in ("cvm-churn", "cvm-clv", "cvm-segmentation"):  # their gates passed here
        assert str(client.get_model_version_by_alias(family, "champion").version) == "2"
