"""Value matrix (Gold / Meteor / Stream / Burden) and nine-grid."""

import numpy as np
import pandas as pd
import pytest

from models.exceptions import InvalidInputError
from models.features import summarize
from models.segments import (
    DEFAULT_NINE_GRID_STRATEGIES,
    NINE_GRID_CELLS,
    NineGrid,
    ValueMatrix,
)
from models.segments.value import purchase_trend


# --- value matrix --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo():
    from training import synthetic

    transactions, _, truth = synthetic.generate(5000, seed=21)
    as_of = truth.params["as_of"]
    planted = truth.customers.set_index("customer_id")["value_type"]
    return transactions, as_of, planted


def test_value_matrix_recovers_each_planted_type(demo):
    transactions, as_of, planted = demo
    summary = summarize(transactions, as_of)
    model = ValueMatrix().fit(summary)
    out = model.predict(summary)
    truth = planted.reindex(summary.index).str.lower()
    assert truth.notna().all() and truth.nunique() == 4
    for value_type in ("gold", "meteor", "stream", "burden"):
        mine = truth == value_type
        recovered = (out.loc[mine, "value_type"] == value_type).mean()
        assert mine.sum() > 1000 and recovered >= 0.90, (value_type, recovered)
    assert (out["value_basis"] == "profit").all() and model.value_basis_ == "profit"
    # Learned thresholds: the median profit per purchase and the repeat buyers' median count.
    assert model.profit_threshold_ == pytest.approx(summary["profit_per_purchase"].median())
    assert model.repeat_threshold_ == 2.0
    assert model.margin_source_ == "data" and 0.1 < model.margin_ < 0.25
    assert sum(model.segment_sizes_.values()) == len(summary)


def test_value_matrix_without_costs_says_it_assumed_a_margin(demo):
    transactions, as_of, _ = demo
    summary = summarize(transactions.drop(columns=["cost"]), as_of)
    assert summary["profit_per_purchase"].isna().all()
    model = ValueMatrix(margin=0.25).fit(summary)
    out = model.predict(summary)
    assert (out["value_basis"] == "assumed_margin").all()
    assert model.value_basis_ == "assumed_margin" and model.margin_source_ == "configured"
    np.testing.assert_allclose(out["profit_per_purchase"], 0.25 * summary["avg_order_value"])
    unset = ValueMatrix().fit(summary)
    assert unset.margin_source_ == "none" and unset.margin_ == 1.0
    # With learned thresholds the assumed margin does not change who is in which type.
    assert (unset.predict(summary)["value_type"] == out["value_type"]).all()


def _table(profit, repeats, aov=None):
    return pd.DataFrame(
        {
            "frequency": repeats,
            "profit_per_purchase": profit,
            "avg_order_value": aov if aov is not None else [100.0] * len(profit),
        },
        index=[f"v{i}" for i in range(len(profit))],
    )


def test_value_matrix_golden_with_learned_thresholds():
    table = _table([-5.0, 1.0, 2.0, 10.0, 20.0, 30.0], [0.0, 5.0, 1.0, 0.0, 3.0, 4.0])
    model = ValueMatrix().fit(table)
    assert model.profit_threshold_ == 6.0  # median of -5, 1, 2, 10, 20, 30
    assert model.repeat_threshold_ == 4.0  # median of the repeaters' 5, 1, 3, 4 → 3.5 → 4
    out = model.predict(table)
    assert out["value_type"].tolist() == ["burden", "stream", "burden", "meteor", "meteor", "gold"]
    assert model.segment_sizes_ == {"gold": 1, "meteor": 2, "stream": 1, "burden": 2}


def test_value_matrix_configured_thresholds_and_boundaries():
    table = _table([10.0, 9.99, 10.0, 9.99], [2.0, 2.0, 1.0, 1.0])
    model = ValueMatrix(profit_threshold=10.0, repeat_threshold=2).fit(table)
    out = model.predict(table)
    assert out["value_type"].tolist() == ["gold", "stream", "meteor", "burden"]


def test_value_matrix_mixed_costs_use_the_observed_margin():
    table = pd.DataFrame(
        {
            "n_purchases": [3.0, 1.0, 2.0],  # no frequency column: n_purchases − 1
            "profit_per_purchase": [30.0, 10.0, np.nan],
            "avg_order_value": [100.0, 100.0, 50.0],
            "total_profit": [90.0, 10.0, np.nan],
            "total_revenue": [300.0, 100.0, 100.0],
        }
    )
    model = ValueMatrix().fit(table)
    assert model.margin_ == pytest.approx(100.0 / 400.0) and model.margin_source_ == "data"
    out = model.predict(table)
    assert out["profit_per_purchase"].tolist() == [30.0, 10.0, 12.5]
    assert out["value_basis"].tolist() == ["profit", "profit", "assumed_margin"]
    assert out["repeat_purchases"].tolist() == [2.0, 0.0, 1.0]
    assert model.value_basis_ == "mixed"


def test_value_matrix_values_a_row_without_costs_at_its_own_margin_rate():
    """A summary sent with a margin rate and no profit columns: profit = margin rate × average
    order value, as costs at that margin would give; without either, the assumed margin."""
    model = ValueMatrix(profit_threshold=50.0, repeat_threshold=2, margin=0.25).fit(
        _table([10.0], [1.0])
    )
    rows = pd.DataFrame(
        {
            "frequency": [10.0, 10.0, 10.0],
            "avg_order_value": [200.0, 200.0, 200.0],
            "margin_rate": [-0.5, 0.9, np.nan],
            "profit_per_purchase": [np.nan, np.nan, np.nan],
        }
    )
    out = model.predict(rows)
    assert out["profit_per_purchase"].tolist() == [-100.0, 180.0, 50.0]
    assert out["value_type"].tolist() == ["stream", "gold", "gold"]
    assert out["value_basis"].tolist() == ["profit", "profit", "assumed_margin"]


def test_value_matrix_errors():
    with pytest.raises(InvalidInputError, match="avg_order_value"):
        ValueMatrix().fit(pd.DataFrame({"frequency": [1.0], "profit_per_purchase": [np.nan]}))
    with pytest.raises(InvalidInputError, match="frequency"):
        ValueMatrix().fit(pd.DataFrame({"profit_per_purchase": [1.0]}))
    with pytest.raises(InvalidInputError, match="profit_quantile"):
        ValueMatrix(profit_quantile=1.0).fit(_table([1.0], [1.0]))


# --- nine-grid -----------------------------------------------------------------------------
# The measure and fixed cuts of the models saved before the purchase trend (still selectable).
SPEND_TREND = {"growth_column": "spend_trend", "growth_cuts": (-1 / 3, 1 / 3)}


def _grid_table():
    """Revenue 1..9 (value tiers low 1-3, mid 4-6, high 7-9) × spend trend −½, 0, +½."""
    return pd.DataFrame(
        {
            "total_revenue": np.arange(1.0, 10.0),
            "margin_rate": np.nan,  # no cost data: dropped from the value index
            "spend_trend": [-0.5, 0.0, 0.5] * 3,
        },
        index=[f"n{i}" for i in range(9)],
    )


def test_nine_grid_golden_cells_and_strategies():
    table = _grid_table()
    model = NineGrid(**SPEND_TREND).fit(table)
    assert model.value_columns_ == ["total_revenue"] and model.value_weights_ == [1.0]
    assert model.growth_thresholds_ == [-1 / 3, 1 / 3]
    out = model.predict(table)
    np.testing.assert_allclose(out["value_index"], (2 * np.arange(9) + 1) / 18)
    assert out["value_tier"].tolist() == ["low"] * 3 + ["mid"] * 3 + ["high"] * 3
    assert out["growth_tier"].tolist() == ["declining", "stable", "growing"] * 3
    assert out["nine_grid"].tolist() == [
        "low_value_declining",
        "low_value_stable",
        "low_value_growing",
        "mid_value_declining",
        "mid_value_stable",
        "mid_value_growing",
        "high_value_declining",
        "high_value_stable",
        "high_value_growing",
    ]
    assert out["nine_grid_strategy"].tolist() == [
        "planned_exit",
        "adjust_and_optimise",
        "develop_deeper",
        "adjust_and_optimise",
        "develop_deeper",
        "develop_deeper",
        "adjust_and_optimise",
        "keep_investing",
        "keep_investing",
    ]
    assert model.segment_sizes_ == dict.fromkeys(NINE_GRID_CELLS, 1)


def test_nine_grid_spend_trend_boundaries_and_inactive_customers():
    model = NineGrid(**SPEND_TREND).fit(_grid_table())
    new = pd.DataFrame(
        {
            "total_revenue": [100.0] * 5,
            "spend_trend": [1 / 3, -1 / 3, -0.34, 0.0, np.nan],
            "spend_recent": [1.0, 1.0, 1.0, 0.0, 1.0],
            "spend_earlier": [0.5, 2.0, 2.0, 0.0, 1.0],
        }
    )
    out = model.predict(new)
    assert out["value_tier"].tolist() == ["high"] * 5
    # +1/3 is growing, −1/3 still stable; no spend in either window is declining.
    assert out["growth_tier"].tolist() == ["growing", "stable", "declining", "declining", "stable"]


def test_purchase_trend_worked_numbers():
    """Expected purchases over the next 365 days against the customer's own past rate."""
    trend = purchase_trend(
        expected_purchases=np.array([1.0, 3.0, 0.0, 0.0, 2.0, np.nan]),
        n_purchases=np.array([4.0, 1.0, 1.0, 0.0, 2.0, 3.0]),
        tenure_days=np.array([730.0, 100.0, 400.0, 0.0, 365.0, 900.0]),
        horizon_days=365,
    )
    # 4 purchases in 730 days: 2 per year; 1 expected: (1 − 2) / (1 + 2) = −1/3.
    # 1 purchase in 100 days (younger than a year): past 1; 3 expected: (3 − 1) / 4 = +½.
    # 1 purchase in 400 days: past 365/400 = 0.9125; nothing expected: −1.
    # Nothing either way: 0. The same rate: 0. No forecast: missing.
    np.testing.assert_allclose(trend[:5], [-1 / 3, 0.5, -1.0, 0.0, 0.0], rtol=0, atol=1e-15)
    assert np.isnan(trend[5])


def _trend_table(trends):
    """Customers of revenue 1..n with 2 purchases in their first year and the expected
    purchases that give each of ``trends`` (past 2: e = 2 (1 + t) / (1 − t))."""
    t = np.asarray(trends, dtype=float)
    return pd.DataFrame(
        {
            "total_revenue": np.arange(1.0, len(t) + 1),
            "n_purchases": 2.0,
            "tenure_days": 365.0,
            "expected_purchases": 2 * (1 + t) / (1 - t),
        },
        index=[f"p{i}" for i in range(len(t))],
    )


def test_nine_grid_growth_tiers_are_the_terciles_of_the_purchase_trend():
    trends = [-0.8, -0.5, -0.2, 0.0, 0.1, 0.3, -0.6, 0.5, 0.2]
    table = _trend_table(trends)
    model = NineGrid().fit(table)
    assert model.growth_column == "purchase_trend" and model.growth_cuts is None
    # sorted: −0.8 −0.6 −0.5 | −0.2 0 0.1 | 0.2 0.3 0.5; numpy's linear quantiles at 1/3, 2/3
    np.testing.assert_allclose(model.growth_thresholds_, [-0.3, 0.4 / 3], atol=1e-12)
    out = model.predict(table)
    np.testing.assert_allclose(out["growth_index"], trends, atol=1e-12)
    assert out["growth_tier"].tolist() == [
        "declining",
        "declining",
        "stable",
        "stable",
        "stable",
        "growing",
        "declining",
        "growing",
        "growing",
    ]
    # a customer without a forecast is stable
    missing = model.predict(table.head(1).assign(expected_purchases=np.nan))
    assert missing["growth_tier"].tolist() == ["stable"]


def test_nine_grid_needs_the_forecast_and_takes_fixed_cuts():
    table = _trend_table([-0.5, 0.0, 0.5])
    with pytest.raises(InvalidInputError, match="expected_purchases") as error:
        NineGrid().fit(table.drop(columns=["expected_purchases"]))
    assert error.value.field == "expected_purchases"
    with pytest.raises(InvalidInputError, match="no customer has a growth measure"):
        NineGrid().fit(table.assign(expected_purchases=np.nan))
    fixed = NineGrid(growth_cuts=(-0.25, 0.25)).fit(table)
    assert fixed.growth_thresholds_ == [-0.25, 0.25]
    assert fixed.predict(table)["growth_tier"].tolist() == ["declining", "stable", "growing"]
    with pytest.raises(InvalidInputError, match="growth_quantiles"):
        NineGrid(growth_quantiles=(0.0, 0.5)).fit(table)
    with pytest.raises(InvalidInputError, match="horizon_days"):
        NineGrid(horizon_days=0).fit(table)


def test_a_nine_grid_saved_before_the_purchase_trend_scores_as_it_did():
    """The state of a model pickled by the earlier release: spend trend at fixed cuts, no
    learned growth thresholds, quantiles or horizon."""
    model = NineGrid(**SPEND_TREND).fit(_grid_table())
    state = dict(model.__getstate__())
    for name in ("growth_thresholds_", "growth_quantiles", "horizon_days"):
        del state[name]
    old = NineGrid.__new__(NineGrid)
    old.__setstate__(state)
    assert old.growth_thresholds_ == [-1 / 3, 1 / 3]
    assert old.get_params()["horizon_days"] == 365.0
    pd.testing.assert_frame_equal(old.predict(_grid_table()), model.predict(_grid_table()))


def test_nine_grid_value_index_weighs_revenue_and_margin():
    # Revenue ranks and margin ranks pull in opposite directions: all three tie at ½.
    table = pd.DataFrame(
        {
            "total_revenue": [100.0, 10.0, 50.0],
            "margin_rate": [0.1, 0.5, 0.3],
            "spend_trend": [0.0, 0.0, 0.0],
        }
    )
    model = NineGrid(**SPEND_TREND).fit(table)
    assert model.value_columns_ == ["total_revenue", "margin_rate"]
    np.testing.assert_allclose(model.predict(table)["value_index"], [0.5, 0.5, 0.5])
    best = pd.DataFrame({"total_revenue": [100.0], "margin_rate": [0.5], "spend_trend": [0.0]})
    assert model.predict(best)["value_index"].tolist() == pytest.approx([5 / 6])
    # A customer without a known margin is ranked on revenue alone.
    partial = best.assign(margin_rate=np.nan)
    assert model.predict(partial)["value_index"].tolist() == pytest.approx([5 / 6])
    nothing = best.assign(total_revenue=np.nan, margin_rate=np.nan)
    assert model.predict(nothing)["value_tier"].tolist() == ["low"]


def test_nine_grid_custom_strategies_and_errors():
    custom = {**DEFAULT_NINE_GRID_STRATEGIES, "low_value_declining": "adjust_and_optimise"}
    out = NineGrid(strategies=custom, **SPEND_TREND).fit(_grid_table()).predict(_grid_table())
    assert out["nine_grid_strategy"].iloc[0] == "adjust_and_optimise"
    partial = {"high_value_growing": "keep_investing"}
    with pytest.raises(InvalidInputError, match="strategies lack"):
        NineGrid(strategies=partial, **SPEND_TREND).fit(_grid_table())
    with pytest.raises(InvalidInputError, match="has data"):
        NineGrid(value_weights={"total_profit": 1.0}, **SPEND_TREND).fit(_grid_table())
    with pytest.raises(InvalidInputError, match="spend_trend"):
        NineGrid(**SPEND_TREND).fit(_grid_table().drop(columns=["spend_trend"]))
    with pytest.raises(InvalidInputError, match="increasing"):
        NineGrid(growth_column="spend_trend", growth_cuts=(0.5, -0.5)).fit(_grid_table())
