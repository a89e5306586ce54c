"""The campaign report: intervals on a hand-made campaign, their coverage on simulated ones,
and ``cvm report campaign`` end to end (terminal, chart, MLflow run).

The command test on hand-made outcomes puts a minimal stand-in of ``training.campaigns`` in
place (its outcomes are given); the last test runs the real loader and outcomes on generated
campaigns with known effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from models.exceptions import InvalidInputError
from training.campaign_report import (
    campaign_report,
    format_report,
    newcombe_difference,
    plot_campaign,
    welch_difference,
    wilson_interval,
)


def test_newcombe_interval_reproduces_the_published_examples():
    # Newcombe (1998), Statistics in Medicine 17:873-890, table II, method 10
    for (k1, n1, k0, n0), (low, high) in {
        (56, 70, 48, 80): (0.0524, 0.3339),
        (9, 10, 3, 10): (0.1705, 0.8090),
        (5, 56, 0, 29): (-0.0381, 0.1926),
    }.items():
        d, lo, hi = newcombe_difference(k1, n1, k0, n0)
        assert d == pytest.approx(k1 / n1 - k0 / n0)
        assert (round(lo, 4), round(hi, 4)) == (low, high)
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)


def _hand_made() -> pd.DataFrame:
    control_spend = [0, 0, 0, 0, 0, 0, 20, 30, 40, 50]  # 4 of 10 retained, mean 14
    offer_spend = [0, 0, 0, 10, 20, 30, 40, 50, 60, 70]  # 7 of 10 retained, mean 28
    rows = [("control", s, 0.0) for s in control_spend] + [("v", s, 5.0) for s in offer_spend]
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(20)],
            "campaign_id": "spring",
            "treatment": [r[0] for r in rows],
            "retained": [r[1] > 0 for r in rows],
            "spend": [float(r[1]) for r in rows],
            "margin": [0.5 * r[1] for r in rows],
            "cost": [r[2] for r in rows],
        }
    )


def test_a_hand_made_campaign():
    table = campaign_report(_hand_made(), "spring").set_index("arm")
    assert list(table.index) == ["v", "control"]
    v, control = table.loc["v"], table.loc["control"]
    assert (v["customers"], v["retained"], v["retention_rate"]) == (10, 7, 0.7)
    assert (control["retained"], control["retention_rate"]) == (4, 0.4)
    # Wilson: 7/10 [0.39678, 0.89221], 4/10 [0.16818, 0.68733]; Newcombe:
    # 0.3 - sqrt((0.7 - 0.39678)^2 + (0.68733 - 0.4)^2) = -0.11773,
    # 0.3 + sqrt((0.89221 - 0.7)^2 + (0.4 - 0.16818)^2) = 0.60114
    assert (v["retention_rate_low"], v["retention_rate_high"]) == pytest.approx(
        (0.39678, 0.89221), abs=1e-5
    )
    assert (control["retention_rate_low"], control["retention_rate_high"]) == pytest.approx(
        (0.16818, 0.68733), abs=1e-5
    )
    assert v["retention_diff"] == pytest.approx(0.3)
    assert v["retention_diff_low"] == pytest.approx(-0.11773, abs=1e-5)
    assert v["retention_diff_high"] == pytest.approx(0.60114, abs=1e-5)
    assert v["incremental_customers"] == pytest.approx(3.0)
    # Welch: spend 28 - 14 = 14; the same interval as scipy's Welch test
    welch = stats.ttest_ind(
        [0, 0, 0, 10, 20, 30, 40, 50, 60, 70], [0, 0, 0, 0, 0, 0, 20, 30, 40, 50], equal_var=False
    ).confidence_interval(0.95)
    assert v["spend_diff"] == pytest.approx(14.0)
    assert (v["spend_diff_low"], v["spend_diff_high"]) == pytest.approx((welch.low, welch.high))
    assert (round(welch.low, 4), round(welch.high, 4)) == (-7.8238, 35.8238)
    # profit: (14 - 7) x 10 treated - cost 50 = 20; ROI 20 / 50
    assert v["cost"] == 50.0
    assert v["incremental_profit"] == pytest.approx(20.0)
    assert v["incremental_profit_low"] == pytest.approx(0.5 * welch.low * 10 - 50)
    assert v["incremental_profit_high"] == pytest.approx(0.5 * welch.high * 10 - 50)
    assert v["roi"] == pytest.approx(0.4)
    assert v["roi_low"] == pytest.approx((0.5 * welch.low * 10 - 50) / 50)
    # a margin rate replaces the outcomes' margins: 14 x 0.2 x 10 - 50 = -22
    other = campaign_report(_hand_made(), "spring", margin_rate=0.2).set_index("arm")
    assert other.loc["v", "incremental_profit"] == pytest.approx(-22.0)
    text = format_report(table.reset_index(), "spring")
    assert "+30.0 [-11.8, +60.1]" in text and "+14.00 [-7.82, +35.82]" in text
    assert "70.0 [39.7, 89.2]" in text
    assert "Newcombe" in text and "Welch" in text


def test_several_offers_get_an_all_offers_row_and_a_chart(tmp_path):
    frame = _hand_made()
    frame.loc[frame.index[15:], "treatment"] = "w"
    table = campaign_report(frame, "spring")
    assert list(table["arm"]) == ["v", "w", "all offers", "control"]
    pooled = table.set_index("arm").loc["all offers"]
    assert (pooled["customers"], pooled["retained"], pooled["cost"]) == (10, 7, 50.0)
    path = plot_campaign(table, tmp_path / "chart.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _planned() -> pd.DataFrame:
    """A planned campaign: offer ``a`` went to loyal customers (control retention 0.8), offer
    ``b`` to slipping ones (0.2); a control group was held out from each. Both offers add 10
    points of retention, which only a comparison with each offer's own held-out customers
    shows (the whole control group retains 0.5)."""
    arms = [("a", True)] * 90 + [("a", False)] * 10 + [("b", True)] * 30 + [("b", False)] * 70
    held = [("a", True)] * 40 + [("a", False)] * 10 + [("b", True)] * 10 + [("b", False)] * 40
    rows = [(o, o, k) for o, k in arms] + [("control", o, k) for o, k in held]
    return pd.DataFrame(
        {
            "campaign_id": "plan",
            "treatment": [r[0] for r in rows],
            "planned_offer": [r[1] for r in rows],
            "retained": [r[2] for r in rows],
            "spend": [10.0 * r[2] for r in rows],
            "margin": [5.0 * r[2] for r in rows],
            "cost": [1.0 if r[0] != "control" else 0.0 for r in rows],
        }
    )


def test_a_planned_campaign_compares_each_offer_with_the_customers_held_out_from_it():
    table = campaign_report(_planned(), "plan").set_index("arm")
    assert list(table.index) == ["a", "b", "all offers", "control"]
    a, b, pooled = table.loc["a"], table.loc["b"], table.loc["all offers"]
    assert a["retention_diff"] == pytest.approx(0.9 - 0.8)
    assert b["retention_diff"] == pytest.approx(0.3 - 0.2)
    assert (a["control_group"], a["control_customers"]) == ("held out from a", 50)
    assert (b["control_group"], b["control_customers"]) == ("held out from b", 50)
    # the same share held out from each offer: the pooled comparison is fair
    assert pooled["retention_diff"] == pytest.approx(0.6 - 0.5)
    assert (pooled["control_group"], pooled["control_customers"]) == ("all control", 100)
    # profit: (4.5 - 4.0) x 100 - 100 = -50 for a; (1.5 - 1.0) x 100 - 100 = -50 for b
    assert a["incremental_profit"] == pytest.approx(-50.0)
    text = format_report(table.reset_index(), "plan")
    assert "held out from a (50)" in text and "all control (100)" in text

    # without the planned offers every offer meets the whole control group (0.5 retained)
    pooled_only = campaign_report(_planned().drop(columns="planned_offer"), "plan")
    by_arm = pooled_only.set_index("arm")
    assert by_arm.loc["a", "retention_diff"] == pytest.approx(0.9 - 0.5)
    assert by_arm.loc["b", "retention_diff"] == pytest.approx(0.3 - 0.5)
    assert set(pooled_only["control_group"].dropna()) == {"all control"}
    # a control row without its offer: the whole control group, as without the column
    partial = _planned()
    partial.loc[partial.index[-1], "planned_offer"] = None
    assert campaign_report(partial, "plan").set_index("arm").loc[
        "a", "retention_diff"
    ] == pytest.approx(0.4)


def test_an_offer_with_no_customer_held_out_from_it_is_named():
    frame = _planned()
    frame.loc[frame["treatment"] == "control", "planned_offer"] = "a"
    with pytest.raises(InvalidInputError, match="no control customer was held out from offer 'b'"):
        campaign_report(frame, "plan")


def test_errors_name_the_campaign():
    with pytest.raises(
        InvalidInputError,
        match=r"campaign 'autumn' is not in the campaigns file \(campaigns: spring\)",
    ):
        campaign_report(_hand_made(), "autumn")
    no_control = _hand_made().query("treatment != 'control'")
    with pytest.raises(InvalidInputError, match="has no control group"):
        campaign_report(no_control, "spring")


def _simulated(rng, n: int = 300) -> pd.DataFrame:
    """A randomised campaign: retention 0.50 (control) -> 0.56 (offer), the spend of retained
    customers exponential with mean 80 (control) or 90 (offer)."""
    kept = np.concatenate([rng.random(n) < 0.56, rng.random(n) < 0.50])
    scale = np.r_[np.full(n, 90.0), np.full(n, 80.0)]
    spend = np.where(kept, rng.exponential(scale), 0.0)
    return pd.DataFrame(
        {
            "campaign_id": "sim",
            "treatment": ["offer"] * n + ["control"] * n,
            "retained": kept,
            "spend": spend,
            "margin": 0.3 * spend,
            "cost": np.r_[np.full(n, 2.0), np.zeros(n)],
        }
    )


# The true effects of :func:`_simulated`: 0.06 in retention, 0.56 x 90 - 0.50 x 80 = 10.4 in
# mean spend, and 0.3 x 10.4 x 300 - 600 = 336 of incremental profit.
TRUE_RETENTION, TRUE_SPEND, TRUE_PROFIT = 0.06, 10.4, 336.0


def test_the_report_covers_the_true_effect_of_a_simulated_campaign():
    """One campaign of 5,000 + 5,000 customers (a 95 % interval misses one campaign in 20:
    the next test measures how often)."""
    row = campaign_report(_simulated(np.random.default_rng(0), 5000), "sim").set_index("arm")
    offer = row.loc["offer"]
    for name, truth in (("retention_diff", TRUE_RETENTION), ("spend_diff", TRUE_SPEND),
                        ("incremental_profit", 0.3 * TRUE_SPEND * 5000 - 2.0 * 5000)):  # fmt: skip
        assert offer[f"{name}_low"] <= truth <= offer[f"{name}_high"], name


def test_the_intervals_cover_the_true_effect_at_their_level():
    """1,000 simulated campaigns of 300 + 300 customers: each interval covers the truth in
    93-97 % of them (nominal 95 %)."""
    rng = np.random.default_rng(11)
    covered = np.zeros((1000, 2), dtype=bool)
    for i in range(1000):
        frame = _simulated(rng)
        offer, control = (
            frame[frame["treatment"] == "offer"],
            frame[frame["treatment"] == "control"],
        )
        _, low, high = newcombe_difference(
            int(offer["retained"].sum()), len(offer), int(control["retained"].sum()), len(control)
        )
        covered[i, 0] = low <= TRUE_RETENTION <= high
        _, low, high = welch_difference(offer["spend"], control["spend"])
        covered[i, 1] = low <= TRUE_SPEND <= high
    coverage = covered.mean(axis=0)
    print(f"coverage: retention {coverage[0]:.3f}, spend {coverage[1]:.3f} (nominal 0.95)")
    assert 0.93 <= coverage[0] <= 0.97
    assert 0.93 <= coverage[1] <= 0.97


def _stand_in_campaigns(monkeypatch, outcomes: pd.DataFrame) -> None:
    """``training.campaigns`` with its outcomes replaced: the outcomes are ``outcomes``
    (tests only; the campaigns file is read by the real loader)."""
    import training.campaigns as module

    def campaign_outcomes(campaigns, transactions, *, window_days=60, margin_rate=None):
        assert window_days == 45
        return outcomes[outcomes["campaign_id"].isin(campaigns["campaign_id"])]

    monkeypatch.setattr(module, "campaign_outcomes", campaign_outcomes)


def test_cvm_report_campaign(tmp_path, monkeypatch, capsys, demo_data):
    from mlflow import MlflowClient

    from training import config
    from training.cli import main

    outcomes = _hand_made()
    _stand_in_campaigns(monkeypatch, outcomes)
    campaigns = tmp_path / "campaigns.csv"
    outcomes.assign(sent_at="2025-10-01")[
        ["customer_id", "campaign_id", "sent_at", "treatment", "cost"]
    ].to_csv(campaigns, index=False)
    transactions = tmp_path / "tx.csv"
    demo_data[0].head(500).to_csv(transactions, index=False)
    chart = tmp_path / "campaign.png"
    argv = ["report", "campaign", "--campaign-id", "spring", "--campaigns", str(campaigns),
            "--transactions", str(transactions), "--window-days", "45", "--chart", str(chart),
            "-q"]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "campaign spring: treated vs control" in out
    assert "+30.0 [-11.8, +60.1]" in out
    assert chart.exists()
    run_id = err.strip().splitlines()[-1].rsplit(" ", 1)[-1]
    run = MlflowClient(config.tracking_uri()).get_run(run_id)
    assert run.data.params["campaign_id"] == "spring"
    assert run.data.metrics["v_retention_diff"] == pytest.approx(0.3)
    assert run.data.metrics["v_incremental_profit"] == pytest.approx(20.0)

    assert main([*argv[:3], "autumn", *argv[4:], "--no-mlflow"]) == 2
    assert "campaign 'autumn' is not in the campaigns file" in capsys.readouterr().err


def test_report_on_generated_campaigns_covers_the_true_effects(tmp_path):
    """The real path (campaigns file -> outcomes from the transactions -> report) on simulated
    randomised campaigns: the 95 % intervals of the retention difference hold the true average
    uplift the generator played in about 95 % of the time (10 data sets x 2 campaigns x 3
    offers; 57 of 60 here)."""
    from training import synthetic
    from training.campaign_report import report_from_files

    covered = []
    for seed in range(1, 11):
        transactions, customers, truth = synthetic.generate(4000, seed=seed, as_of="2025-12-31")
        transactions, campaigns, truth = synthetic.generate_campaigns(
            transactions, customers, truth, seed=seed
        )
        path = tmp_path / f"campaigns-{seed}.csv"
        campaigns.to_csv(path, index=False)
        effects = synthetic.campaign_effects(truth)
        for campaign_id in ("camp1", "camp2"):
            report = report_from_files(path, transactions, campaign_id).set_index("arm")
            for effect in effects[effects["campaign_id"] == campaign_id].itertuples():
                row = report.loc[effect.offer]
                low, high = row["retention_diff_low"], row["retention_diff_high"]
                covered.append(low <= effect.true_uplift <= high)
    assert len(covered) == 60
    assert sum(covered) >= 54, sum(covered)  # 90 %: a biased estimate would miss far more


def test_a_report_before_the_response_window_has_passed_says_so(tmp_path):
    """Read too early, the window is only partly in the data: the report says so (and the
    retention it shows is lower than it will be); a send after the data's last day has no
    outcomes yet and is an error naming the dates."""
    from training import synthetic
    from training.campaign_report import report_from_files

    transactions, customers, truth = synthetic.generate(1500, seed=2, as_of="2025-12-31")
    transactions, campaigns, _ = synthetic.generate_campaigns(
        transactions, customers, truth, seed=2
    )
    path = tmp_path / "campaigns.csv"
    campaigns.to_csv(path, index=False)
    full = report_from_files(path, transactions, "camp2")
    assert full.attrs["warnings"] == []
    early = transactions[transactions["timestamp"] < "2025-10-15"]
    partial = report_from_files(path, early, "camp2")
    (warning,) = partial.attrs["warnings"]
    assert warning.startswith("the 60-day response window of campaign 'camp2' ends on 2025-11-21")
    assert "after the last day of the transactions (2025-10-14)" in warning
    control = {t["arm"]: t["retention_rate"] for t in partial.to_dict(orient="records")}
    assert control["control"] < full.set_index("arm").loc["control", "retention_rate"]
    with pytest.raises(InvalidInputError, match=r"sent on 2025-09-22, after the last day of the"):
        report_from_files(path, transactions[transactions["timestamp"] < "2025-09-01"], "camp2")


def test_cvm_report_campaign_says_what_it_set_aside(tmp_path, capsys, monkeypatch):
    """The campaigns file is read as the other inputs are: an export run twice repeats rows,
    the repeats are set aside and the load line says how many and where (the report is the
    one of the file without them)."""
    from training import synthetic
    from training.campaign_report import report_from_files
    from training.cli import main

    monkeypatch.setenv("CVM_HOME", str(tmp_path / "home"))
    transactions, customers, truth = synthetic.generate(1500, seed=2, as_of="2025-12-31")
    transactions, campaigns, _ = synthetic.generate_campaigns(
        transactions, customers, truth, seed=2
    )
    clean, twice = tmp_path / "clean.csv", tmp_path / "twice.csv"
    campaigns.to_csv(clean, index=False)
    pd.concat([campaigns, campaigns.tail(40)]).to_csv(twice, index=False)
    tx = tmp_path / "tx.csv"
    transactions.to_csv(tx, index=False)
    argv = ["report", "campaign", "--campaign-id", "camp2", "--campaigns", str(twice),
            "--transactions", str(tx), "--chart", str(tmp_path / "c.png"), "--no-mlflow"]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    read = len(campaigns) + 40
    assert (
        f"twice.csv: read {read:,}, kept {len(campaigns):,}, quarantined 40 (duplicate 40)" in err
    )
    expected = report_from_files(clean, transactions, "camp2")
    retained = expected.set_index("arm")["retention_rate"]
    for arm, rate in retained.items():
        assert f"{arm}" in out and f"{100 * rate:.1f} [" in out
