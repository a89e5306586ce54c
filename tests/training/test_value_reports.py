"""`cvm report churn --by`, `cvm report concentration`, `cvm report cohorts`, and the same
reports in every training run."""

import pandas as pd
import pytest

from models.churn.kpi import churn_table, period_boundaries, trailing_boundaries
from models.churn.segment_kpi import SEGMENT_SCHEMES, churn_by_segment
from models.cohorts import cohort_table
from training.cli import REPORT_SCHEMES, main
from training.value_reports import (
    TRAINING_PERIOD_MONTHS,
    TRAINING_PERIODS,
    concentration_report,
    window_start,
)


def test_the_cli_offers_the_schemes_the_report_knows():
    assert tuple(SEGMENT_SCHEMES) == REPORT_SCHEMES


@pytest.fixture(scope="module")
def demo_files(demo_data, tmp_path_factory):
    transactions, customers, _ = demo_data
    folder = tmp_path_factory.mktemp("reports")
    transactions.to_csv(folder / "tx.csv", index=False)
    customers.to_csv(folder / "customers.csv", index=False)
    return folder


def test_report_churn_by_value_type_labels_as_of_each_period_start(
    trained_store, demo_data, demo_files, tmp_path, capsys
):
    transactions, customers, _ = demo_data
    csv = tmp_path / "churn.csv"
    code = main(
        [
            "report",
            "churn",
            "--transactions",
            str(demo_files / "tx.csv"),
            "--as-of",
            "2025-12-31",
            "--start",
            "2025-06-30",
            "--freq",
            "QE",
            "--by",
            "value_matrix",
            "--margin",
            "0.3",
            "--chart",
            str(tmp_path / "churn.png"),
            "--csv",
            str(csv),
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "value_matrix label as of the start of each period" in captured.err
    for value_type in ("gold", "meteor", "stream", "burden"):
        assert value_type in captured.out
    written = pd.read_csv(csv, parse_dates=["period_start", "period_end"])
    models = trained_store["result"].models
    expected = churn_by_segment(
        models,
        transactions,
        period_boundaries("2025-06-30", "2025-12-31", "QE"),
        by="value_matrix",
        margin=0.3,
    )
    assert written["segment"].tolist() == expected["segment"].tolist()
    assert written["lost_customers"].tolist() == expected["lost_customers"].tolist()
    assert written["churn_loss"].tolist() == pytest.approx(expected["churn_loss"].tolist())
    # the rows over every customer do not depend on the labels
    total = churn_table(
        "2025-06-30", "2025-12-31", freq="QE", transactions=transactions, margin=0.3
    )
    assert written[written["segment"] == "all"]["churn_rate"].tolist() == pytest.approx(
        total["churn_rate"].tolist()
    )


def test_report_churn_takes_a_column_or_a_scheme_not_both(trained_store, demo_files, capsys):
    code = main(
        [
            "report",
            "churn",
            "--transactions",
            str(demo_files / "tx.csv"),
            "--customers",
            str(demo_files / "customers.csv"),
            "--segment",
            "region",
            "--by",
            "rfm",
        ]
    )
    assert code == 2
    assert "give --segment (a customer-table column) or --by (a scheme), not both" in (
        capsys.readouterr().err
    )


def _write(tmp_path, rows, name="tx.csv"):
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    frame.to_csv(tmp_path / name, index=False)
    return tmp_path / name


def test_report_concentration_profits_one_to_ten(tmp_path, capsys):
    """Ten customers who spent 1, 2, …, 10 (no costs: profit is revenue): the top 20 % hold
    19 / 55 = 34.5 %, Gini 0.3."""
    path = _write(tmp_path, [(f"c{i}", "2025-06-01", float(i)) for i in range(1, 11)])
    chart, csv = tmp_path / "lorenz.png", tmp_path / "lorenz.csv"
    code = main(
        ["report", "concentration", "--transactions", str(path), "--as-of", "2025-12-31"]
        + ["--chart", str(chart), "--csv", str(csv)]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "of 10 customers (profit: revenue)" in out
    top20 = next(line for line in out.splitlines() if line.startswith("top 20 %"))
    assert top20.split()[3:] == ["2.0", "34.5%", "19.00"]
    assert "Gini coefficient: 0.3000" in out
    curve = pd.read_csv(csv)
    assert len(curve) == 101
    assert curve["value_share"].iloc[80] == pytest.approx(36 / 55)
    assert chart.stat().st_size > 1000


def test_report_cohorts_prints_retention_by_acquisition_month(tmp_path, capsys):
    rows = [
        ("a", "2024-01-05", 10.0),
        ("a", "2024-02-10", 20.0),
        ("a", "2024-03-02", 30.0),
        ("b", "2024-01-20", 40.0),
        ("b", "2024-03-15", 50.0),
        ("c", "2024-01-31", 60.0),
        ("d", "2024-02-03", 70.0),
        ("e", "2024-03-10", 90.0),
    ]
    path = _write(tmp_path, rows)
    csv = tmp_path / "cohorts.csv"
    code = main(
        ["report", "cohorts", "--transactions", str(path), "--as-of", "2024-03-31"]
        + ["--start", "2024-01-01", "--chart", str(tmp_path / "c.png"), "--csv", str(csv)]
    )
    assert code == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    january = next(line for line in lines if line.startswith("2024-01"))
    assert january.split() == ["2024-01", "3", "100%", "33%", "67%"]
    february = next(line for line in lines if line.startswith("2024-02"))
    assert february.split() == ["2024-02", "1", "100%", "0%"]
    table = pd.read_csv(csv)
    assert table[table["cohort"] == "2024-01"]["revenue"].tolist() == [110.0, 20.0, 80.0]


def test_every_training_run_logs_the_reports(trained_store, demo_data):
    from mlflow import MlflowClient

    transactions, _, _ = demo_data
    result = trained_store["result"]
    as_of = pd.Timestamp("2025-12-31")
    # churn by segment: the last quarters, every scheme, labels as of each quarter's start
    table = result.tables["churn_by_segment"]
    assert set(table["scheme"]) == {"all", *SEGMENT_SCHEMES}
    assert table["period_end"].max() == as_of
    total = table[table["scheme"] == "all"]
    assert len(total) == TRAINING_PERIODS
    dates = trailing_boundaries(as_of, TRAINING_PERIODS, TRAINING_PERIOD_MONTHS)
    expected = churn_table(dates[0], as_of, freq="3ME", transactions=transactions)
    assert total["lost_customers"].tolist() == expected["lost_customers"].tolist()
    last = table[table["period_start"] == table["period_start"].max()]
    gold = last[(last["scheme"] == "value_matrix") & (last["segment"] == "gold")]
    assert result.metrics["kpi_churn_rate_last_period_gold"] == pytest.approx(
        gold["churn_rate"].iloc[0]
    )
    assert result.metrics["kpi_churn_rate_last_period"] == pytest.approx(
        total["churn_rate"].iloc[-1]
    )
    # concentration over the last year, cohorts of the last two years
    report = concentration_report(transactions, as_of)
    assert result.metrics["top20_profit_share"] == pytest.approx(report.top20_profit_share)
    assert result.metrics["profit_gini"] == pytest.approx(report.gini)
    assert 0.2 < result.metrics["top20_profit_share"] < 1
    cohorts = cohort_table(transactions, as_of, window_start(as_of, 24))
    assert result.tables["cohorts"]["active_customers"].tolist() == (
        cohorts["active_customers"].tolist()
    )
    # in the MLflow run
    client = MlflowClient()
    run_id = trained_store["registered"]["churn"]["run_id"]
    artifacts = {
        a.path for folder in ("tables", "plots") for a in client.list_artifacts(run_id, folder)
    }
    assert {
        "tables/churn_by_segment.csv",
        "tables/lorenz_curve.csv",
        "tables/profit_concentration.csv",
        "tables/cohorts.csv",
        "plots/lorenz_curve.png",
        "plots/cohort_heatmap.png",
    } <= artifacts
    logged = client.get_run(run_id).data.metrics
    assert logged["top20_profit_share"] == pytest.approx(result.metrics["top20_profit_share"])
    assert "cohort_retention_month_1" in logged
