"""training.spark.data: the data contract on Spark gives what training.data gives on pandas --
the same kept rows, reasons, counts and messages (less line numbers)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training import data
from training.data import DataError, LoadReport
from training.inputs import report_line
from training.spark import data as sdata

TX_HEADER = "customer_id,timestamp,amount,cost,channel,note"
# One row of every kind; the reason each gets is in the comment.
TX_ROWS = [
    "a,2024-01-01,10.5,4,web,x",
    "a,2024-01-01,10.5,4,web,x",  # duplicate
    " a ,2024-01-01,10.50,4.0,web ,x",  # duplicate once parsed (stripped, same numbers)
    ",2024-01-02,5,,store,",  # missing_customer_id
    "NA,2024-01-02,5,,,",  # missing_customer_id
    "b,05/01/2024,5,,,",  # bad_timestamp
    "b,2024-01-03,abc,,,",  # bad_amount
    "b,2024-01-03,,,,",  # bad_amount (missing)
    "c,2024-01-04,-3,,,",  # negative_amount
    "c,2024-01-04,3,x1,,",  # bad_cost
    "c,2030-01-01,3,,,",  # after_as_of
    "d,20240105,7,1,app,y",
    "d,2024-01-06T10:00:00+02:00,8,,,",
    "e,2024-02-01,0,0,web,",
    "e,2024-02-01,0,0,web,",  # duplicate
]
REASONS = {
    "missing_customer_id": 2,
    "bad_timestamp": 1,
    "bad_amount": 2,
    "negative_amount": 1,
    "bad_cost": 1,
    "after_as_of": 1,
    "duplicate": 3,
}


def write(path: Path, *lines: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def rows_of(frame, sort_by: list[str]) -> pd.DataFrame:
    """A Spark frame as the pandas loader returns it: nanosecond times, sorted, RangeIndex."""
    out = frame.toPandas()
    for name in out.columns:
        if str(out[name].dtype).startswith("datetime64"):
            out[name] = out[name].astype("datetime64[ns]")
    return out.sort_values(sort_by, kind="stable").reset_index(drop=True)


def assert_accounted(report: LoadReport) -> None:
    assert report.n_read == report.n_kept + report.n_quarantined
    assert sum(report.reasons.values()) == report.n_quarantined


@contextlib.contextmanager
def batches_of(spark, n: int):
    """Arrow batches of ``n`` rows: the row rules run on many small parts of each file."""
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(key)
    spark.conf.set(key, str(n))
    try:
        yield
    finally:
        spark.conf.set(key, before)


def test_every_kind_of_bad_row_is_set_aside_as_pandas_does(spark, tmp_path):
    path = write(tmp_path / "tx.csv", TX_HEADER, *TX_ROWS)
    with batches_of(spark, 4):
        frame, report = sdata.load_transactions(
            spark, path, as_of="2024-12-31", bad_rows="quarantine", quarantine_dir=tmp_path / "q"
        )
    expected, expected_report = data.load_transactions(
        path, as_of="2024-12-31", bad_rows="quarantine", quarantine_dir=tmp_path / "qp"
    )

    assert frame.schema.simpleString() == (
        "struct<customer_id:string,timestamp:timestamp_ntz,amount:double,cost:double,"
        "channel:string,note:string>"
    )
    kept = rows_of(frame, ["customer_id", "timestamp"])
    pd.testing.assert_frame_equal(kept, expected, check_dtype=False)
    assert kept["customer_id"].tolist() == ["a", "d", "d", "e"]
    assert kept["timestamp"].tolist() == [
        pd.Timestamp("2024-01-01"),
        pd.Timestamp("2024-01-05"),
        pd.Timestamp("2024-01-06 08:00"),
        pd.Timestamp("2024-02-01"),
    ]
    assert (report.n_read, report.n_kept, report.n_quarantined) == (15, 4, 11)
    assert report.reasons == REASONS == expected_report.reasons
    assert list(report.reasons) == list(expected_report.reasons)  # the documented order
    assert_accounted(report)
    assert report.quarantine_path == str(tmp_path / "q" / "tx_quarantine.parquet")
    line = report_line(report)
    assert line.startswith(f"{path}: read 15, kept 4, quarantined 11 (after_as_of 1, bad_amount 2")
    assert line.endswith(
        "kept once (--keep-duplicates keeps every repeat, for data where equal "
        "purchases on one day can be real)"
    )

    # The quarantine holds exactly the rows set aside: original values, as read, and reasons.
    quarantined = pd.read_parquet(report.quarantine_path)
    assert list(quarantined.columns) == [*TX_HEADER.split(","), "_reason"]
    pandas_quarantine = pd.read_csv(
        expected_report.quarantine_path, dtype=str, keep_default_na=False
    ).drop(columns="_line")
    as_rows = sorted(map(tuple, quarantined.fillna("").to_numpy().tolist()))
    assert as_rows == sorted(map(tuple, pandas_quarantine.to_numpy().tolist()))
    assert quarantined["_reason"].value_counts().to_dict() == REASONS


def test_a_fatal_problem_is_one_line_naming_file_column_values_and_count(spark, tmp_path):
    path = write(tmp_path / "tx.csv", TX_HEADER, *TX_ROWS[5:], "f,2024-13-01,1,,,")
    with pytest.raises(DataError) as info:
        sdata.load_transactions(spark, path)
    with pytest.raises(DataError) as pandas_info:
        data.load_transactions(path)

    message = str(info.value)
    assert message == str(pandas_info.value).replace(" (lines 2, 12)", "")
    assert message.startswith(
        f"{path}, column 'timestamp': 2 rows have unparsable dates: '05/01/2024', '2024-13-01'; "
        "also bad_amount (2 rows), negative_amount (1 row), bad_cost (1 row). Accepted dates: "
    )
    assert message.endswith("Fix them or rerun with --bad-rows quarantine.")
    assert "\n" not in message
    assert (info.value.column, info.value.n_rows, info.value.rows) == ("timestamp", 2, [])
    assert not (tmp_path / "quarantine").exists()  # nothing written when it raises


def test_no_usable_rows_is_the_pandas_error(spark, tmp_path):
    path = write(tmp_path / "tx.csv", "customer_id,timestamp,amount", "a,05/01/2024,1", "b,x,2")
    with pytest.raises(DataError) as info:
        sdata.load_transactions(spark, path)
    with pytest.raises(DataError) as pandas_info:
        data.load_transactions(path)
    assert str(info.value) == str(pandas_info.value).replace(" (lines 2, 3)", "")
    assert "No row of the file is usable, so --bad-rows quarantine would not help" in str(
        info.value
    )

    with pytest.raises(DataError, match="no usable rows: all 2 rows were quarantined") as info:
        sdata.load_transactions(spark, path, bad_rows="quarantine", quarantine_dir=tmp_path / "q")
    assert f"see {tmp_path / 'q' / 'tx_quarantine.parquet'}; check that column 'timestamp'" in str(
        info.value
    )
    assert len(pd.read_parquet(tmp_path / "q" / "tx_quarantine.parquet")) == 2


def test_keep_duplicates_keeps_and_counts_identical_rows(spark, tmp_path):
    path = write(tmp_path / "tx.csv", TX_HEADER, *TX_ROWS[:3], *TX_ROWS[11:])
    frame, report = sdata.load_transactions(spark, path, keep_duplicates=True)
    expected, expected_report = data.load_transactions(path, keep_duplicates=True)

    kept = rows_of(frame, ["customer_id", "timestamp"])
    pd.testing.assert_frame_equal(kept, expected, check_dtype=False)
    assert (report.n_read, report.n_kept, report.n_quarantined) == (7, 7, 0)
    assert report.duplicates_kept == expected_report.duplicates_kept == 3
    assert report.quarantine_path is None

    _, report = sdata.load_transactions(spark, path, quarantine_dir=tmp_path / "q")
    assert (report.n_kept, report.reasons, report.duplicates_kept) == (4, {"duplicate": 3}, 0)


CUSTOMERS = [
    "customer_id,signup_date,churned,churn_date,zip,age,score",
    "c1,2024-01-01,yes,,02139,30,1.5",
    "c2,2024-01-02,no,2024-06-01,10001,41,2",
    "c1,2024-01-05,no,,02139,30,3",  # duplicate_customer_id
    "c3,01/02/2024,1,,02139,22,1",  # bad_signup_date
    "c4,2024-01-03,maybe,,02139,35,1",  # bad_churned
    "c5,2024-01-03,0,someday,02139,50,1",  # bad_churn_date
    ",2024-01-03,0,,02139,50,1",  # missing_customer_id
    "c2,2024-01-09,1,,02139,,1",  # duplicate_customer_id (before its missing age)
    "c6,20240104,TRUE,,,60,0.5",
]


def test_customers_with_repeated_ids_bad_dates_and_flags(spark, tmp_path):
    path = write(tmp_path / "customers.csv", *CUSTOMERS)
    with pytest.raises(DataError) as info:
        sdata.load_customers(spark, path)
    assert str(info.value).startswith(
        f"{path}, column 'customer_id': 1 row has a missing customer id; also "
        "duplicate_customer_id (2 rows), bad_signup_date (1 row), bad_churn_date (1 row), "
        "bad_churned (1 row). Fix them"
    )

    with batches_of(spark, 3):
        frame, report = sdata.load_customers(
            spark, path, bad_rows="quarantine", quarantine_dir=tmp_path / "q"
        )
    expected, expected_report = data.load_customers(
        path, bad_rows="quarantine", quarantine_dir=tmp_path / "qp"
    )
    # zip keeps its leading zeros (text); age has a missing value over the whole file (double)
    assert frame.schema.simpleString() == (
        "struct<customer_id:string,signup_date:timestamp_ntz,churned:bigint,"
        "churn_date:timestamp_ntz,zip:string,age:double,score:double>"
    )
    assert [str(t) for t in expected.dtypes[["zip", "age", "score"]]] == [
        "str",
        "float64",
        "float64",
    ]
    kept = rows_of(frame, ["customer_id"])
    pd.testing.assert_frame_equal(kept, expected, check_dtype=False)
    assert kept["customer_id"].tolist() == ["c1", "c2", "c6"]
    assert kept["churned"].tolist() == [1, 0, 1]
    assert (
        report.reasons
        == expected_report.reasons
        == {
            "missing_customer_id": 1,
            "duplicate_customer_id": 2,
            "bad_signup_date": 1,
            "bad_churn_date": 1,
            "bad_churned": 1,
        }
    )
    assert_accounted(report)
    quarantined = pd.read_parquet(report.quarantine_path)
    assert sorted(
        quarantined.loc[quarantined["_reason"] == "duplicate_customer_id", "signup_date"]
    ) == [
        "2024-01-05",
        "2024-01-09",
    ]

    # Repeated ids alone: the message shows the ids
    path = write(tmp_path / "ids.csv", "customer_id,age", "x,1", "y,2", " x ,3", "y,4")
    with pytest.raises(DataError) as info:
        sdata.load_customers(spark, path)
    assert str(info.value) == (
        f"{path}, column 'customer_id': 2 rows repeat a customer id seen on an earlier row: "
        "'x', 'y'. Fix them or rerun with --bad-rows quarantine."
    )


def test_a_spark_parquet_folder_and_a_glob_of_csv_files(spark, tmp_path):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i % 7}" for i in range(40)],
            "timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 90, 40), "D"),
            "amount": rng.integers(-2, 50, 40).astype(float),
            "store": rng.integers(1, 4, 40),
        }
    )
    spark.createDataFrame(frame).repartition(3).write.parquet(str(tmp_path / "tx.parquet"))
    assert len(list((tmp_path / "tx.parquet").glob("part-*.parquet"))) == 3
    frame.to_parquet(tmp_path / "whole.parquet")

    loaded, report = sdata.load_transactions(
        spark, f"file://{tmp_path / 'tx.parquet'}", bad_rows="quarantine"
    )
    expected, expected_report = data.load_transactions(
        tmp_path / "whole.parquet", bad_rows="quarantine"
    )
    assert loaded.schema["store"].dataType.simpleString() == "bigint"
    pd.testing.assert_frame_equal(
        rows_of(loaded, ["customer_id", "timestamp", "amount", "store"]),
        expected.sort_values(["customer_id", "timestamp", "amount", "store"]).reset_index(
            drop=True
        ),
        check_dtype=False,
    )
    assert report.reasons == expected_report.reasons and report.reasons["negative_amount"] > 0
    assert report.quarantine_path == f"file://{tmp_path / 'quarantine' / 'tx_quarantine.parquet'}"

    # Two CSV files: decimal commas are decided over both ('1,250' alone could be thousands;
    # '2,5' beside it says decimals), as for the two files pasted into one.
    header = "customer_id;timestamp;amount"
    write(tmp_path / "in" / "tx-1.csv", header, "a;2024-01-01;1,250", "b;2024-01-02;3")
    write(tmp_path / "in" / "tx-2.csv", header, "c;2024-01-03;2,5", "a;2024-01-01;1,250")
    write(tmp_path / "in" / "notes.md", "not data")
    both = write(
        tmp_path / "both.csv",
        header,
        "a;2024-01-01;1,250",
        "b;2024-01-02;3",
        "c;2024-01-03;2,5",
        "a;2024-01-01;1,250",
    )
    with batches_of(spark, 1):
        loaded, report = sdata.load_transactions(
            spark, str(tmp_path / "in" / "tx-*.csv"), quarantine_dir=tmp_path / "q"
        )
    expected, expected_report = data.load_transactions(both, quarantine_dir=tmp_path / "qp")
    kept = rows_of(loaded, ["customer_id", "timestamp"])
    pd.testing.assert_frame_equal(kept, expected, check_dtype=False)
    assert kept["amount"].tolist() == [1.25, 3.0, 2.5]
    assert report.reasons == expected_report.reasons == {"duplicate": 1}
    assert report.quarantine_path == str(tmp_path / "q" / "tx_quarantine.parquet")

    with pytest.raises(DataError, match=r"notes.md is neither CSV \(.csv, .txt\) nor Parquet"):
        sdata.load_transactions(spark, tmp_path / "in")


def test_inputs_that_cannot_be_read(spark, tmp_path):
    header = "customer_id,timestamp,amount"
    cases = {
        "missing.csv": (None, "file not found"),
        "nothing-*.csv": (None, "no file matches"),
        "data.json": (["{}"], "unsupported file type '.json'; use .csv, .txt, .parquet or .pq"),
        "empty.csv": ([], "file is empty"),
        "header.csv": ([header], "file has no data rows"),
        "wide.csv": (
            [header, "a,2024-01-01,1", "b,2024-01-01,1,oops"],
            "1 row has more fields than the header (3), e.g. 'b,2024-01-01,1,oops'; quote "
            "values that contain ','",
        ),
        "columns.csv": (
            ["id,when,amount", "a,2024-01-01,1"],
            "missing required columns 'customer_id', 'timestamp' (found: id, when, amount)",
        ),
    }
    for name, (lines, expected) in cases.items():
        path = tmp_path / name
        if lines is not None:
            write(path, *lines) if lines else path.write_text("")
        with pytest.raises(DataError) as info:
            sdata.load_transactions(spark, str(path))
        assert str(info.value) == f"{path}: {expected}", name

    write(tmp_path / "two" / "a.csv", header, "a,2024-01-01,1")
    write(tmp_path / "two" / "b.csv", "timestamp,customer_id,amount", "2024-01-01,b,1")
    with pytest.raises(DataError, match="starts with a different header line than"):
        sdata.load_transactions(spark, tmp_path / "two")

    trailing = write(tmp_path / "trailing.csv", header + ",,", "a,2024-01-01,1,,", "b,2024-01-02,2")
    loaded, report = sdata.load_transactions(spark, trailing)
    assert loaded.columns == ["customer_id", "timestamp", "amount"] and report.n_kept == 2
