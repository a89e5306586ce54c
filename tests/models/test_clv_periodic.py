"""BG/BB for discrete-opportunity businesses: periods from purchases and from a summary in days,
truth recovery on data generated from the BG/BB process, and DiscreteCLV's forecasts against
the BG/BB model's own closed forms (the published donation parameters are in
test_clv_reference.py)."""

import numpy as np
import pandas as pd
import pytest
from scipy import special

from models.clv import BGBB, DiscreteCLV
from models.clv.periodic import (
    PERIOD_COLUMNS,
    detect_period,
    input_example,
    period_summary,
    period_weights,
    periods_from_days,
    with_period_columns,
)
from models.exceptions import InvalidInputError
from models.features import summarize
from training.synthetic_discrete import generate_discrete

AS_OF = "2025-12-31"
TRUTH = {"alpha": 1.2, "beta": 0.75, "gamma": 0.66, "delta": 2.8}


@pytest.fixture(scope="module")
def monthly():
    """Monthly opportunities, 4,000 customers of the BG/BB process: (transactions, truth)."""
    transactions, _, truth = generate_discrete(4000, seed=21, period="month", **TRUTH)
    return transactions, truth.customers.set_index("customer_id")


@pytest.fixture(scope="module")
def fitted(monthly):
    transactions, _ = monthly
    model = DiscreteCLV(period="month", horizon_days=365, discount_rate=0.1, margin=0.3)
    summary = with_period_columns(model, summarize(transactions, AS_OF), transactions, AS_OF)
    return model.fit(summary), summary


def _tx(rows):
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"]).assign(
        timestamp=lambda f: pd.to_datetime(f["timestamp"])
    )


def test_periods_are_counted_back_from_as_of():
    # Weeks ending 2025-12-31: week 0 is Dec 25-31, week 1 Dec 18-24, ... week 4 Nov 27-Dec 3.
    tx = _tx(
        [
            ("a", "2025-11-27 10:00", 10.0),  # first purchase: 34 days back, week 4
            ("a", "2025-11-30 10:00", 5.0),  # the same week as the first: not an opportunity
            ("a", "2025-12-10 10:00", 7.0),  # week 3 (21 days back) -> period 1
            ("a", "2025-12-11 09:00", 7.0),  # week 2 (20 days back) -> period 2
            ("a", "2025-12-12 09:00", 7.0),  # week 2 again: one transacting period
            ("b", "2025-12-25 12:00", 3.0),  # first purchase in the latest week: n = 0
            ("c", "2025-12-03 12:00", 3.0),  # 28 days back: week 4, nothing after
            ("c", "2026-01-02 12:00", 3.0),  # after as_of: ignored
        ]
    )
    table = period_summary(tx, AS_OF, "week")
    assert table.index.tolist() == ["a", "b", "c"]
    assert table.loc["a"].tolist() == [2.0, 2.0, 4.0]  # x, t_x, n
    assert table.loc["b"].tolist() == [0.0, 0.0, 0.0]
    assert table.loc["c"].tolist() == [0.0, 0.0, 4.0]
    # From the summary in days: n and t_x exact; x = min(frequency, t_x) = min(4, 2) = 2 here,
    # an upper bound in general.
    summary = summarize(tx, AS_OF)
    x, t_x, n = periods_from_days(summary["frequency"], summary["recency"], summary["T"], "week")
    assert n.tolist() == [4.0, 0.0, 4.0] and t_x.tolist() == [2.0, 0.0, 0.0]
    assert x.tolist() == [2.0, 0.0, 0.0]


def test_one_purchase_per_period_converts_from_days_exactly(monthly):
    transactions, truth = monthly
    table = period_summary(transactions, AS_OF, "month")
    columns = ["period_frequency", "period_recency", "periods"]
    np.testing.assert_array_equal(table[columns].to_numpy(), truth.loc[table.index, columns])
    summary = summarize(transactions, AS_OF)
    converted = np.column_stack(
        periods_from_days(summary["frequency"], summary["recency"], summary["T"], "month")
    )
    np.testing.assert_array_equal(converted, table[columns].to_numpy())


def test_bgbb_recovers_the_generating_parameters():
    transactions, _, _ = generate_discrete(20000, seed=5, period="month", periods=36, **TRUTH)
    table = period_summary(transactions, AS_OF, "month")
    model = BGBB().fit(table["period_frequency"], table["period_recency"], table["periods"])
    for name, value in TRUTH.items():
        estimate, se = model.params_[name], model.standard_errors_[name]
        assert abs(estimate - value) < 3 * se, (name, estimate, se)
        assert estimate == pytest.approx(value, rel=0.05), name


def test_discrete_clv_forecasts_match_the_bgbb_closed_forms(fitted):
    model, summary = fitted
    out = model.predict(summary)
    x, t_x, n = (summary[c].to_numpy() for c in PERIOD_COLUMNS)
    bgbb = model.bgbb_
    assert model.purchases_per_period_ == 1.0  # one purchase per period in these data
    assert model.horizon_periods == 12
    # Expected transactions in the next 12 months: BGBB's own sum over periods.
    np.testing.assert_allclose(
        out["expected_purchases"], bgbb.expected_purchases(12, x, t_x, n), rtol=1e-10
    )
    np.testing.assert_allclose(
        out["probability_alive"], bgbb.probability_alive(x, t_x, n), rtol=1e-12
    )
    # CLV: each month's expected transactions (the increments of the cumulative forecast)
    # discounted at 10 % a year, × Gamma-Gamma spend × the 0.3 margin.
    months = np.arange(1, 13)
    cumulative = np.column_stack([bgbb.expected_purchases(k, x, t_x, n) for k in months])
    per_month = np.diff(cumulative, axis=1, prepend=0.0)
    discount = 1.1 ** (-months * (365.25 / 12) / 365.25)
    spend = model.gamma_gamma_.expected_spend(summary["frequency"], summary["monetary_value"])
    np.testing.assert_allclose(out["clv"], per_month @ discount * spend * 0.3, rtol=1e-9)
    assert (out["clv_lower"] <= out["clv"]).all() and (out["clv"] <= out["clv_upper"]).all()
    assert (out["margin"] == 0.3).all()
    assert model.high_value_threshold_ == pytest.approx(np.quantile(out["clv"], 0.8))


def test_forecast_over_part_of_a_period_counts_that_part(fitted):
    model, summary = fitted
    rows = summary.head(50)
    x, t_x, n = (rows[c].to_numpy() for c in PERIOD_COLUMNS)
    one = model.bgbb_.expected_purchases(1, x, t_x, n)
    two = model.bgbb_.expected_purchases(2, x, t_x, n)
    days = 1.5 * 365.25 / 12
    np.testing.assert_allclose(
        model.forecast_purchases(days, rows), one + 0.5 * (two - one), rtol=1e-10
    )
    assert period_weights(1.5).tolist() == [1.0, 0.5]
    assert period_weights(12.0).tolist() == [1.0] * 12


def test_forecasts_track_what_happened_next(fitted, monthly):
    model, summary = fitted
    _, truth = monthly
    out = model.predict(summary)
    future = truth.loc[out.index, "future_transactions"]
    # 12 months after as_of: the total within 5 %, and P(alive) near the true share alive.
    assert out["expected_purchases"].sum() == pytest.approx(future.sum(), rel=0.05)
    alive = truth.loc[out.index, "alive_at_as_of"].mean()
    assert out["probability_alive"].mean() == pytest.approx(alive, abs=0.02)


def test_a_summary_without_periods_is_converted(fitted):
    model, summary = fitted
    days_only = summary.drop(columns=PERIOD_COLUMNS)
    pd.testing.assert_frame_equal(model.predict(days_only), model.predict(summary))
    # Missing period columns in some rows: those rows are converted, the others kept.
    mixed = summary.copy()
    mixed.loc[mixed.index[:3], PERIOD_COLUMNS] = np.nan
    mixed.loc[mixed.index[3], "period_frequency"] = 0.0  # given: used as sent
    mixed.loc[mixed.index[3], "period_recency"] = 0.0
    out = model.predict(mixed)
    pd.testing.assert_frame_equal(out.iloc[:3], model.predict(summary).iloc[:3])
    x, t_x, n = model.periods_of(mixed.iloc[[3]])
    assert (x[0], t_x[0]) == (0.0, 0.0)
    example = input_example(model, summary, ["frequency", "recency", "T", "monetary_value"])
    assert example[PERIOD_COLUMNS].iloc[-1].isna().all()
    assert example[PERIOD_COLUMNS].iloc[:-1].notna().all().all()


def test_period_rhythm_is_detected_only_in_regular_data(demo_data):
    regular, _, _ = generate_discrete(800, seed=2, period="month", regular=True)
    assert detect_period(regular, AS_OF) == ("month", 1.0)
    yearly, _, _ = generate_discrete(800, seed=2, period="year", periods=8, cohorts=3, regular=True)
    assert detect_period(yearly, AS_OF)[0] == "year"
    at_random, _, _ = generate_discrete(800, seed=2, period="month")
    found, share = detect_period(at_random, AS_OF)
    assert found is None and 0.1 < share < 0.3  # a period fits by chance about a fifth
    assert detect_period(demo_data[0], AS_OF)[0] is None


def test_clear_errors():
    with pytest.raises(InvalidInputError, match="period must be one of week, month") as caught:
        period_summary(_tx([("a", "2025-01-01", 1.0)]), AS_OF, "fortnight")
    assert caught.value.field == "period"
    few, _, _ = generate_discrete(30, seed=1, period="year", periods=2, cohorts=2)
    summary = summarize(few, AS_OF)
    with pytest.raises(
        InvalidInputError,
        match="at least 20 customers with two whole years after their first purchase.s; 0 of 30",
    ):
        DiscreteCLV(period="year").fit(summary)
    bad = summary.head(2).assign(period_frequency=[3.0, 0.0], period_recency=[1.0, 0.0])
    bad = bad.assign(periods=[1.0, 0.0])
    model = DiscreteCLV(period="year")
    with pytest.raises(
        InvalidInputError, match=r"period_frequency is greater than period_recency \(rows \[0\]\)"
    ) as caught:
        model.periods_of(bad)
    assert caught.value.field == "period_frequency"
    with pytest.raises(InvalidInputError, match="missing the column 'T'"):
        model.periods_of(summary.drop(columns="T"))


def test_log_likelihood_equals_the_direct_sum():
    """The tabulated likelihood against the BG/BB formula written out term by term."""
    a, b, g, d = 1.2, 0.75, 0.66, 2.8
    rows = [(0, 0, 6), (1, 1, 6), (3, 5, 6), (6, 6, 6), (2, 4, 9), (0, 0, 0)]
    direct = []
    for x, t_x, n in rows:
        total = np.exp(
            special.betaln(a + x, b + n - x)
            - special.betaln(a, b)
            + special.betaln(g, d + n)
            - special.betaln(g, d)
        )
        for i in range(n - t_x):
            total += np.exp(
                special.betaln(a + x, b + t_x - x + i)
                - special.betaln(a, b)
                + special.betaln(g + 1, d + t_x + i)
                - special.betaln(g, d)
            )
        direct.append(np.log(total))
    x, t_x, n = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    ours = BGBB()._loglik_rows(np.array([a, b, g, d]), (x, t_x, n))
    np.testing.assert_allclose(ours, direct, rtol=1e-12, atol=1e-14)


def test_worked_numbers_at_the_published_donation_parameters():
    """The figures docs/METHODS.md quotes: donors of the 1995 cohort after 6 yearly chances."""
    model = BGBB()
    model.params_ = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}
    x, t_x, n = np.array([6.0, 1.0]), np.array([6.0, 1.0]), np.array([6.0, 6.0])
    np.testing.assert_allclose(model.probability_alive(x, t_x, n), [0.930, 0.069], atol=5e-4)
    np.testing.assert_allclose(model.expected_purchases(5, x, t_x, n), [3.752, 0.086], atol=5e-4)
