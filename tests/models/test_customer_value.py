"""The value in three parts on a hand-made customer: historical (profit to date), current (the
last 12 months) and potential (the CLV)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from models.customer_value import VALUE_COLUMNS, value_parts, with_value
from models.features import CURRENT_VALUE_DAYS, implied_revenue_12m, summarize

AS_OF = "2025-12-31"


def hand_made() -> pd.DataFrame:
    """Six purchases, every cost 60 % of the amount (margin 0.4). As of 2025-12-31 the last
    12 months are the 365 days from 2025-01-01: 2024-12-31 is 365 days back (outside),
    2025-01-01 364 (inside)."""
    rows = [
        ("2024-03-01", 100.0),
        ("2024-11-15", 200.0),
        ("2024-12-31", 80.0),
        ("2025-01-01", 20.0),
        ("2025-06-01", 150.0),
        ("2025-12-20", 50.0),
    ]
    return pd.DataFrame(
        {
            "customer_id": "H1",
            "timestamp": pd.to_datetime([day for day, _ in rows]),
            "amount": [amount for _, amount in rows],
            "cost": [0.6 * amount for _, amount in rows],
        }
    )


def test_the_summary_holds_the_revenue_of_the_last_12_months():
    summary = summarize(hand_made(), AS_OF)
    assert CURRENT_VALUE_DAYS == 365
    row = summary.loc["H1"]
    assert row["total_revenue"] == 600.0
    assert row["revenue_12m"] == 20.0 + 150.0 + 50.0
    assert row["margin_rate"] == pytest.approx(0.4, rel=1e-15)
    # without costs the revenue is the same
    assert summarize(hand_made().drop(columns="cost"), AS_OF).loc["H1", "revenue_12m"] == 220.0


def test_three_parts_of_the_hand_made_customer():
    summary = summarize(hand_made(), AS_OF)
    clv = pd.DataFrame({"clv": [123.45], "margin": [0.4]}, index=summary.index)
    out = with_value(clv.copy(), summary)
    assert list(out.columns[-4:]) == list(VALUE_COLUMNS)
    row = out.loc["H1"]
    # profit to date: 600 × 0.4; the last 12 months: 220 × 0.4; potential: the CLV
    assert row["historical_value"] == pytest.approx(240.0, rel=1e-14)
    assert row["current_value"] == pytest.approx(88.0, rel=1e-14)
    assert row["potential_value"] == 123.45
    assert row["value_margin"] == pytest.approx(0.4, rel=1e-15)
    assert row["historical_value"] == pytest.approx(summary.loc["H1", "total_profit"], rel=1e-15)


def test_without_a_margin_of_its_own_the_clv_margin_values_the_past():
    columns = {
        "total_revenue": np.array([600.0, 600.0, 250.0]),
        "revenue_12m": np.array([220.0, 220.0, np.nan]),
        "margin_rate": np.array([np.nan, -0.1, 0.3]),
        "clv": np.array([50.0, -5.0, 10.0]),
        "margin": np.array([0.25, 0.25, 0.3]),
    }
    parts = value_parts(lambda name: columns[name])
    np.testing.assert_allclose(parts["value_margin"], [0.25, -0.1, 0.3])
    np.testing.assert_allclose(parts["historical_value"], [150.0, -60.0, 75.0])
    np.testing.assert_allclose(parts["current_value"][:2], [55.0, -22.0])
    assert math.isnan(parts["current_value"][2])  # not known
    np.testing.assert_array_equal(parts["potential_value"], [50.0, -5.0, 10.0])


def test_what_a_summary_without_revenue_12m_implies():
    assert implied_revenue_12m(250.0, T=200.0, recency=150.0) == 250.0  # every purchase recent
    assert implied_revenue_12m(250.0, T=364.0, recency=0.0) == 250.0
    assert implied_revenue_12m(250.0, T=800.0, recency=100.0) == 0.0  # silent 700 days
    assert implied_revenue_12m(250.0, T=800.0, recency=435.0) == 0.0  # silent 365 days
    assert math.isnan(implied_revenue_12m(250.0, T=800.0, recency=436.0))  # 364: not known
