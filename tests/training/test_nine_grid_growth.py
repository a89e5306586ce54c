"""The nine-grid's growth axis spreads the demo customers: no growth band holds more than half
of them (on spend trend, most demo customers spent nothing in either 90-day window and all
of those were "declining")."""

from __future__ import annotations

import pytest

from models.clv import CLVModel
from models.customer_view import segmentation_input
from models.features import summarize
from models.segments.value import GROWTH_TIERS, NineGrid
from training import synthetic

AS_OF = "2025-12-31"


def _shares(tiers) -> dict[str, float]:
    counts = tiers.value_counts()
    return {tier: round(float(counts.get(tier, 0)) / len(tiers), 3) for tier in GROWTH_TIERS}


def _from_cells(sizes: dict[str, int]) -> dict[str, float]:
    total = sum(sizes.values())
    return {
        tier: round(sum(n for cell, n in sizes.items() if cell.endswith(tier)) / total, 3)
        for tier in GROWTH_TIERS
    }


def test_the_trained_demo_models_spread_the_growth_bands(trained_store):
    """The session's demo models (1,500 customers), as `cvm train` fitted them."""
    grid = trained_store["result"].models["segmentation"].nine_grid_
    shares = _from_cells(grid.segment_sizes_)
    print(f"growth bands of the demo fixture: {shares}, cuts {grid.growth_thresholds_}")
    assert grid.growth_column == "purchase_trend" and grid.horizon_days == 365
    metrics = trained_store["result"].metrics
    cuts = [metrics[f"segment_nine_grid_growth_cut_{side}"] for side in ("low", "high")]
    assert cuts == grid.growth_thresholds_
    assert max(shares.values()) <= 0.5
    assert all(share == pytest.approx(1 / 3, abs=0.01) for share in shares.values())


def test_the_generated_demo_data_spread_the_growth_bands():
    """`cvm generate` with its defaults (5,000 customers, seed 0): the purchase trend against
    the spend trend the nine-grid used before."""
    transactions, _, _ = synthetic.generate(5000, seed=0, as_of=AS_OF)
    summary = summarize(transactions, AS_OF)
    table = segmentation_input(summary, CLVModel().fit(summary).predict(summary))
    inactive = (summary["spend_recent"] + summary["spend_earlier"] == 0).mean()

    now = _shares(NineGrid().fit(table).predict(table)["growth_tier"])
    spend = NineGrid(growth_column="spend_trend", growth_cuts=(-1 / 3, 1 / 3)).fit(table)
    before = _shares(spend.predict(table)["growth_tier"])
    print(f"no spend in either window: {inactive:.3f}; growth bands {now}; before {before}")
    assert inactive > 0.7 and before["declining"] > 0.8
    assert max(now.values()) <= 0.5
    assert all(share == pytest.approx(1 / 3, abs=0.01) for share in now.values())
