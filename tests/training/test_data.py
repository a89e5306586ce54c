"""Tests for training.data: reading, validating and quarantining user data files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.data import (
    DataError,
    LoadReport,
    fingerprint,
    load_customers,
    load_transactions,
    read_table,
)

HEADER = "customer_id,timestamp,amount"


def write(path: Path, *lines: str) -> Path:
    """Write a text file from lines (each gets a trailing newline)."""
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def good_rows(n: int, start_day: int = 1) -> list[str]:
    return [f"c{i:02d},2024-01-{start_day + i:02d},{i + 1}.5" for i in range(n)]


def assert_accounted(report: LoadReport) -> None:
    assert report.n_read == report.n_kept + report.n_quarantined
    assert sum(report.reasons.values()) == report.n_quarantined


# --------------------------------------------------------------------------------------------
# Happy path
# --------------------------------------------------------------------------------------------


def test_happy_path_types_sort_ids_and_compact_dates(tmp_path):
    path = write(
        tmp_path / "tx.csv",
        " Customer_ID ,TIMESTAMP,Amount,Cost,Channel,store_code",
        "00004,2024-03-02 10:30:00,12.5,5,web ,0012",
        "17,20240105, 12.5 ,,store,",
        "00004,2024-01-01,7,2.25,  app,0012",
        "4,2024-02-01T08:00:00,0,0,web,9",
    )

    df, report = load_transactions(path)

    assert list(df.columns) == [
        "customer_id",
        "timestamp",
        "amount",
        "cost",
        "channel",
        "store_code",
    ]
    assert str(df["customer_id"].dtype) == "str"
    assert df["timestamp"].dtype == np.dtype("datetime64[ns]")
    assert df["amount"].dtype == np.float64
    assert df["cost"].dtype == np.float64
    assert str(df["channel"].dtype) == "str"
    assert isinstance(df.index, pd.RangeIndex) and list(df.index) == [0, 1, 2, 3]
    # Sorted by id (as text, leading zeros kept), then time.
    assert df["customer_id"].tolist() == ["00004", "00004", "17", "4"]
    assert df["timestamp"].tolist() == [
        pd.Timestamp("2024-01-01"),
        pd.Timestamp("2024-03-02 10:30"),
        pd.Timestamp("2024-01-05"),
        pd.Timestamp("2024-02-01 08:00"),
    ]
    assert df["amount"].tolist() == [7.0, 12.5, 12.5, 0.0]
    assert df["cost"].tolist()[:2] == [2.25, 5.0]
    assert np.isnan(df["cost"].iloc[2])
    assert df["channel"].tolist() == ["app", "web", "store", "web"]
    # Extra columns are kept as written (text, leading zeros intact); empty cells are missing.
    assert df["store_code"].tolist()[:2] == ["0012", "0012"]
    assert pd.isna(df["store_code"].iloc[2])
    assert report == LoadReport(
        path=str(path), n_read=4, n_kept=4, n_quarantined=0, quarantine_path=None, reasons={}
    )
    assert not (tmp_path / "quarantine").exists()


def test_optional_columns_absent_and_category_kept(tmp_path):
    path = write(
        tmp_path / "tx.txt", "customer_id,timestamp,amount,category", "a,2024-01-01,1,  shoes "
    )
    df, _ = load_transactions(path)
    assert list(df.columns) == ["customer_id", "timestamp", "amount", "category"]
    assert df["category"].tolist() == ["shoes"]


def test_read_table_returns_cells_exactly_as_written(tmp_path):
    path = write(tmp_path / "raw.csv", "id,x", "007, 1.50 ", "NA,")
    raw = read_table(path)
    assert raw.to_dict("list") == {"id": ["007", "NA"], "x": [" 1.50 ", ""]}


def test_semicolon_separated_csv_is_detected(tmp_path):
    path = write(tmp_path / "tx.csv", "customer_id;timestamp;amount", "a;2024-01-01;12.5")
    df, _ = load_transactions(path)
    assert df["amount"].tolist() == [12.5]


# --------------------------------------------------------------------------------------------
# Fatal file-level errors
# --------------------------------------------------------------------------------------------


def test_missing_required_column_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "transactions.csv", "customer_id,timestamp,price", "a,2024-01-01,3")
    with pytest.raises(DataError) as info:
        load_transactions("transactions.csv")
    assert str(info.value) == (
        "transactions.csv: missing required column 'amount' (found: customer_id, timestamp, price)"
    )
    assert info.value.path == "transactions.csv"
    assert info.value.column == "amount"
    assert info.value.rows == []


def test_several_missing_columns_are_all_named(tmp_path):
    path = write(tmp_path / "tx.csv", "id,when,amount", "a,2024-01-01,3")
    with pytest.raises(DataError, match=r"missing required columns 'customer_id', 'timestamp'"):
        load_transactions(path)


def test_two_columns_meaning_the_same_thing(tmp_path):
    path = write(tmp_path / "tx.csv", "customer_id,timestamp,amount,Amount ", "a,2024-01-01,3,4")
    with pytest.raises(DataError, match=r"columns 'amount' and 'Amount ' both mean 'amount'"):
        load_transactions(path)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("missing.csv", None, "missing.csv: file not found"),
        ("tx.xlsx", b"whatever", "tx.xlsx: unsupported file type '.xlsx'"),
        ("tx", b"whatever", "tx: unsupported file type (no extension)"),
        ("empty.csv", b"", "empty.csv: file is empty"),
        ("blank.csv", b"\n  \n", "blank.csv: file is empty"),
        ("header.csv", b"customer_id,timestamp,amount\n", "header.csv: file has no data rows"),
        ("bad.parquet", b"not parquet at all", "bad.parquet: cannot read file"),
        ("latin1.csv", "id,ts,amount\nJos\xe9,x,1\n".encode("latin-1"), "latin1.csv: not UTF-8"),
    ],
)
def test_unreadable_files_raise_data_error(tmp_path, name, content, expected):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError) as info:
        load_transactions(path)
    assert str(info.value).startswith(str(tmp_path / expected))
    assert info.value.path == str(path)
    assert "\n" not in str(info.value)


def test_directory_is_not_a_file(tmp_path):
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(DataError, match=r"dir\.csv: not a regular file"):
        read_table(tmp_path / "dir.csv")


def test_row_with_too_many_fields_names_the_line(tmp_path):
    path = write(
        tmp_path / "tx.csv", HEADER, "a,2024-01-01,3", "b,2024-01-02,1,5", "c,2024-01-03,2"
    )
    with pytest.raises(DataError) as info:
        load_transactions(path)
    assert str(info.value) == (
        f"{path}: line 3 has more fields than the header (3); quote values that contain ','"
    )
    assert info.value.rows == [3]


def test_trailing_delimiters_are_tolerated(tmp_path):
    path = write(tmp_path / "tx.csv", HEADER + ",", "a,2024-01-01,3,", "b,2024-01-02,1,,")
    df, report = load_transactions(path)
    assert list(df.columns) == ["customer_id", "timestamp", "amount"]
    assert report.n_kept == 2


# --------------------------------------------------------------------------------------------
# Row-level errors (bad_rows="error")
# --------------------------------------------------------------------------------------------


def test_unparsable_dates_message_names_file_column_lines_and_values(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = good_rows(11)
    rows[3] = "x,2024-13-01,1"  # line 5
    rows[7] = "y,yesterday,1"  # line 9
    rows[10] = "z,,1"  # line 12
    write(tmp_path / "transactions.csv", HEADER, *rows)

    with pytest.raises(DataError) as info:
        load_transactions("transactions.csv")

    err = info.value
    assert str(err) == (
        "transactions.csv, column 'timestamp': 3 rows have unparsable dates (lines 5, 9, 12): "
        "'2024-13-01', 'yesterday', ''. Accepted dates: YYYY-MM-DD (ISO 8601, with an optional "
        "time and UTC offset; also YYYY/MM/DD) or YYYYMMDD; DD/MM/YYYY and MM/DD/YYYY are not "
        "read (05/01/2024 could be either): convert them to YYYY-MM-DD. "
        "Fix them or rerun with --bad-rows quarantine."
    )
    assert err.path == "transactions.csv"
    assert err.column == "timestamp"
    assert err.rows == [5, 9, 12]
    assert err.n_rows == 3
    assert err.message == str(err)


@pytest.mark.parametrize(
    "value", ["05/01/2024", "2024", "2024-02-30", "3000-01-01", "20241301", "2024-01-05 25:00"]
)
def test_dates_that_are_rejected(tmp_path, value):
    path = write(tmp_path / "tx.csv", HEADER, "a,2024-01-01,1", f"b,{value},1")
    with pytest.raises(
        DataError, match=r"column 'timestamp': 1 row has an unparsable date \(line 3\)"
    ):
        load_transactions(path)


def test_bad_amounts(tmp_path):
    path = write(
        tmp_path / "tx.csv",
        HEADER,
        "a,2024-01-01, 12.5 ",
        'b,2024-01-01,"12,5"',
        "c,2024-01-01,abc",
        "d,2024-01-01,1e3",
        "e,2024-01-01,inf",
        "f,2024-01-01,",
    )
    with pytest.raises(DataError) as info:
        load_transactions(path)
    assert str(info.value) == (
        f"{path}, column 'amount': 4 rows have missing or non-numeric amounts "
        "(lines 3, 4, 6, 7): '12,5', 'abc', 'inf', ''. "
        "Decimal commas (12,5) are read only when the column has no '.' and some value has "
        "other than 3 digits after the comma (1,250 may be a thousands separator): write 12.5 "
        "and 1250. Fix them or rerun with --bad-rows quarantine."
    )
    df, report = load_transactions(path, bad_rows="quarantine")
    assert df["amount"].tolist() == [12.5, 1000.0]
    assert report.reasons == {"bad_amount": 4}


def test_decimal_commas_are_read_when_the_column_is_unambiguous(tmp_path):
    path = write(
        tmp_path / "tx.csv",
        "customer_id;timestamp;amount;cost",
        "a;2024-01-01;12,50;3,5",
        "b;2024-01-02;7;1,250",  # 1,250 beside 3,5: a decimal comma too
        "c;2024-01-03;-0,5;",
    )
    with pytest.raises(DataError, match="negative amount"):
        load_transactions(path)
    df, report = load_transactions(path, bad_rows="quarantine")
    assert df["amount"].tolist() == [12.5, 7.0] and df["cost"].tolist() == [3.5, 1.25]
    assert report.reasons == {"negative_amount": 1}


@pytest.mark.parametrize(
    "amounts",
    [("1,250", "2,500", "7"), ("1.234,56", "2,5", "7")],  # thousands, or mixed separators
)
def test_ambiguous_decimal_commas_are_named_with_the_fix(tmp_path, amounts):
    rows = [
        f'{c},2024-01-0{i + 1},"{a}"' for i, (c, a) in enumerate(zip("abc", amounts, strict=True))
    ]
    path = write(tmp_path / "tx.csv", HEADER, *rows)
    with pytest.raises(DataError) as info:
        load_transactions(path)
    message = str(info.value)
    assert "column 'amount': 2 rows have missing or non-numeric amounts (lines 2, 3)" in message
    assert "Decimal commas (12,5) are read only when the column has no '.'" in message
    assert message.endswith("write 12.5 and 1250. Fix them or rerun with --bad-rows quarantine.")


def test_every_row_bad_says_what_is_wrong_with_the_file_not_to_quarantine(tmp_path):
    """DD/MM/YYYY in every row: quarantining would keep nothing."""
    path = write(tmp_path / "tx.csv", HEADER, "a,05/01/2024,1", "b,13/01/2024,2")
    with pytest.raises(DataError) as info:
        load_transactions(path)
    message = str(info.value)
    assert message.startswith(
        f"{path}, column 'timestamp': 2 rows have unparsable dates (lines 2, 3): "
        "'05/01/2024', '13/01/2024'. Accepted dates: YYYY-MM-DD"
    )
    assert "rerun with --bad-rows quarantine" not in message
    assert message.endswith(
        "No row of the file is usable, so --bad-rows quarantine would not help: check that "
        "column 'timestamp' holds the purchase dates in an accepted format and that the file "
        "is the one meant"
    )
    with pytest.raises(DataError) as info:
        load_transactions(path, bad_rows="quarantine")
    assert "no usable rows: all 2 rows were quarantined (bad_timestamp: 2)" in str(info.value)
    assert "check that column 'timestamp' holds the purchase dates" in str(info.value)
    assert "(accepted dates: YYYY-MM-DD" in str(info.value)


def test_negative_amount_message(tmp_path):
    path = write(tmp_path / "tx.csv", HEADER, "a,2024-01-01,1", "b,2024-01-02,-3.5")
    with pytest.raises(DataError) as info:
        load_transactions(path)
    assert str(info.value) == (
        f"{path}, column 'amount': 1 row has a negative amount (line 3): '-3.5'. "
        "Fix them or rerun with --bad-rows quarantine."
    )
    assert info.value.rows == [3]


def test_bad_cost_is_an_error_but_missing_cost_is_nan(tmp_path):
    path = write(tmp_path / "tx.csv", HEADER + ",cost", "a,2024-01-01,10,", "b,2024-01-02,10,cheap")
    with pytest.raises(DataError, match=r"column 'cost': 1 row has a non-numeric cost \(line 3\)"):
        load_transactions(path)
    df, report = load_transactions(path, bad_rows="quarantine")
    assert df["customer_id"].tolist() == ["a"]
    assert np.isnan(df["cost"].iloc[0])
    assert report.reasons == {"bad_cost": 1}


def test_missing_customer_id_is_reported_first_with_other_problems_summarised(tmp_path):
    path = write(
        tmp_path / "tx.csv",
        "Customer ID,timestamp,amount",
        " ,2024-01-01,1",
        "b,nope,1",
        "NA,2024-01-02,1",
        "c,2024-01-02,-1",
        "d,2024-01-03,2",
    )
    with pytest.raises(DataError) as info:
        load_transactions(path)
    assert str(info.value) == (
        f"{path}, column 'Customer ID': 2 rows have a missing customer id (lines 2, 4); "
        "also bad_timestamp (1 row), negative_amount (1 row). "
        "Fix them or rerun with --bad-rows quarantine."
    )
    assert info.value.column == "customer_id"


def test_more_than_five_bad_rows_are_elided(tmp_path):
    rows = [f"c{i},2024-01-01,bad{i % 2}" for i in range(8)]
    path = write(tmp_path / "tx.csv", HEADER, *rows, "ok,2024-01-01,1")
    with pytest.raises(DataError) as info:
        load_transactions(path)
    assert str(info.value) == (
        f"{path}, column 'amount': 8 rows have missing or non-numeric amounts "
        "(lines 2, 3, 4, 5, 6, ...): 'bad0', 'bad1'. "
        "Fix them or rerun with --bad-rows quarantine."
    )
    assert info.value.rows == [2, 3, 4, 5, 6]
    assert info.value.n_rows == 8


def test_line_numbers_survive_blank_lines_and_multiline_values(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text(
        "customer_id,timestamp,amount,note\n"
        "a,2024-01-01,1,\n"
        "\n"
        'b,2024-01-02,2,"two\nlines"\n'
        "c,2024-01-03,x,\n"
        "\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError) as info:
        load_transactions(path)
    assert info.value.rows == [6]
    df, report = load_transactions(path, bad_rows="quarantine")
    assert df["note"].tolist()[1] == "two\nlines"
    assert report.n_read == 3
    quarantined = pd.read_csv(report.quarantine_path, dtype=str)
    assert quarantined["_line"].tolist() == ["6"]


# --------------------------------------------------------------------------------------------
# Quarantine
# --------------------------------------------------------------------------------------------


def test_quarantine_mode_writes_original_values_with_line_and_reason(tmp_path):
    path = write(
        tmp_path / "sales.csv",
        "customer_id,Timestamp,amount,extra",
        "a,2024-01-01, 10 ,x",
        ",2024-01-01,1,y",
        "b,2024-13-01,1,z",
        "c,2024-01-02,abc,",
        "d,2024-01-02,-1,w",
        "e,2024-01-02,5,v",
    )

    df, report = load_transactions(path, bad_rows="quarantine")

    assert df["customer_id"].tolist() == ["a", "e"]
    expected_path = tmp_path / "quarantine" / "sales_quarantine.csv"
    assert report.quarantine_path == str(expected_path)
    assert report.reasons == {
        "missing_customer_id": 1,
        "bad_timestamp": 1,
        "bad_amount": 1,
        "negative_amount": 1,
    }
    assert (report.n_read, report.n_kept, report.n_quarantined) == (6, 2, 4)
    assert_accounted(report)
    quarantined = pd.read_csv(expected_path, dtype=str, keep_default_na=False)
    assert list(quarantined.columns) == [
        "customer_id",
        "Timestamp",
        "amount",
        "extra",
        "_line",
        "_reason",
    ]
    assert quarantined.to_dict("list") == {
        "customer_id": ["", "b", "c", "d"],
        "Timestamp": ["2024-01-01", "2024-13-01", "2024-01-02", "2024-01-02"],
        "amount": ["1", "1", "abc", "-1"],
        "extra": ["y", "z", "", "w"],
        "_line": ["3", "4", "5", "6"],
        "_reason": ["missing_customer_id", "bad_timestamp", "bad_amount", "negative_amount"],
    }


def test_quarantine_dir_can_be_chosen(tmp_path):
    path = write(tmp_path / "tx.csv", HEADER, "a,2024-01-01,1", "b,never,1")
    target = tmp_path / "out" / "q"
    _, report = load_transactions(path, bad_rows="quarantine", quarantine_dir=target)
    assert report.quarantine_path == str(target / "tx_quarantine.csv")
    assert Path(report.quarantine_path).is_file()


def test_a_quarantine_file_is_never_replaced(tmp_path):
    first = write(tmp_path / "tx.csv", HEADER, "a,2024-01-01,1", "b,never,1", "c,never,1")
    _, one = load_transactions(first, bad_rows="quarantine", quarantine_dir=tmp_path / "q")
    write(tmp_path / "tx.csv", HEADER, "a,2024-01-01,1", "b,never,1")
    _, two = load_transactions(first, bad_rows="quarantine", quarantine_dir=tmp_path / "q")
    assert one.quarantine_path == str(tmp_path / "q" / "tx_quarantine.csv")
    assert two.quarantine_path == str(tmp_path / "q" / "tx_quarantine_2.csv")
    assert len(pd.read_csv(one.quarantine_path)) == 2 and len(pd.read_csv(two.quarantine_path)) == 1


def test_error_mode_writes_nothing_when_it_raises(tmp_path):
    path = write(tmp_path / "tx.csv", HEADER, "a,2024-01-01,1", "a,2024-01-01,1", "b,x,1")
    with pytest.raises(DataError):
        load_transactions(path)
    assert not (tmp_path / "quarantine").exists()


def test_duplicates_and_after_as_of_are_always_quarantined(tmp_path):
    path = write(
        tmp_path / "tx.csv",
        HEADER,
        "a,2024-06-30 23:59:59,10",  # on the as_of day: kept
        "a,2024-06-30 23:59:59,10",  # exact duplicate of line 2
        "a,2024-06-30T23:59:59,10.0",  # the same purchase after parsing
        "a,2024-06-30,10",  # same day, other time: not a duplicate
        "b,2024-07-01,3",  # after as_of
        "b,2024-07-01 00:00:00,3",  # after as_of, not counted as duplicate
        "b,2024-06-01,3",
    )

    df, report = load_transactions(path, as_of="2024-06-30")

    assert df["timestamp"].tolist() == [
        pd.Timestamp("2024-06-30"),
        pd.Timestamp("2024-06-30 23:59:59"),
        pd.Timestamp("2024-06-01"),
    ]
    assert report.reasons == {"after_as_of": 2, "duplicate": 2}
    assert (report.n_read, report.n_kept, report.n_quarantined) == (7, 3, 4)
    assert_accounted(report)
    quarantined = pd.read_csv(report.quarantine_path, dtype=str)
    assert quarantined["_line"].tolist() == ["3", "4", "6", "7"]
    assert quarantined["_reason"].tolist() == [
        "duplicate",
        "duplicate",
        "after_as_of",
        "after_as_of",
    ]


def test_keep_duplicates_keeps_identical_rows_and_counts_them(tmp_path):
    path = write(
        tmp_path / "tx.csv",
        HEADER,
        "a,2024-06-30 10:00,10",
        "a,2024-06-30 10:00,10",  # two equal purchases, no transaction id: maybe real
        "a,2024-06-30T10:00:00,10.0",
        "b,2024-07-01,3",  # after as_of: still quarantined
    )
    df, report = load_transactions(path, as_of="2024-06-30", keep_duplicates=True)
    assert len(df) == 3 and df["amount"].tolist() == [10.0, 10.0, 10.0]
    assert report.duplicates_kept == 2
    assert report.reasons == {"after_as_of": 1}
    assert (report.n_read, report.n_kept, report.n_quarantined) == (4, 3, 1)
    assert "2 identical repeats, kept as asked" in report.summary()


def test_keep_duplicates_on_cdnow_keeps_its_same_day_repeats(tmp_path, cdnow_transactions):
    path = tmp_path / "cdnow.csv"
    cdnow_transactions.to_csv(path, index=False)
    _, default = load_transactions(path, quarantine_dir=tmp_path / "q1")
    kept, report = load_transactions(path, quarantine_dir=tmp_path / "q2", keep_duplicates=True)
    assert default.reasons == {"duplicate": 21}
    assert report.duplicates_kept == 21 and report.n_quarantined == 0
    assert len(kept) == default.n_kept + 21
    # the line a data command prints says how to keep them
    from training.inputs import report_line

    line = report_line(default)
    assert "quarantined 21 (duplicate 21)" in line
    assert "--keep-duplicates keeps every repeat" in line
    assert "--keep-duplicates keeps" not in report_line(report)  # nothing was set aside


def test_the_loader_and_the_service_share_one_rule_for_repeats(tmp_path, cdnow_transactions):
    """training's loader quarantines exactly the rows models.features.repeated_rows flags,
    the rule the service applies to a request's purchases."""
    from models.features import repeated_rows

    path = tmp_path / "cdnow.csv"
    cdnow_transactions.to_csv(path, index=False)
    kept, _ = load_transactions(path, quarantine_dir=tmp_path / "q", keep_duplicates=True)
    dropped, report = load_transactions(path, quarantine_dir=tmp_path / "q2")
    flags = repeated_rows(kept)
    assert int(flags.sum()) == report.reasons["duplicate"] == 21
    pd.testing.assert_frame_equal(kept[~flags].reset_index(drop=True), dropped)


@pytest.mark.parametrize(
    "as_of",
    [
        "2024-06-30",
        dt.date(2024, 6, 30),
        dt.datetime(2024, 6, 30, 8, 15),
        pd.Timestamp("2024-06-30 12:00"),
        pd.Timestamp("2024-06-30 01:00", tz="Europe/Berlin"),
    ],
)
def test_as_of_means_end_of_that_day(tmp_path, as_of):
    path = write(
        tmp_path / "tx.csv",
        HEADER,
        "a,2024-06-30 23:59:59.999,1",
        "a,2024-07-01 00:00:00,2",
        "a,2024-06-29,3",
    )
    df, report = load_transactions(path, as_of=as_of)
    assert df["amount"].tolist() == [3.0, 1.0]
    assert report.reasons == {"after_as_of": 1}


def test_no_usable_rows(tmp_path):
    path = write(tmp_path / "tx.csv", HEADER, "a,2024-07-01,1", "b,2024-08-01,1")
    with pytest.raises(DataError) as info:
        load_transactions(path, as_of="2024-06-30")
    quarantine = tmp_path / "quarantine" / "tx_quarantine.csv"
    assert str(info.value) == (
        f"{path}: no usable rows: all 2 rows were quarantined (after_as_of: 2); see {quarantine}"
    )
    assert quarantine.is_file()


def test_invalid_arguments_raise_value_error(tmp_path):
    path = write(tmp_path / "tx.csv", HEADER, "a,2024-01-01,1")
    with pytest.raises(ValueError, match="bad_rows must be 'error' or 'quarantine'"):
        load_transactions(path, bad_rows="skip")
    with pytest.raises(ValueError, match="bad_rows"):
        load_customers(path, bad_rows=None)
    with pytest.raises(ValueError, match="as_of 'soon' is not a date"):
        load_transactions(path, as_of="soon")


@pytest.mark.parametrize("bad_rows", ["error", "quarantine"])
@pytest.mark.parametrize(
    "rows",
    [
        ["a,2024-01-01,1", "a,2024-01-01,1", "b,2025-01-01,1"],
        ["a,2024-01-01,1", "b,x,1", ",2024-01-01,1", "c,2024-01-01,-2", "c,2024-01-01,2"],
        ["a,2024-01-01,1"] * 5 + ["b,20240101,1"],
    ],
)
def test_every_row_is_kept_or_quarantined(tmp_path, bad_rows, rows):
    path = write(tmp_path / "tx.csv", HEADER, *rows)
    try:
        df, report = load_transactions(path, as_of="2024-12-31", bad_rows=bad_rows)
    except DataError:
        assert bad_rows == "error"
        return
    assert_accounted(report)
    assert report.n_read == len(rows)
    assert len(df) == report.n_kept
    if report.n_quarantined:
        assert len(pd.read_csv(report.quarantine_path)) == report.n_quarantined


# --------------------------------------------------------------------------------------------
# Margin, time zones, Parquet
# --------------------------------------------------------------------------------------------


def test_margin_becomes_cost(tmp_path):
    path = write(
        tmp_path / "tx.csv",
        HEADER + ",margin",
        "a,2024-01-01,100,0.25",
        "a,2024-01-02,50,",
        "a,2024-01-03,10,-0.5",
        "b,2024-01-01,10,30",
    )
    with pytest.raises(DataError) as info:
        load_transactions(path)
    assert info.value.column == "margin"
    assert "column 'margin': 1 row has a margin that is not a number <= 1 (line 5): '30'" in str(
        info.value
    )
    df, report = load_transactions(path, bad_rows="quarantine")
    assert list(df.columns) == ["customer_id", "timestamp", "amount", "cost"]
    assert df["cost"].tolist()[0] == 75.0
    assert np.isnan(df["cost"].iloc[1])
    assert df["cost"].tolist()[2] == 15.0
    assert report.reasons == {"bad_cost": 1}


def test_timezones_are_converted_to_utc_and_dropped(tmp_path):
    path = write(
        tmp_path / "tx.csv",
        HEADER,
        "a,2024-01-05T10:00:00+02:00,1",
        "a,2024-01-05T10:00:00Z,2",
        "a,2024-01-05 10:00:00,3",
        "a,2024-01-05T23:30:00-05:00,4",
    )
    df, _ = load_transactions(path)
    assert df["timestamp"].dt.tz is None
    assert df.set_index("amount")["timestamp"].to_dict() == {
        1.0: pd.Timestamp("2024-01-05 08:00"),
        2.0: pd.Timestamp("2024-01-05 10:00"),
        3.0: pd.Timestamp("2024-01-05 10:00"),
        4.0: pd.Timestamp("2024-01-06 04:30"),
    }


def test_parquet_transactions(tmp_path):
    frame = pd.DataFrame(
        {
            "CUSTOMER_ID": [12, 7, 12, 7],
            "timestamp": pd.to_datetime(
                ["2024-01-05 10:00", "2024-01-01 00:00", "2024-01-02 00:00", "2024-01-01 00:00"]
            ).tz_localize("Europe/Berlin"),
            "amount": [1.5, 2.0, -3.0, 2.0],
            "units": [1, 2, 3, 2],
        }
    )
    path = tmp_path / "tx.parquet"
    frame.to_parquet(path)

    with pytest.raises(DataError) as info:
        load_transactions(path)
    assert str(info.value) == (
        f"{path}, column 'amount': 1 row has a negative amount (row 3): '-3.0'. "
        "Fix them or rerun with --bad-rows quarantine."
    )

    df, report = load_transactions(path, bad_rows="quarantine")
    assert df["customer_id"].tolist() == ["12", "7"]
    assert str(df["customer_id"].dtype) == "str"
    assert df["timestamp"].dtype == np.dtype("datetime64[ns]")
    assert df["timestamp"].tolist() == [
        pd.Timestamp("2024-01-05 09:00"),
        pd.Timestamp("2023-12-31 23:00"),
    ]
    assert df["units"].tolist() == [1, 2]
    assert report.reasons == {"negative_amount": 1, "duplicate": 1}
    quarantined = pd.read_csv(report.quarantine_path)
    assert quarantined["_line"].tolist() == [3, 4]
    assert quarantined["_reason"].tolist() == ["negative_amount", "duplicate"]


def test_parquet_with_compact_integer_dates_and_text_amounts(tmp_path):
    path = tmp_path / "tx.pq"
    pd.DataFrame(
        {
            "customer_id": ["00001", "00002", None],
            "timestamp": [20240105, 20240230, 20240101],
            "amount": ["12.5", "3", "1"],
        }
    ).to_parquet(path)
    df, report = load_transactions(path, bad_rows="quarantine")
    assert df.to_dict("list") == {
        "customer_id": ["00001"],
        "timestamp": [pd.Timestamp("2024-01-05")],
        "amount": [12.5],
    }
    assert report.reasons == {"missing_customer_id": 1, "bad_timestamp": 1}


# --------------------------------------------------------------------------------------------
# Customers
# --------------------------------------------------------------------------------------------


def test_customers_happy_path(tmp_path):
    path = write(
        tmp_path / "customers.csv",
        "customer_id,Signup Date,Churned,segment,age,zip,score",
        "00004,2023-01-15, yes , gold ,41,02139,0.5",
        "17,20230301,FALSE,,35,10001,",
        "3,,1,silver,,90210,2",
        "5,2023-05-01T12:00:00+02:00,,  ,29,00501,1.25",
    )

    df, report = load_customers(path)

    assert list(df.columns) == [
        "customer_id",
        "signup_date",
        "churned",
        "segment",
        "age",
        "zip",
        "score",
    ]
    assert df["customer_id"].tolist() == ["00004", "17", "3", "5"]
    assert str(df["customer_id"].dtype) == "str"
    assert df["signup_date"].dtype == np.dtype("datetime64[ns]")
    assert df["signup_date"].tolist()[:2] == [
        pd.Timestamp("2023-01-15"),
        pd.Timestamp("2023-03-01"),
    ]
    assert pd.isna(df["signup_date"].iloc[2])
    assert df["signup_date"].iloc[3] == pd.Timestamp("2023-05-01 10:00")
    assert df["churned"].dtype == "Int64"
    assert df["churned"].tolist()[:3] == [1, 0, 1]
    assert pd.isna(df["churned"].iloc[3])
    assert df["segment"].tolist()[0] == "gold"
    assert pd.isna(df["segment"].iloc[1]) and pd.isna(df["segment"].iloc[3])
    assert df["age"].dtype == np.float64  # one blank -> float
    assert df["age"].tolist()[:2] == [41.0, 35.0]
    assert df["zip"].tolist() == ["02139", "10001", "90210", "00501"]  # codes stay text
    assert df["score"].dtype == np.float64
    assert report == LoadReport(str(path), 4, 4, 0, None, {})


def test_customers_duplicate_ids_are_fatal_and_listed(tmp_path):
    path = write(
        tmp_path / "customers.csv",
        "customer_id,segment",
        "00004,a",
        "17,b",
        " 00004 ,c",
        "17,d",
        "00004,e",
    )
    with pytest.raises(DataError) as info:
        load_customers(path)
    assert str(info.value) == (
        f"{path}, column 'customer_id': 3 rows repeat a customer id seen on an earlier row "
        "(lines 4, 5, 6): '00004', '17'. Fix them or rerun with --bad-rows quarantine."
    )
    assert info.value.rows == [4, 5, 6]

    df, report = load_customers(path, bad_rows="quarantine")
    assert df.to_dict("list") == {"customer_id": ["00004", "17"], "segment": ["a", "b"]}
    assert report.reasons == {"duplicate_customer_id": 3}
    assert_accounted(report)


def test_customers_row_reasons_in_quarantine(tmp_path):
    path = write(
        tmp_path / "customers.csv",
        "customer_id,signup_date,churned,churn_date",
        "a,2023-01-01,0,",
        ",2023-01-01,0,",
        "b,01/02/2023,0,",
        "c,2023-01-01,maybe,",
        "d,2023-01-01,1,last week",
        "e,2023-01-01,Yes,2024-02-01",
    )
    with pytest.raises(DataError) as info:
        load_customers(path)
    assert info.value.column == "customer_id"
    assert info.value.rows == [3]

    df, report = load_customers(path, bad_rows="quarantine")
    assert df["customer_id"].tolist() == ["a", "e"]
    assert df["churned"].tolist() == [0, 1]
    assert df["churn_date"].tolist()[1] == pd.Timestamp("2024-02-01")
    assert report.reasons == {
        "missing_customer_id": 1,
        "bad_signup_date": 1,
        "bad_churn_date": 1,
        "bad_churned": 1,
    }
    assert_accounted(report)
    quarantined = pd.read_csv(report.quarantine_path, dtype=str, keep_default_na=False)
    assert quarantined["_line"].tolist() == ["3", "4", "5", "6"]
    assert quarantined["_reason"].tolist() == [
        "missing_customer_id",
        "bad_signup_date",
        "bad_churned",
        "bad_churn_date",
    ]


def test_customers_bad_churned_message(tmp_path):
    path = write(tmp_path / "c.csv", "customer_id,churned", "a,1", "b,2", "c,TRUE", "d,n")
    with pytest.raises(DataError) as info:
        load_customers(path)
    assert str(info.value) == (
        f"{path}, column 'churned': 2 rows have churned values that are not 0/1, true/false or "
        "yes/no (lines 3, 5): '2', 'n'. Fix them or rerun with --bad-rows quarantine."
    )


def test_customers_parquet_keeps_types(tmp_path):
    path = tmp_path / "customers.parquet"
    pd.DataFrame(
        {
            "customer_id": ["b", "a "],
            "churned": [True, False],
            "segment": [" x ", "  "],
            "age": [30, 40],
        }
    ).to_parquet(path)
    df, _ = load_customers(path)
    assert df["customer_id"].tolist() == ["a", "b"]
    assert df["churned"].tolist() == [0, 1]
    assert pd.isna(df["segment"].iloc[0]) and df["segment"].iloc[1] == "x"
    assert df["age"].dtype == np.int64
    assert df["age"].tolist() == [40, 30]


# --------------------------------------------------------------------------------------------
# Fingerprint
# --------------------------------------------------------------------------------------------


def test_fingerprint_is_stable_and_content_sensitive():
    frame = pd.DataFrame({"customer_id": pd.Series(["a", "b"], dtype="str"), "amount": [1.0, 2.0]})
    digest = fingerprint(frame)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert fingerprint(frame.copy()) == digest
    assert fingerprint(frame.set_axis([10, 11])) == digest  # index is ignored
    assert fingerprint(frame.assign(amount=[1.0, 2.5])) != digest
    assert fingerprint(frame.rename(columns={"amount": "value"})) != digest
    assert fingerprint(frame.iloc[::-1]) != digest


def test_fingerprint_of_loaded_data_is_reproducible(tmp_path):
    path = write(tmp_path / "tx.csv", HEADER, "a,2024-01-01,1", "b,2024-01-02,2")
    first, _ = load_transactions(path)
    second, _ = load_transactions(path)
    assert fingerprint(first) == fingerprint(second)
