"""Lifecycle stage: acquisition / growth / maturity / decline / lapsed."""

import numpy as np
import pandas as pd
import pytest

from models.exceptions import InvalidInputError
from models.segments import LIFECYCLE_STAGES, LifecycleStage

# name: (tenure_days, days_since_last, n_purchases, activity_trend, expected stage)
ROWS = {
    "new_repeat": (40.0, 10.0, 2.0, 1.0, "acquisition"),  # own gap 30
    "growing": (400.0, 5.0, 14.0, 0.5, "growth"),  # gap 395/13
    "steady": (400.0, 20.0, 11.0, 0.0, "maturity"),  # gap 38
    "falling": (400.0, 10.0, 13.0, -0.5, "decline"),  # gap 32.5
    "overdue": (400.0, 60.0, 12.0, 0.0, "decline"),  # gap 340/11, silent 1.9 gaps
    "gone": (500.0, 200.0, 11.0, 0.0, "lapsed"),  # own gap 30 < typical: 6.6 gaps
    "one_timer_gone": (300.0, 300.0, 1.0, 0.0, "lapsed"),  # typical gap, silent 9.8 gaps
    "one_timer_new": (20.0, 20.0, 1.0, 1.0, "acquisition"),
    "quick_pair": (100.0, 70.0, 3.0, 0.0, "decline"),  # own gap 15 < typical: 2.3 gaps
    "at_growth_cut": (400.0, 5.0, 14.0, 1 / 3, "growth"),
    "at_decline_cut": (400.0, 5.0, 14.0, -1 / 3, "decline"),
}
# The median of the nine repeat buyers' own gaps 15, 30, 30, 395/13 (×3), 340/11, 32.5, 38.
TYPICAL_GAP = 395 / 13


def _table(rows=ROWS):
    return pd.DataFrame(
        [row[:4] for row in rows.values()],
        columns=["tenure_days", "days_since_last", "n_purchases", "activity_trend"],
        index=list(rows),
    )


def test_lifecycle_golden_stages_from_recency_rules():
    table = _table()
    model = LifecycleStage().fit(table)
    assert model.typical_gap_days_ == pytest.approx(TYPICAL_GAP)
    assert model.uses_probability_alive_ is False
    out = model.predict(table)
    assert out["lifecycle_stage"].to_dict() == {name: row[4] for name, row in ROWS.items()}
    assert (out["lifecycle_basis"] == "recency").all() and out["probability_alive"].isna().all()
    assert out.loc["gone", "silence_ratio"] == pytest.approx(200 / TYPICAL_GAP)
    assert out.loc["quick_pair", "silence_ratio"] == pytest.approx(70 / TYPICAL_GAP)
    assert model.segment_sizes_ == {
        "acquisition": 2,
        "growth": 2,
        "maturity": 1,
        "decline": 4,
        "lapsed": 2,
    }
    assert list(model.segment_sizes_) == list(LIFECYCLE_STAGES)


def test_probability_alive_moves_customers_to_decline_and_lapsed():
    table = _table()
    model = LifecycleStage().fit(table)
    growing = table.loc[["growing"] * 5].set_axis(["p05", "p19", "p20", "p49", "p50"])
    growing = growing.assign(probability_alive=[0.05, 0.19, 0.2, 0.49, 0.5])
    out = model.predict(growing)
    assert out["lifecycle_stage"].tolist() == ["lapsed", "lapsed", "decline", "decline", "growth"]
    assert (out["lifecycle_basis"] == "probability_alive").all()
    # The silence rule still applies when P(alive) says alive (BG/NBD: one-timers have 1.0).
    gone = table.loc[["one_timer_gone"]].assign(probability_alive=1.0)
    assert model.predict(gone)["lifecycle_stage"].tolist() == ["lapsed"]
    # Where P(alive) is missing, the recency rules decide alone.
    mixed = table.loc[["steady", "steady"]].assign(probability_alive=[np.nan, 0.1])
    out = model.predict(mixed)
    assert out["lifecycle_stage"].tolist() == ["maturity", "lapsed"]
    assert out["lifecycle_basis"].tolist() == ["recency", "probability_alive"]


def test_lifecycle_thresholds_are_parameters():
    table = _table()
    model = LifecycleStage(acquisition_days=10, lapse_gap_factor=10, decline_gap_factor=5).fit(
        table
    )
    out = model.predict(table)["lifecycle_stage"]
    assert out["new_repeat"] == "growth"  # no longer within the acquisition window
    assert out["gone"] == "decline"  # 6.6 gaps: beyond 5, within 10
    assert out["overdue"] == "maturity"


def test_lifecycle_stages_separate_future_buyers_on_demo_data():
    from models.features import summarize
    from training import synthetic

    transactions, _, truth = synthetic.generate(4000, seed=8)
    summary = summarize(transactions, truth.params["as_of"])
    stage = LifecycleStage().fit(summary).predict(summary)["lifecycle_stage"]
    future = truth.customers.set_index("customer_id")["future_purchases"].reindex(summary.index)
    buys_again = (future > 0).groupby(stage).mean()
    assert buys_again["lapsed"] < 0.2 < 0.5 < buys_again["growth"]
    assert buys_again["lapsed"] < buys_again["decline"] < buys_again["maturity"]


def test_lifecycle_errors():
    with pytest.raises(InvalidInputError, match="activity_trend"):
        LifecycleStage().fit(_table().drop(columns=["activity_trend"]))
    with pytest.raises(InvalidInputError, match="decline_trend"):
        LifecycleStage(decline_trend=0.5, growth_trend=0.2).fit(_table())
    with pytest.raises(InvalidInputError, match="lapsed_alive"):
        LifecycleStage(lapsed_alive=0.6, decline_alive=0.5).fit(_table())
