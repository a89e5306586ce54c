"""``--engine spark`` end to end on Spark local[2]: the same features, CLV parameters and
scores as the pandas path, and the same answer as the HTTP service for the same customer."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from tests.conftest import purchases
from training import cli, data, synthetic
from training.pipeline import TrainConfig, train_all

AS_OF = "2025-12-31"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store of its own (the session's trained_store keeps its versions)."""
    home = tmp_path_factory.mktemp("spark-store")
    saved = {k: os.environ.get(k) for k in ("CVM_HOME", "MLFLOW_TRACKING_URI")}
    os.environ["CVM_HOME"] = str(home)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{home}/mlflow.db"
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def files(demo_data, tmp_path_factory):
    """The demo data as the files a user gives: transactions as Parquet, customers as CSV."""
    folder = tmp_path_factory.mktemp("spark-data")
    transactions, customers, _ = demo_data
    tx, cust = folder / "transactions.parquet", folder / "customers.csv"
    transactions.to_parquet(tx, index=False)
    customers.to_csv(cust, index=False)
    return tx, cust


def _spark_args(*extra: str) -> list[str]:
    return ["--engine", "spark", "--spark-master", "local[2]", *extra]


@pytest.fixture(scope="module")
def spark_trained(spark, store, files):
    tx, cust = files
    argv = ["train", "--transactions", str(tx), "--customers", str(cust), "--as-of", AS_OF]
    assert cli.main([*argv, "-q", *_spark_args()]) == 0
    from training import tracking

    return tracking.load_champions()


def test_spark_summary_equals_pandas_on_50000_customers(spark):
    from models.features import summarize
    from training.spark.features import summary_table

    transactions, _, _ = synthetic.generate(50_000, seed=3, as_of=AS_OF)
    frame = spark.createDataFrame(
        transactions[["customer_id", "timestamp", "amount", "cost", "channel"]]
    )
    got = summary_table(frame, pd.Timestamp(AS_OF), 7).toPandas().set_index("customer_id")
    expected = summarize(transactions, AS_OF)
    assert len(expected) > 45_000
    pd.testing.assert_frame_equal(got.sort_index(), expected, check_exact=True)


def test_spark_churn_features_equal_pandas(spark, demo_data):
    from training.spark.features import feature_function, feature_table

    transactions, customers, _ = demo_data
    compute = feature_function(AS_OF)
    expected = compute(transactions, customers).set_index("customer_id").sort_index()
    got = feature_table(
        spark.createDataFrame(transactions),
        spark.createDataFrame(customers),
        AS_OF,
        3,
        compute(transactions.head(200), customers),
    ).toPandas()
    got = got.set_index("customer_id").sort_index()
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_dtype=False)


def test_clv_parameters_equal_the_pandas_fit(spark_trained, files):
    tx, cust = files
    transactions, _ = data.load_transactions(tx)
    customers, _ = data.load_customers(cust)
    pandas_fit = train_all(
        transactions, customers, TrainConfig(as_of=pd.Timestamp(AS_OF)), progress=lambda m: None
    ).models["clv"]
    spark_fit = spark_trained["clv"]
    assert spark_fit.purchase_model == pandas_fit.purchase_model
    expected = pandas_fit.params()
    for key, value in spark_fit.params().items():
        assert value == pytest.approx(expected[key], rel=1e-6, abs=1e-9), key
    assert spark_fit.high_value_threshold_ == pytest.approx(
        pandas_fit.high_value_threshold_, rel=1e-6
    )


@pytest.fixture(scope="module")
def scored(spark_trained, files, tmp_path_factory):
    tx, cust = files
    out = tmp_path_factory.mktemp("scored")
    argv = ["score", "--transactions", str(tx), "--customers", str(cust), "--as-of", AS_OF, "-q"]
    assert cli.main([*argv, "--out", str(out / "pandas.parquet")]) == 0
    assert cli.main([*argv, "--out", str(out / "spark"), *_spark_args()]) == 0
    by_pandas = pd.read_parquet(out / "pandas.parquet")
    by_spark = pd.read_parquet(out / "spark")
    return out, by_pandas, by_spark


def test_spark_scores_equal_pandas_scores(scored):
    _, by_pandas, by_spark = scored
    assert list(by_spark.columns) == list(by_pandas.columns)
    value = ["historical_value", "current_value", "potential_value", "value_margin"]
    assert set(value) <= set(by_spark.columns)  # the value in three parts
    assert len(by_spark) == len(by_pandas) == by_pandas["customer_id"].nunique()
    by_spark = by_spark.sort_values("customer_id").reset_index(drop=True)
    by_pandas = by_pandas.sort_values("customer_id").reset_index(drop=True)
    for column in by_pandas.columns:
        expected, got = by_pandas[column], by_spark[column]
        if pd.api.types.is_float_dtype(expected):
            np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9, err_msg=column)
        else:
            assert got.astype(str).tolist() == expected.astype(str).tolist(), column


def test_audience_reads_the_spark_output_folder(scored, tmp_path):
    out, by_pandas, _ = scored
    argv = ["audience", "--scheme", "churn_risk", "--label", "high", "--out"]
    assert cli.main([*argv, str(tmp_path / "a.csv"), "--from", str(out / "spark")]) == 0
    assert cli.main([*argv, str(tmp_path / "b.csv"), "--from", str(out / "pandas.parquet")]) == 0
    from_spark = pd.read_csv(tmp_path / "a.csv").sort_values("customer_id", kind="stable")
    from_pandas = pd.read_csv(tmp_path / "b.csv").sort_values("customer_id", kind="stable")
    assert len(from_spark) == int((by_pandas["risk_band"] == "high").sum()) > 0
    pd.testing.assert_frame_equal(
        from_spark.reset_index(drop=True), from_pandas.reset_index(drop=True)
    )


def test_the_service_gives_the_spark_answer_for_the_same_customer(scored, store, demo_data):
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.config import Settings

    _, _, by_spark = scored
    transactions, customers, _ = demo_data
    chosen = customers["customer_id"].iloc[[0, 7, 42]].tolist()
    body = []
    for cid in chosen:
        row = customers[customers["customer_id"] == cid].iloc[0].drop("customer_id")
        attributes = {
            k: (
                v.isoformat()
                if isinstance(v, pd.Timestamp)
                else v.item()
                if hasattr(v, "item")
                else v
            )
            for k, v in row.items()
            if not pd.isna(v)
        }
        body.append(
            {
                "customer_id": cid,
                "transactions": purchases(transactions, cid, "cost", "channel"),
                "attributes": attributes,
            }
        )
    app = create_app(
        Settings(mlflow_tracking_uri=os.environ["MLFLOW_TRACKING_URI"], reload_interval=0)
    )
    with TestClient(app) as client:
        assert app.state.store.wait(120), app.state.store.error
        response = client.post("/v1/customers/score", json={"as_of": AS_OF, "customers": body})
    assert response.status_code == 200, response.text
    served = {c["customer_id"]: c for c in response.json()["customers"]}
    for cid in chosen:
        row = by_spark[by_spark["customer_id"] == cid].iloc[0]
        answer = served[cid]
        assert answer["churn"]["probability"] == pytest.approx(row["churn_probability"], abs=1e-9)
        assert answer["churn"]["risk_band"] == row["risk_band"]
        assert answer["clv"]["clv"] == pytest.approx(row["clv"], rel=1e-9, abs=1e-9)
        assert answer["value_at_risk"] == pytest.approx(row["value_at_risk"], rel=1e-9, abs=1e-9)
        assert answer["segments"]["rfm"]["label"] == row["rfm_segment"]
        assert answer["segments"]["lifecycle"]["label"] == row["lifecycle_stage"]
        assert answer["recommended_action"]["action"] == row["recommended_action"]


def test_without_java_the_engine_says_what_to_install(monkeypatch, files, capsys):
    monkeypatch.setenv("JAVA_HOME", "/nonexistent-jdk")
    tx, _ = files
    argv = ["score", "--transactions", str(tx), "--out", "x", *_spark_args()]
    assert cli.main(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [
        "error: --engine spark needs Java 17 or later and found no JAVA_HOME/bin/java: install a "
        "JDK or JRE 17+ (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
    ]


def test_without_pyspark_the_engine_says_what_to_install(monkeypatch):
    import sys

    from training.spark.session import EngineUnavailable, check_engine

    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(EngineUnavailable, match=r"needs PySpark: pip install 'cvm\[spark\]'"):
        check_engine()


def test_a_bad_spark_conf_is_a_clear_error(files, capsys):
    tx, _ = files
    argv = ["score", "--transactions", str(tx), "--out", "x", *_spark_args("--spark-conf", "oops")]
    assert cli.main(argv) == 2
    assert "--spark-conf 'oops': use KEY=VALUE" in capsys.readouterr().err


def test_retrain_on_spark_registers_challengers_compared_on_the_holdout(
    spark_trained, files, capsys
):
    tx, cust = files
    argv = ["retrain", "--transactions", str(tx), "--customers", str(cust), "--as-of", AS_OF]
    assert cli.main([*argv, "-q", *_spark_args()]) == 0
    out = capsys.readouterr().out
    for family in ("segmentation", "churn", "clv"):
        assert f"registered cvm-{family} version 2 as @challenger" in out
    assert "champion" in out and "challenger" in out  # the comparison table
