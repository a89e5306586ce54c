"""Batch scoring and audiences with the champion models of the test store."""

import re

import pandas as pd
import pytest

from models.churn.features import churn_features
from models.churn.kpi import churn_table
from models.customer_view import score_frame
from models.features import summarize
from training.cli import main


@pytest.fixture(scope="module")
def scored_file(trained_store, demo_data, tmp_path_factory):
    transactions, customers, _ = demo_data
    folder = tmp_path_factory.mktemp("batch")
    transactions.to_csv(folder / "tx.csv", index=False)
    customers.to_csv(folder / "customers.csv", index=False)
    out = folder / "scored.parquet"
    code = main(
        [
            "score",
            "--transactions",
            str(folder / "tx.csv"),
            "--customers",
            str(folder / "customers.csv"),
            "--as-of",
            "2025-12-31",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    return out


def test_score_writes_one_row_per_customer_with_every_label(scored_file, demo_data, trained_store):
    transactions, customers, _ = demo_data
    scored = pd.read_parquet(scored_file)
    assert scored["customer_id"].is_unique and len(scored) == customers["customer_id"].nunique()
    for column in (
        "rfm_segment",
        "value_type",
        "cluster",
        "lifecycle_stage",
        "nine_grid",
        "nine_grid_strategy",
        "churn_probability",
        "risk_band",
        "clv",
        "clv_lower",
        "clv_upper",
        "value_at_risk",
        "recommended_action",
        "historical_value",
        "current_value",
        "potential_value",
        "value_margin",
    ):
        assert column in scored.columns, column
    summary = summarize(transactions, "2025-12-31")
    expected = score_frame(
        trained_store["result"].models,
        summary,
        churn_features(transactions, "2025-12-31", customers),
    )
    merged = scored.set_index("customer_id").loc[expected.index]
    assert (merged["rfm_segment"] == expected["rfm_segment"]).all()
    assert merged["churn_probability"].to_numpy() == pytest.approx(
        expected["churn_probability"].to_numpy()
    )
    assert merged["clv"].to_numpy() == pytest.approx(expected["clv"].to_numpy())
    # the value in three parts: with costs, the profit to date is the summary's total profit
    assert merged["historical_value"].to_numpy() == pytest.approx(
        summary.loc[expected.index, "total_profit"].to_numpy(), rel=1e-12
    )
    assert merged["current_value"].to_numpy() == pytest.approx(
        (summary["revenue_12m"] * summary["margin_rate"]).loc[expected.index].to_numpy()
    )
    assert (merged["potential_value"] == merged["clv"]).all()


def test_score_values_a_hand_made_customer_in_three_parts(trained_store):
    from tests.models.test_customer_value import hand_made
    from training.batch import score_customers

    models = trained_store["result"].models
    scored = score_customers(models, hand_made(), None, "2025-12-31", progress=lambda m: None)
    row = scored.set_index("customer_id").loc["H1"]
    # 600 to date and 220 in the last 12 months, at margin 0.4
    assert row["historical_value"] == pytest.approx(240.0, rel=1e-12)
    assert row["current_value"] == pytest.approx(88.0, rel=1e-12)
    assert row["value_margin"] == pytest.approx(0.4, rel=1e-12)
    assert row["potential_value"] == row["clv"]


def test_audience_exports_one_label_highest_value_first(scored_file, tmp_path):
    out = tmp_path / "gold.csv"
    assert (
        main(
            [
                "audience",
                "--scheme",
                "value_matrix",
                "--label",
                "gold",
                "--from",
                str(scored_file),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    audience = pd.read_csv(out)
    scored = pd.read_parquet(scored_file)
    assert len(audience) == (scored["value_type"] == "gold").sum() > 0
    assert set(audience["value_type"]) == {"gold"}
    assert audience["clv"].is_monotonic_decreasing
    # money to the cent and probabilities to 4 decimals, as written in the file
    full = scored.set_index("customer_id").loc[audience["customer_id"].astype(str)]
    assert audience["clv"].tolist() == full["clv"].round(2).tolist()
    assert audience["value_at_risk"].tolist() == full["value_at_risk"].round(2).tolist()
    assert audience["churn_probability"].tolist() == full["churn_probability"].round(4).tolist()
    rows = out.read_text().splitlines()[1:]
    header = out.read_text().splitlines()[0].split(",")
    decimals = [len(r.split(",")[header.index("clv")].partition(".")[2]) for r in rows]
    assert max(decimals) <= 2 and full["clv"].round(2).ne(full["clv"]).any()


def test_audience_unknown_label_is_a_clear_error(scored_file, tmp_path, capsys):
    code = main(
        [
            "audience",
            "--scheme",
            "rfm",
            "--label",
            "nope",
            "--from",
            str(scored_file),
            "--out",
            str(tmp_path / "x.csv"),
        ]
    )
    assert code == 2
    assert "no customer has rfm label 'nope'" in capsys.readouterr().err


def test_risk_lists_high_value_high_risk_first(scored_file, capsys, tmp_path):
    folder = scored_file.parent
    out = tmp_path / "risk.csv"
    code = main(
        [
            "risk",
            "--transactions",
            str(folder / "tx.csv"),
            "--customers",
            str(folder / "customers.csv"),
            "--as-of",
            "2025-12-31",
            "--top",
            "5",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    risk = pd.read_csv(out)
    scored = pd.read_parquet(scored_file)
    assert len(risk) == 5
    assert risk["value_at_risk"].is_monotonic_decreasing
    assert risk["value_at_risk"].iloc[0] == round(scored["value_at_risk"].max(), 2)  # cents


def test_report_churn_prints_rates_by_period_and_writes_chart(scored_file, capsys, tmp_path):
    folder = scored_file.parent
    chart = tmp_path / "churn.png"
    code = main(
        [
            "report",
            "churn",
            "--transactions",
            str(folder / "tx.csv"),
            "--customers",
            str(folder / "customers.csv"),
            "--segment",
            "region",
            "--freq",
            "QS",
            "--chart",
            str(chart),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "churn_rate" in out and "conventional_churn_rate" in out and "north" in out
    assert chart.stat().st_size > 1000
    assert "reactivated_customers" in out and ".0000 " not in out.replace("0.0000 ", "")


def test_report_prints_counts_as_integers_and_the_change_in_percent(demo_data):
    from training.reports import format_churn_table

    transactions, _, _ = demo_data
    table = churn_table(
        "2025-06-30", "2025-12-31", freq="QE", transactions=transactions, active_days=90
    )
    text = format_churn_table(table)
    header, first, second = text.splitlines()
    cells = dict(zip(header.split(), second.split(), strict=True))
    row = table.iloc[1]
    for column in ("customers_start", "new_customers", "reactivated_customers", "lost_customers"):
        assert cells[column] == f"{int(row[column]):,}"  # 1,116, never 1,116.0000
    assert cells["churn_rate_change_pct"] == f"{row['churn_rate_change_pct']:+.1f}%"
    assert cells["churn_rate"] == f"{row['churn_rate']:.4f}"
    assert "n/a" in first  # no previous period
    assert row["new_customers"] + row["reactivated_customers"] == (
        row["customers_end"] - row["customers_start"] + row["lost_customers"]
    )


def test_each_run_keeps_its_own_quarantine_file(demo_data, tmp_path, monkeypatch, capsys):
    """A later command on the same file never replaces an earlier run's quarantine."""
    from training.inputs import load_inputs

    monkeypatch.setenv("CVM_HOME", str(tmp_path / "home"))
    transactions, _, _ = demo_data
    tx = tmp_path / "tx.csv"
    pd.concat([transactions, transactions.iloc[:3]]).to_csv(tx, index=False)  # 3 repeats
    load_inputs(tx, as_of=pd.Timestamp("2025-06-30"), progress=lambda m: None, command="train")
    args = ["report", "churn", "--transactions", str(tx), "--chart", str(tmp_path / "c.png")]
    assert main(args) == 0
    assert main(args) == 0  # the same second, likely: a folder of its own all the same
    root = tmp_path / "home" / "quarantine"
    folders = sorted(root.iterdir(), key=lambda f: re.sub(r"^\d{8}T\d{6}Z-", "", f.name))
    commands = [re.sub(r"^\d{8}T\d{6}Z-", "", f.name) for f in folders]
    assert commands in (["report", "report", "train"], ["report", "report-2", "train"])
    counts = {}
    for folder in folders:
        assert re.fullmatch(r"\d{8}T\d{6}Z-(train|report)(-2)?", folder.name)
        (file,) = folder.iterdir()
        assert file.name == "tx_quarantine.csv"
        counts[folder.name] = pd.read_csv(file)["_reason"].value_counts().to_dict()
    after = int((transactions["timestamp"] > "2025-06-30 23:59:59").sum())
    train = next(c for name, c in counts.items() if name.endswith("train"))
    assert train == {"after_as_of": after, "duplicate": 3}  # not replaced by the reports' 3
    assert [c for name, c in counts.items() if "report" in name] == [{"duplicate": 3}] * 2
    err = capsys.readouterr().err
    assert f"-> {folders[0] / 'tx_quarantine.csv'}" in err
    assert f"-> {folders[1] / 'tx_quarantine.csv'}" in err


def test_training_logs_the_value_totals(trained_store, demo_data):
    transactions, _, _ = demo_data
    summary = summarize(transactions, "2025-12-31")
    metrics = trained_store["result"].metrics
    # every demo purchase has a cost: profit to date is the summary's total profit
    assert metrics["value_historical_total"] == pytest.approx(summary["total_profit"].sum())
    current = (summary["revenue_12m"] * summary["margin_rate"]).sum()
    assert metrics["value_current_total"] == pytest.approx(current)
    assert 0 < metrics["value_current_total"] < metrics["value_historical_total"]
