"""``cvm report migration`` on the demo models, and the label migration logged at retrain."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from models.customer_view import segment_frame
from models.features import summarize
from models.migration import GONE, NEW, discounted_value
from training import migration_report as mr
from training.cli import main

AS_OF = pd.Timestamp("2025-12-31")


def test_period_profit_by_hand():
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "b", "c"],
            "timestamp": pd.to_datetime(
                [
                    "2025-01-31 12:00",
                    "2025-02-10 00:00",
                    "2025-02-20 00:00",
                    "2025-03-01 00:00",
                    "2025-02-28 23:00",
                ]
            ),
            "amount": [100.0, 50.0, 40.0, 30.0, 10.0],
            "cost": [0.0, 30.0, 20.0, np.nan, 5.0],
        }
    )
    # from the day after 2025-01-31 to 2025-02-28: a's 50 (cost 30), b's 40 (cost 20), c's 10
    # (cost 5); b's purchase of 1 March is after the window, a's of 31 January before it
    profit, basis = mr.period_profit(tx, pd.Timestamp("2025-01-31"), pd.Timestamp("2025-02-28"))
    assert profit.to_dict() == {"a": 20.0, "b": 20.0, "c": 5.0}
    assert basis == "profit (amount - cost)"
    # to 1 March: b's 30 has no cost, so it gets the margin of the costed purchases
    # 1 − 55 / 100 = 0.45 → 13.5
    profit, basis = mr.period_profit(tx, pd.Timestamp("2025-01-31"), pd.Timestamp("2025-03-01"))
    assert profit["b"] == pytest.approx(20.0 + 13.5)
    assert "1 purchases without a cost at margin 0.450" in basis
    revenue, basis = mr.period_profit(
        tx.drop(columns="cost"), pd.Timestamp("2025-01-31"), pd.Timestamp("2025-02-28")
    )
    assert revenue.to_dict() == {"a": 50.0, "b": 40.0, "c": 10.0} and basis.startswith("revenue")
    margin, _ = mr.period_profit(
        tx, pd.Timestamp("2025-01-31"), pd.Timestamp("2025-02-28"), margin=0.5
    )
    assert margin.to_dict() == {"a": 25.0, "b": 20.0, "c": 5.0}


def test_labels_are_those_cvm_score_gives(trained_store, demo_data):
    from training.batch import score_customers

    transactions, customers, _ = demo_data
    models = trained_store["result"].models
    date = pd.Timestamp("2025-09-30")
    scored = score_customers(models, transactions, customers, date, progress=lambda m: None)
    scored = scored.set_index("customer_id")
    for by, column in (("value_matrix", "value_type"), ("lifecycle", "lifecycle_stage")):
        labels = mr.labels_at(models, transactions, customers, date, by)
        pd.testing.assert_series_equal(
            labels.sort_index(), scored[column].astype(str).sort_index(), check_names=False
        )
    # a churn date on or before the date makes the customer gone
    first = str(scored.index[0])
    churned = pd.DataFrame({"customer_id": [first], "churn_date": [pd.Timestamp("2025-09-30")]})
    labels = mr.labels_at(models, transactions, churned, date, "rfm")
    assert labels[first] == GONE and (labels.drop(first) != GONE).all()


@pytest.fixture(scope="module")
def demo_files(demo_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("migration")
    transactions, customers, _ = demo_data
    transactions.to_csv(folder / "tx.csv", index=False)
    customers.to_csv(folder / "customers.csv", index=False)
    return folder


def test_cvm_report_migration(trained_store, demo_data, demo_files, capsys):
    folder = demo_files
    argv = [
        "report",
        "migration",
        "--transactions",
        str(folder / "tx.csv"),
        "--from",
        "2025-06-30",
        "--to",
        "2025-12-31",
        "--by",
        "value_matrix",
        "--periods",
        "3",
        "--csv",
        str(folder / "vm.csv"),
        "--chart",
        str(folder / "vm.png"),
        "-q",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert (
        "Customer migration by value_matrix: 2025-06-30 -> 2025-12-31 (one period = 184 days)"
        in out
    )
    # 184 days at 10 % a year: 1.1 ** (184 / 365.25) − 1 = 4.92 % per period
    assert "discount 4.92% per period = 10% a year" in out
    assert (folder / "vm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    transactions = demo_data[0]
    long = pd.read_csv(folder / "vm.csv")
    assert long.columns.tolist() == ["from_state", "to_state", "customers", "probability"]
    counts = long.pivot(index="from_state", columns="to_state", values="customers")
    states = ["gold", "meteor", "stream", "burden", GONE]
    # every customer with a purchase by 30 June is counted once from a value type; those who
    # first bought after it once from (new); nobody is gone without churn dates
    labelled = summarize(transactions, "2025-06-30").index
    assert counts.loc[states[:-1]].to_numpy().sum() == len(labelled)
    assert counts.loc[NEW].sum() == len(summarize(transactions, AS_OF)) - len(labelled)
    assert counts[GONE].sum() == 0
    matrix = long.dropna(subset=["probability"]).pivot(
        index="from_state", columns="to_state", values="probability"
    )
    matrix = matrix.loc[states, states]
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    gold = counts.loc["gold", states]
    np.testing.assert_allclose(matrix.loc["gold"], gold / gold.sum())

    # the reward of gold: the mean profit from 1 July to 31 December of the customers gold
    # on 30 June (those without a purchase count 0)
    equity = pd.read_csv(folder / "vm_equity.csv").set_index("state")
    before = mr.labels_at(
        trained_store["result"].models,
        transactions,
        None,
        pd.Timestamp("2025-06-30"),
        "value_matrix",
    )
    window = transactions[transactions["timestamp"] > pd.Timestamp("2025-07-01")]
    profit = (window["amount"] - window["cost"]).groupby(window["customer_id"]).sum()
    gold_ids = before.index[before == "gold"]
    assert equity.loc["gold", "reward_per_period"] == pytest.approx(
        profit.reindex(gold_ids).fillna(0).mean()
    )
    # the equity is V = Σ_{t=0}^{3} (1 + d)^-t P^t R of the printed matrix and rewards
    rate = 1.1 ** (184 / 365.25) - 1
    value = discounted_value(matrix.to_numpy(), equity.loc[states, "reward_per_period"], 3, rate)
    np.testing.assert_allclose(equity.loc[states, "equity_per_customer"], value, rtol=1e-9)
    base = (equity["customers_now"] * equity["equity_per_customer"]).sum()
    assert (
        f"customer base equity (customers at 2025-12-31 x equity per customer): {base:,.2f}" in out
    )
    assert equity["customers_now"].sum() == len(summarize(transactions, AS_OF))


@pytest.mark.parametrize(
    ("dates", "message"),
    [
        (["--from", "2025-06-30"], "needs --from DATE and --to DATE"),
        (
            ["--from", "2025-06-30", "--to", "2025-03-31"],
            "--to 2025-03-31 is not after --from 2025-06-30",
        ),
        (
            ["--from", "2023-06-30", "--to", "2025-03-31"],
            "--from 2023-06-30 is before the first purchase in",
        ),
        (
            ["--from", "2025-06-30", "--to", "2026-03-31"],
            "--to 2026-03-31 is after the end of the data in",
        ),
    ],
)
def test_bad_dates_are_clear_errors(trained_store, demo_files, capsys, dates, message):
    argv = ["report", "migration", "--transactions", str(demo_files / "tx.csv"), *dates, "-q"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_retrain_logs_the_champion_to_challenger_label_migration(
    trained_store, demo_data, tmp_path, monkeypatch
):
    """The challenger: the trained run's holdout twins, with a segmentation fitted as of three
    months earlier (other labels for some customers). The training and the registry's
    bookkeeping are stubbed (nothing is registered or moved in the session's store, one run
    is added); the comparison and its logging run for real."""
    import mlflow

    from models.segments import CustomerSegments
    from training import registry, retrain, tracking
    from training.inputs import Inputs
    from training.pipeline import TrainConfig

    transactions, customers, _ = demo_data
    result = trained_store["result"]
    before = summarize(transactions, "2025-09-30")
    forecast = result.models["clv"].predict(before)
    earlier = CustomerSegments(k_min=4, k_max=4).fit(
        before.assign(
            probability_alive=forecast["probability_alive"].to_numpy(),
            expected_purchases=forecast["expected_purchases"].to_numpy(),
        )
    )
    challengers = {**result.holdout_models, "segmentation": earlier}
    challenger = dataclasses.replace(result, models=challengers)
    tracking.setup()
    with mlflow.start_run(run_name="label migration test") as run:
        pass
    run_id = run.info.run_id
    registered = {
        f: {"name": f"cvm-{f}", "version": "2", "alias": "challenger", "run_id": run_id}
        for f in ("segmentation", "churn", "clv")
    }
    monkeypatch.setattr(retrain, "train_and_register", lambda *a, **k: (challenger, registered))
    monkeypatch.setattr(registry, "alias_versions", lambda: {})
    monkeypatch.setattr(registry, "save_comparison", lambda *a, **k: None)
    inputs = Inputs(transactions, customers, AS_OF, Path("tx.csv"), None)
    comparison = retrain.retrain(
        inputs, TrainConfig(as_of=AS_OF), result.models, progress=lambda m: None
    )
    client = MlflowClient()
    logged = client.get_run(run_id).data.metrics
    artifacts = {a.path for a in client.list_artifacts(run_id, "label_migration")}
    table = pd.read_csv(client.download_artifacts(run_id, "label_migration/rfm.csv", str(tmp_path)))

    summary = summarize(transactions, AS_OF)
    old = segment_frame(result.models, summary)
    new = segment_frame(challengers, summary)
    for by, column in (
        ("rfm", "rfm_segment"),
        ("lifecycle", "lifecycle_stage"),
        ("cluster", "cluster"),
    ):
        kept = float((old[column].to_numpy() == new[column].to_numpy()).mean())
        assert logged[f"label_kept_share_{by}"] == pytest.approx(kept, abs=1e-12)
        assert comparison.label_kept_share[by] == pytest.approx(kept, abs=1e-12)
        assert {f"label_migration/{by}.csv", f"label_migration/{by}.png"} <= artifacts
    assert 0.5 < logged["label_kept_share_rfm"] < 1.0  # the twin relabels some customers
    # the CSV: every customer once, no one new or gone (the same customers on both sides)
    assert table["customers"].sum() == len(summary)
    moved = table[table["from_state"] != table["to_state"]]["customers"].sum()
    assert 1 - moved / len(summary) == pytest.approx(logged["label_kept_share_rfm"])
    assert table.loc[table["to_state"] == GONE, "customers"].sum() == 0


def test_a_csv_name_without_csv_is_refused_before_anything_loads(capsys):
    argv = ["report", "migration", "--transactions", "nowhere.csv", "--from", "2025-01-31"]
    assert main([*argv, "--to", "2025-06-30", "--csv", "out.xlsx", "-q"]) == 2
    assert "--csv out.xlsx: use a file name ending in .csv" in capsys.readouterr().err
