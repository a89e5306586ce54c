import numpy as np
import pandas as pd
import pytest

from models.drift import MIN_ROWS, RETRAIN_PSI, DriftMonitor, psi, reference_distribution


def test_psi_worked_example():
    # Two bins, 50/50 expected vs 70/30 actual: 0.2·ln(1.4) + (−0.2)·ln(0.6)
    assert psi([0.5, 0.5], [0.7, 0.3]) == pytest.approx(0.2 * np.log(1.4) - 0.2 * np.log(0.6))
    assert psi([0.2, 0.8], [0.2, 0.8]) == 0.0


def test_monitor_flags_a_shifted_population_only():
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"x": rng.normal(0, 1, 20_000), "y": rng.exponential(1, 20_000)})
    reference = reference_distribution(train, ["x", "y", "absent"])
    assert set(reference) == {"x", "y"}
    assert sum(reference["x"]["expected"]) == pytest.approx(1.0)
    same = DriftMonitor(reference)
    same.update(pd.DataFrame({"x": rng.normal(0, 1, 5000), "y": rng.exponential(1, 5000)}))
    shifted = DriftMonitor(reference)
    shifted.update(pd.DataFrame({"x": rng.normal(1, 1, 5000), "y": rng.exponential(1, 5000)}))
    stable, moved = same.report(), shifted.report()
    assert max(stable["psi"].values()) < 0.02 and not stable["retrain"]
    assert moved["psi"]["x"] > RETRAIN_PSI and moved["psi"]["y"] < 0.02 and moved["retrain"]
    assert moved["rows"] == 5000


def test_missing_values_have_their_own_bin():
    reference = reference_distribution(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), ["x"])
    monitor = DriftMonitor(reference, min_rows=10)
    monitor.update(pd.DataFrame({"x": [np.nan] * 10}))
    assert monitor.report()["psi"]["x"] > 1


def test_a_monitor_is_silent_until_it_has_seen_min_rows():
    """Six customers gave PSI 3-8 and retrain: true; below min_rows the report says "not
    enough data yet", shows no PSI and never asks for a retrain."""
    rng = np.random.default_rng(1)
    reference = reference_distribution(pd.DataFrame({"x": rng.normal(0, 1, 20_000)}), ["x"])
    monitor = DriftMonitor(reference)
    assert monitor.min_rows == MIN_ROWS == 500
    monitor.update(pd.DataFrame({"x": rng.normal(5, 1, 6)}))  # six far-off customers
    report = monitor.report()
    assert report["rows"] == 6 and report["psi"] == {} and report["retrain"] is False
    assert report["status"] == "not enough data yet: 6 of 500 customers scored"
    monitor.update(pd.DataFrame({"x": rng.normal(5, 1, 494)}))  # 500 now: it speaks
    report = monitor.report()
    assert report["status"] == "ok" and report["retrain"] is True
    assert report["psi"]["x"] > 5  # the shift is real: all 500 in the top decile
    small = DriftMonitor(reference, min_rows=6)
    small.update(pd.DataFrame({"x": rng.normal(0, 1, 6)}))
    assert small.report()["status"] == "ok" and set(small.report()["psi"]) == {"x"}
    with pytest.raises(ValueError, match="min_rows"):
        DriftMonitor(reference, min_rows=0)
