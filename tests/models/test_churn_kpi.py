import numpy as np
import pandas as pd
import pytest

from models.churn.kpi import (
    active_from_transactions,
    churn_by_period,
    churn_loss,
    churn_rate,
    churn_table,
    value_at_risk,
)
from models.exceptions import InvalidInputError


def test_worked_example_small_appliances():
    """docs/METHODS.md, churn rate: 3,000 accounts at the start, 500 new, 3,300 at the end."""
    rate = churn_rate(3000, 3300, 500)
    assert rate.lost_customers == 200
    assert rate.churn_rate == 200 / 3300
    assert round(100 * rate.churn_rate, 2) == 6.06
    assert round(100 * rate.conventional_churn_rate, 2) == 6.67
    lost_revenue = [100_000] * 100 + [200_000] * 100  # half 100,000 a year, half 200,000
    assert churn_loss(lost_revenue, 0.05) == 1_500_000
    assert churn_loss(30_000_000, 0.05) == 1_500_000


def test_worked_example_telecom():
    """docs/METHODS.md, churn loss: 300,000 at the start, 50,000 new, 320,000 at the end,
    revenue 900 per lost subscriber, margin 3 %."""
    rate = churn_rate(300_000, 320_000, 50_000)
    assert rate.lost_customers == 30_000
    assert rate.churn_rate == 0.09375
    assert rate.conventional_churn_rate == 0.1
    assert churn_loss(900, 0.03, lost=rate.lost_customers) == 810_000
    assert churn_loss(1000, 0.03, lost=rate.lost_customers) == 900_000  # last year's ARPU
    assert rate.as_dict()["churn_rate"] == 0.09375


def test_kpi_input_checks():
    with pytest.raises(InvalidInputError):
        churn_rate(100, 200, 50)  # more stayed than there were
    with pytest.raises(InvalidInputError):
        churn_rate(-1, 0, 0)
    assert np.isnan(churn_rate(0, 0, 0).churn_rate)
    with pytest.raises(InvalidInputError):
        churn_loss([1.0, 2.0], 0.1, lost=3)


def _tx(rows):
    return pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "timestamp": pd.to_datetime([r[1] for r in rows]),
            "amount": [r[2] for r in rows],
        }
    )


TX = _tx(
    [
        ("a", "2024-01-25", 100.0),  # active Jan, Feb; gone by 31 Mar
        ("b", "2024-01-10", 50.0),  # gone by 29 Feb, back in March
        ("b", "2024-03-10", 60.0),
        ("c", "2024-02-20", 30.0),  # new in February
        ("d", "2024-01-05", 10.0),  # gone by 29 Feb
        ("e", "2024-03-20", 80.0),  # new in March
    ]
)


def test_churn_by_segment_and_period_from_transactions():
    table = churn_table(
        "2024-01-31",
        "2024-03-31",
        freq="ME",
        transactions=TX,
        segment=pd.Series({"a": "gold", "b": "gold", "c": "silver", "d": "silver"}),
        active_days=45,
        margin=0.1,
    )
    total = table[table["segment"] == "all"].reset_index(drop=True)
    # 31 Jan: a, b, d active (45 days back); 29 Feb: a, c; 31 Mar: b, c, e
    counts = ["customers_start", "new_customers", "reactivated_customers", "customers_end"]
    assert total[[*counts, "lost_customers"]].values.tolist() == [
        [3, 1, 0, 2, 2],  # lost b and d, new c
        [2, 1, 1, 3, 1],  # lost a, new e, b came back (a customer since January)
    ]
    assert all(total[c].dtype == "int64" for c in [*counts, "lost_customers"])
    assert total["churn_rate"].tolist() == [1.0, 1 / 3]
    assert total["conventional_churn_rate"].tolist() == [2 / 3, 0.5]
    assert np.isnan(total.loc[0, "churn_rate_change"])
    assert total.loc[1, "churn_rate_change"] == pytest.approx(1 / 3 - 1)
    assert total.loc[1, "churn_rate_change_pct"] == pytest.approx(-200 / 3)  # percent
    # lost revenue: purchases in the 45 days before the period of the customers lost
    assert total["lost_revenue"].tolist() == [60.0, 100.0]
    assert total["churn_loss"].tolist() == [6.0, 10.0]
    gold = table[table["segment"] == "gold"]
    assert gold["lost_customers"].tolist() == [1, 1]
    assert set(table["segment"]) == {"all", "gold", "silver", "unknown"}  # e has no segment


def test_churn_table_contractual():
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "signup_date": pd.to_datetime(["2023-01-01", "2023-01-01", "2024-01-15", "2023-05-01"]),
            "churn_date": pd.to_datetime([None, "2024-01-20", None, "2024-02-10"]),
            "plan": ["x", "x", "y", "y"],
        }
    )
    table = churn_table("2023-12-31", "2024-02-29", freq="ME", customers=customers, segment="plan")
    total = table[table["segment"] == "all"]
    assert total["customers_start"].tolist() == [3, 3]
    assert total["lost_customers"].tolist() == [1, 1]
    assert total["new_customers"].tolist() == [1, 0]
    assert total["churn_rate"].tolist() == [1 / 3, 0.5]
    assert table[table["segment"] == "y"]["lost_customers"].tolist() == [0, 1]


def test_activity_matrix_and_direct_use():
    dates = pd.DatetimeIndex(["2024-01-31", "2024-02-29"])
    active = active_from_transactions(TX, dates, active_days=45)
    assert active.loc[["a", "b", "c", "d"]].values.tolist() == [
        [True, True],
        [True, False],
        [False, True],
        [True, False],
    ]
    table = churn_by_period(active)
    assert table["lost_customers"].tolist() == [2]


def test_a_change_on_a_zero_rate_is_not_a_number():
    """From 0 % churn to any churn the relative change is undefined: NaN ("n/a"), never inf."""
    active = pd.DataFrame(
        {
            pd.Timestamp("2024-01-31"): [True, True, False],
            pd.Timestamp("2024-02-29"): [True, True, True],  # nobody lost: rate 0
            pd.Timestamp("2024-03-31"): [False, True, True],  # a lost
        },
        index=pd.Index(["a", "b", "c"], name="customer_id"),
    )
    table = churn_by_period(active)
    assert table["churn_rate"].tolist() == [0.0, 0.5]
    assert table["churn_rate_change"].iloc[1] == 0.5
    assert np.isnan(table["churn_rate_change_pct"]).all()
    # without purchase dates, "seen before" is "active at an earlier boundary"
    assert table["new_customers"].tolist() == [1, 0]
    again = active.copy()
    again.loc["a"] = [True, False, True]  # a lapses in February and returns in March
    table = churn_by_period(again)
    assert table[["new_customers", "reactivated_customers", "lost_customers"]].values.tolist() == [
        [1, 0, 1],
        [0, 1, 0],
    ]


def test_value_at_risk_ranks_high_value_high_risk_first():
    p = pd.Series({"a": 0.9, "b": 0.2, "c": 0.7, "d": 0.5, "e": 0.95})
    clv = pd.Series({"a": 100.0, "b": 2000.0, "c": 1000.0, "d": 800.0, "e": -50.0, "f": 10.0})
    ranked = value_at_risk(p, clv)
    assert list(ranked.index) == ["c", "b", "d", "a", "e"]
    assert ranked["value_at_risk"].tolist() == pytest.approx([700.0, 400.0, 400.0, 90.0, 0.0])
    assert ranked["risk_band"].tolist() == ["high", "low", "medium", "high", "high"]
    assert ranked["rank"].tolist() == [1, 2, 3, 4, 5]
    assert list(value_at_risk(p, clv, top=2).index) == ["c", "b"]
    with pytest.raises(InvalidInputError):
        value_at_risk(pd.Series({"a": 1.5}), pd.Series({"a": 1.0}))
