import numpy as np
import pandas as pd
import pytest

from models.churn.features import churn_features, churn_features_from_summary
from models.features import summarize


def purchases(rows):
    return pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "timestamp": pd.to_datetime([r[1] for r in rows], format="ISO8601"),
            "amount": [r[2] for r in rows],
            "channel": [r[3] if len(r) > 3 else "store" for r in rows],
        }
    )


TX = purchases(
    [
        ("a", "2024-01-01", 10.0, "web"),
        ("a", "2024-02-01", 20.0, "web"),
        ("a", "2024-06-01", 30.0),
        ("a", "2024-06-15", 40.0, "web"),
        ("b", "2024-08-01", 5.0),
        ("c", "2024-03-01", 100.0),
        ("c", "2024-04-15", 100.0),
        ("c", "2024-07-01", 20.0),
    ]
)
CUSTOMERS = pd.DataFrame(
    {
        "customer_id": ["a", "b", "c"],
        "signup_date": pd.to_datetime(["2023-12-01", "2024-08-01", "2024-02-01"]),
        "region": ["north", "south", "north"],
        "complaints": [1, 1, 1],
        "complaint_resolved": [0.0, 1.0, 1.0],
        "resolution_days": [np.nan, 5.0, 20.0],
        "complaint_date": pd.to_datetime(["2024-08-01", "2024-10-01", "2024-08-25"]),
        "resolution_date": pd.to_datetime([None, "2024-10-06", "2024-09-14"]),
        "churned": [0, 0, 0],
    }
)


def test_recency_frequency_and_spend_changes_by_hand():
    X = churn_features(TX, "2024-09-01", CUSTOMERS)
    a, b, c = X.loc["a"], X.loc["b"], X.loc["c"]
    # a: purchase days 244, 213, 92 and 78 days before 2024-09-01
    assert a["frequency"] == 3 and a["tenure_days"] == 244 and a["days_since_last"] == 78
    assert a["mean_gap_days"] == pytest.approx((244 - 78) / 3)
    assert a["gap_ratio"] == pytest.approx(78 / ((244 - 78) / 3))
    assert a["frequency_change"] == 0  # one purchase day in each 90-day window
    assert a["spend_change"] == pytest.approx(40 / 30 - 1)
    assert a["main_channel"] == "web"
    # b: one purchase, 31 days old: no gap, and too young for a 3-month comparison
    assert np.isnan(b["mean_gap_days"]) and np.isnan(b["gap_ratio"])
    assert np.isnan(b["spend_change"])
    # c: 100 in the window before, 20 in the last one → the ARPU-drop signal
    assert c["spend_change"] == pytest.approx(-0.8)
    assert c["gap_ratio"] == pytest.approx(62 / 61)
    assert {"T", "recency", "n_purchases", "churned", "signup_date"}.isdisjoint(X.columns)


def test_complaints_and_account_age_as_of_the_date():
    X = churn_features(TX, "2024-09-01", CUSTOMERS)
    assert X["complaints"].tolist() == [1.0, 0.0, 1.0]  # b complained after the date
    # c's complaint was resolved on 2024-09-14, after the date: unresolved as of it
    assert X["unresolved_complaints"].tolist() == [1.0, 0.0, 1.0]
    assert X["resolution_days"].isna().all()
    assert "complaint_resolved" not in X.columns and "complaint_date" not in X.columns
    assert X.loc["a", "account_age_days"] == 275
    later = churn_features(TX, "2024-10-31", CUSTOMERS)
    assert later["complaints"].tolist() == [1.0, 1.0, 1.0]
    assert later["unresolved_complaints"].tolist() == [1.0, 0.0, 0.0]
    assert later["resolution_days"].tolist()[1:] == [5.0, 20.0]


def test_purchases_after_the_cutoff_cannot_change_features():
    before = churn_features(TX, "2024-09-01", CUSTOMERS)
    future = purchases(
        [
            ("a", "2024-09-02", 999.0, "web"),
            ("b", "2024-09-01 23:59:59", 1.0),  # same day: counts
            ("c", "2025-01-01", 5.0, "phone"),
            ("z", "2024-12-01", 7.0),
        ]
    )
    after = churn_features(
        pd.concat([TX, future[future["customer_id"] != "b"]]), "2024-09-01", CUSTOMERS
    )
    pd.testing.assert_frame_equal(before, after)
    same_day = churn_features(pd.concat([TX, future]), "2024-09-01", CUSTOMERS)
    assert same_day.loc["b", "total_revenue"] == 6.0


def test_from_summary_without_customer_table_or_with_a_partial_summary():
    summary = summarize(TX, "2024-09-01")
    X = churn_features_from_summary(summary)
    assert list(X.index) == ["a", "b", "c"] and X["gap_ratio"].notna().sum() == 2
    partial = churn_features_from_summary(summary[["frequency", "days_since_last"]])
    assert partial["gap_ratio"].isna().all()


def test_main_channel_counted_per_customer_with_ties_alphabetical(monkeypatch):
    from models.churn import features

    rng = np.random.default_rng(3)
    n = 4000
    tx = pd.DataFrame(
        {
            "customer_id": rng.choice([f"c{i}" for i in range(300)], n),
            "timestamp": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 300, n), unit="D"),
            "amount": 10.0,
            "channel": rng.choice(["web", "app", "store", "phone"], n),
        }
    )
    tx.loc[::97, "channel"] = None  # missing channels are not counted
    cutoff = pd.Timestamp("2024-08-01 23:59:59")
    dense = features._main_channel(tx, cutoff)
    monkeypatch.setattr(features, "_DENSE_CHANNELS", 0)  # the group-by path
    grouped = features._main_channel(tx, cutoff)
    pd.testing.assert_series_equal(
        dense.sort_index(), grouped.sort_index(), check_index_type=False, check_names=False
    )
    # by hand: "b" has two purchases each by app and web (the tie goes to "app")
    tie = pd.DataFrame(
        {
            "customer_id": ["b"] * 5,
            "timestamp": pd.to_datetime(["2024-01-01"] * 4 + ["2024-12-01"]),
            "amount": 1.0,
            "channel": ["web", "app", "web", "app", "store"],
        }
    )
    assert features._main_channel(tie, cutoff).to_dict() == {"b": "app"}
