import numpy as np
import pandas as pd
import pytest

from models.exceptions import InvalidInputError
from models.features import SUMMARY_COLUMNS, customer_features, summarize


def round_half_up(values: np.ndarray, digits: int = 2) -> np.ndarray:
    """The reference file's rounding (decimal half-up, not numpy's half-to-even)."""
    scale = 10**digits
    return np.floor(np.asarray(values) * scale + 0.5 + 1e-9) / scale


def test_rebuilds_cdnow_summary_exactly(cdnow_transactions, cdnow_summary):
    summary = summarize(cdnow_transactions, "1997-09-30", time_unit_days=7)
    assert len(summary) == 2357
    summary = summary.loc[cdnow_summary.index]
    np.testing.assert_array_equal(summary["frequency"].to_numpy(), cdnow_summary["x"].to_numpy())
    for ours, theirs in (("recency", "t_x"), ("T", "T"), ("monetary_value", "zbar")):
        np.testing.assert_array_equal(
            round_half_up(summary[ours].to_numpy()), cdnow_summary[theirs].to_numpy(), err_msg=ours
        )


def _tx(rows):
    return pd.DataFrame(
        rows, columns=["customer_id", "timestamp", "amount", "cost", "channel"]
    ).assign(timestamp=lambda d: pd.to_datetime(d["timestamp"], format="mixed"))


def test_summary_columns_and_values():
    tx = _tx(
        [
            ("a", "2024-01-01 09:00", 10.0, 6.0, "store"),
            ("a", "2024-01-01 17:00", 5.0, 3.0, "online"),  # same day: merged
            ("a", "2024-03-01", 20.0, 10.0, "store"),
            ("a", "2024-06-20", 30.0, 15.0, "store"),
            ("a", "2024-07-02", 99.0, 1.0, "store"),  # after as_of: ignored
            ("b", "2024-06-01", 8.0, 10.0, "online"),
        ]
    )
    s = summarize(tx, "2024-06-30", trend_window_days=90)
    assert list(s.columns) == SUMMARY_COLUMNS
    a, b = s.loc["a"], s.loc["b"]
    assert a["frequency"] == 2 and a["n_purchases"] == 3 and a["n_transactions"] == 4
    assert a["recency"] == (pd.Timestamp("2024-06-20") - pd.Timestamp("2024-01-01")).days
    assert a["T"] == (pd.Timestamp("2024-06-30") - pd.Timestamp("2024-01-01")).days
    assert a["monetary_value"] == 25.0
    assert a["total_revenue"] == 65.0
    assert a["total_profit"] == pytest.approx(65.0 - 34.0)
    assert a["profit_per_purchase"] == pytest.approx(31.0 / 3)
    assert a["n_channels"] == 2
    assert a["days_since_last"] == 10
    # last 90 days: 2024-06-20 (and 03-01 is 121 days before: the earlier window)
    assert a["purchases_recent"] == 1 and a["purchases_earlier"] == 1
    assert a["activity_trend"] == 0.0
    assert a["spend_trend"] == pytest.approx((30 - 20) / 50)
    assert (
        b["frequency"] == 0
        and b["monetary_value"] == 0
        and b["margin_rate"] == pytest.approx(-0.25)
    )


def test_purchases_after_as_of_cannot_change_summary():
    tx = _tx([("a", "2024-01-01", 10.0, 5.0, "x"), ("a", "2024-02-01", 12.0, 5.0, "x")])
    later = pd.concat([tx, _tx([("a", "2024-02-02", 1000.0, 1.0, "y")])])
    pd.testing.assert_frame_equal(summarize(tx, "2024-02-01"), summarize(later, "2024-02-01"))


def test_missing_column_is_named():
    with pytest.raises(InvalidInputError, match="amount"):
        summarize(pd.DataFrame({"customer_id": ["a"], "timestamp": ["2024-01-01"]}), "2024-01-02")


def test_customer_features_join_attributes_and_drop_outcomes():
    tx = _tx([("a", "2024-01-01", 10.0, 5.0, "x"), ("b", "2024-01-05", 12.0, 5.0, "x")])
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "c"],
            "region": ["north", "south"],
            "churned": [1, 0],
            "signup_date": ["x", "y"],
        }
    )
    features = customer_features(summarize(tx, "2024-02-01"), customers)
    assert features.loc["a", "region"] == "north"
    assert pd.isna(features.loc["b", "region"])
    assert "churned" not in features.columns and "signup_date" not in features.columns
    assert list(features.index) == ["a", "b"]


def test_margin_uses_only_purchases_with_known_cost():
    tx = _tx([("a", "2024-01-01", 100.0, 60.0, "x"), ("a", "2024-02-01", 300.0, None, "x")])
    s = summarize(tx, "2024-03-01").loc["a"]
    assert s["margin_rate"] == pytest.approx(0.4)  # from the costed purchase only
    assert s["total_profit"] == pytest.approx(0.4 * 400.0)
