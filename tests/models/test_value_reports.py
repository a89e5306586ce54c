"""Profit concentration, acquisition cohorts and churn by segments labelled as of each
period's start, on hand-worked numbers."""

import numpy as np
import pandas as pd
import pytest

from models.churn.kpi import churn_by_period, churn_by_schemes, trailing_boundaries
from models.cohorts import cohort_matrix, cohort_table, pooled_retention
from models.concentration import concentration, customer_profit, gini, lorenz_curve, top_share
from models.exceptions import InvalidInputError

# --- concentration -------------------------------------------------------------------------


def test_profits_one_to_ten_top_twenty_percent_and_gini():
    """Profits 1..10 (total 55): the top 20 % are the customers with 10 and 9, 19 / 55 =
    34.55 %. Gini = 2 Σ i·v_(i) / (n Σ v) − (n + 1) / n = 2·385 / 550 − 1.1 = 0.3."""
    profits = list(range(1, 11))
    assert top_share(profits, 0.2) == pytest.approx(19 / 55)
    assert round(100 * top_share(profits, 0.2), 2) == 34.55
    assert gini(profits) == pytest.approx(0.3)
    assert top_share(profits, 0.5) == pytest.approx(40 / 55)  # 6 + 7 + 8 + 9 + 10
    assert top_share(profits, 1.0) == pytest.approx(1.0)
    table = concentration(profits).set_index("measure")
    assert table.loc["top_20pct", "customers"] == 2.0
    assert table.loc["top_20pct", "value"] == pytest.approx(19.0)
    assert table.loc["top_10pct", "value_share"] == pytest.approx(10 / 55)
    assert table.loc["gini", "value_share"] == pytest.approx(0.3)
    assert table.loc["gini", "value"] == 55.0


def test_lorenz_curve_points_and_interpolated_shares():
    """Five customers 1, 2, 3, 4, 10 (total 20): cumulative 1, 3, 6, 10, 20."""
    curve = lorenz_curve([4, 1, 10, 3, 2])
    assert curve["customer_share"].tolist() == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert curve["value_share"].tolist() == pytest.approx([0, 0.05, 0.15, 0.30, 0.50, 1.0])
    # Gini: 1 − 0.2 · (0.05 + 0.20 + 0.45 + 0.80 + 1.50) = 1 − 0.6 = 0.4
    assert gini([4, 1, 10, 3, 2]) == pytest.approx(0.4)
    # 7 customers, 20 % of them = 1.4 customers: the top one and 0.4 of the second
    assert top_share([1, 1, 1, 1, 1, 5, 10], 0.2) == pytest.approx((10 + 0.4 * 5) / 20)
    grid = lorenz_curve(range(1, 11), points=11)
    assert len(grid) == 11 and grid["value_share"].iloc[8] == pytest.approx(36 / 55)
    assert gini([5, 5, 5, 5]) == pytest.approx(0.0)


def test_concentration_refuses_what_has_no_share():
    with pytest.raises(InvalidInputError, match="total is -2.00"):
        top_share([1, -3])
    with pytest.raises(InvalidInputError, match="1 of 3 values are not finite"):
        gini([1, np.nan, 2])
    with pytest.raises(InvalidInputError, match="no customers"):
        lorenz_curve([])


def test_customer_profit_follows_the_summary_margin_rule():
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "c", "c"],
            "timestamp": pd.to_datetime(
                ["2024-01-05", "2024-02-10", "2024-01-20", "2023-12-01", "2024-03-01"]
            ),
            "amount": [100.0, 100.0, 50.0, 500.0, 40.0],
            "cost": [60.0, None, None, 100.0, 30.0],
        }
    )
    profit, basis = customer_profit(tx, "2024-01-01", "2024-03-31")
    # a: margin 0.4 on the costed purchase, applied to 200 → 80; c: only 40 in the window,
    # margin 0.25 → 10; b: no cost, the window's margin (140 − 90) / 140
    assert profit.loc["a", "profit"] == pytest.approx(80.0)
    assert profit.loc["c", "profit"] == pytest.approx(10.0)
    assert profit.loc["b", "profit"] == pytest.approx(50 * 50 / 140)
    assert basis.startswith("cost; 1 customers without: the window's margin 0.3571")
    with_margin, basis = customer_profit(tx, None, "2024-03-31", margin=0.1)
    assert with_margin.loc["b", "profit"] == pytest.approx(5.0)
    assert with_margin.loc["c", "revenue"] == 540.0
    revenue_only, basis = customer_profit(tx.drop(columns="cost"), None, "2024-03-31")
    assert basis == "revenue" and revenue_only["profit"].tolist() == [200.0, 50.0, 540.0]


# --- cohorts -------------------------------------------------------------------------------

COHORT_TX = pd.DataFrame(
    {
        "customer_id": ["a", "a", "a", "b", "b", "c", "d", "d", "e"],
        "timestamp": pd.to_datetime(
            [
                "2024-01-05",  # a: acquired in January, buys again in February and March
                "2024-02-10",
                "2024-03-02",
                "2024-01-20",  # b: January, then March
                "2024-03-15",
                "2024-01-31",  # c: January only
                "2024-02-03",  # d: February, twice in February, then nothing
                "2024-02-20",
                "2024-03-10",  # e: March
            ]
        ),
        "amount": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0],
    }
)


def test_a_tiny_cohort_table_by_hand():
    table = cohort_table(COHORT_TX, "2024-03-20")
    retention = cohort_matrix(table, "retention")
    # January (a, b, c): month 1 only a bought (1/3), month 2 a and b (2/3);
    # February (d): month 1 nobody; March (e)
    assert retention.loc["2024-01"].tolist() == pytest.approx([1.0, 1 / 3, 2 / 3])
    assert retention.loc["2024-02"].tolist()[:2] == [1.0, 0.0]
    assert np.isnan(retention.loc["2024-02"].iloc[2])
    assert retention.loc["2024-03"].iloc[0] == 1.0
    january = table[table["cohort"] == pd.Timestamp("2024-01-01")]
    assert january["customers"].tolist() == [3, 3, 3]
    assert january["active_customers"].tolist() == [3, 1, 2]
    assert january["revenue"].tolist() == [110.0, 20.0, 80.0]
    assert january["revenue_per_customer"].tolist() == pytest.approx([110 / 3, 20 / 3, 80 / 3])
    february = table[table["cohort"] == pd.Timestamp("2024-02-01")]
    assert february["revenue"].tolist() == [150.0, 0.0]  # two purchases, one customer
    # March runs only to the 20th: incomplete; a month that ended is complete
    assert table["complete"].tolist() == [True, True, False, True, False, False]
    # pooled month-1 retention over the cohorts whose month 1 is complete: January only
    # (February's month 1 is the running March)
    assert pooled_retention(table, 1) == pytest.approx(1 / 3)
    assert np.isnan(pooled_retention(table, 2))  # only January reached it, and it is running
    # as of the end of March every month is complete: (1 + 0) / (3 + 1) for month 1
    whole = cohort_table(COHORT_TX, "2024-03-31")
    assert whole["complete"].all()
    assert pooled_retention(whole, 1) == pytest.approx(0.25)
    assert pooled_retention(whole, 2) == pytest.approx(2 / 3)


def test_cohorts_from_a_start_month_and_the_as_of_cut():
    table = cohort_table(COHORT_TX, "2024-02-29", start="2024-02-01")
    assert table["cohort"].dt.strftime("%Y-%m").unique().tolist() == ["2024-02"]
    assert table["active_customers"].tolist() == [1]  # e (March) is after as_of
    with pytest.raises(InvalidInputError, match="no customer was acquired"):
        cohort_table(COHORT_TX, "2024-03-31", start="2024-06-01")
    with pytest.raises(InvalidInputError, match="no purchase on or before"):
        cohort_table(COHORT_TX, "2023-01-01")


# --- churn by segment, labels as of each period's start -------------------------------------

DATES = [pd.Timestamp("2024-01-31"), pd.Timestamp("2024-02-29"), pd.Timestamp("2024-03-31")]
ACTIVE = pd.DataFrame(
    {
        DATES[0]: [True, True, True, False],
        DATES[1]: [True, False, True, True],
        DATES[2]: [False, False, True, True],
    },
    index=pd.Index(["a", "b", "c", "d"], name="customer_id"),
)


def test_each_period_groups_customers_by_their_label_at_its_start():
    """a is gold in January and slips to stream by February, then leaves; b (stream) leaves
    in February; d joins in February with no label yet."""
    labels = pd.DataFrame(
        {
            DATES[0]: ["gold", "stream", "gold", "no_history"],
            DATES[1]: ["stream", "stream", "gold", "stream"],
        },
        index=ACTIVE.index,
    )
    table = churn_by_period(ACTIVE, labels)
    rows = table.set_index(["segment", "period_start"])
    assert rows.loc[("gold", DATES[0]), ["customers_start", "lost_customers"]].tolist() == [2, 0]
    # by the label at the end of the period a would count as a stream customer in January
    stream = rows.loc[("stream", DATES[0])]
    assert (stream["customers_start"], stream["customers_end"], stream["lost_customers"]) == (
        1,
        0,
        1,
    )
    assert np.isnan(stream["churn_rate"])  # nobody left at the end: lost / 0
    assert stream["conventional_churn_rate"] == 1.0
    joined = rows.loc[("no_history", DATES[0])]
    assert (joined["new_customers"], joined["customers_end"], joined["churn_rate"]) == (1, 1, 0.0)
    # February: stream = a, b, d; a is lost, b was lost already, d stays
    feb = rows.loc[("stream", DATES[1])]
    assert (feb["customers_start"], feb["customers_end"], feb["lost_customers"]) == (2, 1, 1)
    assert feb["churn_rate"] == 1.0 and feb["conventional_churn_rate"] == 0.5
    # a segment with nobody in a period: zero counts, no rate
    empty = rows.loc[("no_history", DATES[1])]
    assert empty["customers_start"] == 0 and np.isnan(empty["churn_rate"])
    with pytest.raises(InvalidInputError, match="lack the period start 2024-02-29"):
        churn_by_period(ACTIVE, labels[[DATES[0]]])


def test_several_schemes_share_one_all_row_per_period():
    labels = pd.DataFrame({DATES[0]: ["x", "y", "x", "y"], DATES[1]: ["x", "y", "x", "y"]})
    labels.index = ACTIVE.index
    numbers = pd.Series({"a": 10, "b": 2, "c": 2, "d": 10})  # clusters: sorted by value
    table = churn_by_schemes(ACTIVE, {"letters": labels, "cluster": numbers})
    assert table["scheme"].tolist()[:2] == ["all", "all"]
    assert (table["segment"] == "all").sum() == 2
    assert table.loc[table["scheme"] == "cluster", "segment"].unique().tolist() == ["2", "10"]
    assert table.columns[0] == "scheme"
    assert "lost_revenue" not in table.columns  # no purchases given: no revenue to count


def test_trailing_boundaries_end_on_the_as_of_date():
    dates = trailing_boundaries("2025-12-31", 4, 3)
    assert [d.date().isoformat() for d in dates] == [
        "2024-12-31",
        "2025-03-31",
        "2025-06-30",
        "2025-09-30",
        "2025-12-31",
    ]
