import pandas as pd
import pytest

from models.clv import CLVModel
from models.clv.contractual import ContractualCLV
from models.features import summarize
from training.train_clv import choice_scores, holdout_window, purchase_days_between, train_clv

AS_OF = pd.Timestamp("2025-12-31")


def _train(transactions, customers, **kwargs):
    summary = summarize(transactions, AS_OF)
    options = dict(
        holdout_days=180, horizon_days=365, discount_rate=0.1, margin=None, time_unit_days=7.0
    )
    options.update(kwargs)
    return train_clv(transactions, customers, summary, AS_OF, step=lambda m: None, **options)


def test_model_choice_scores_both_on_the_holdout_and_keeps_the_better(demo_data):
    transactions, customers, _ = demo_data
    out = _train(transactions, customers)
    maes = {m: out.metrics[f"clv_{m}_holdout_mae"] for m in ("bgnbd", "paretonbd")}
    totals = {m: out.metrics[f"clv_{m}_holdout_total_error_pct"] for m in maes}
    combined = {m: maes[m] / min(maes.values()) + abs(totals[m]) / 100 for m in maes}
    assert {m: out.metrics[f"clv_{m}_choice_score"] for m in maes} == pytest.approx(combined)
    chosen = min(combined, key=combined.get)
    assert out.params["clv_model"] == chosen == "paretonbd"
    assert out.params["clv_choice_reason"] == (
        f"paretonbd MAE {maes['paretonbd']:.3f}, total error {totals['paretonbd']:+.1f}% against "
        f"bgnbd MAE {maes['bgnbd']:.3f}, total error {totals['bgnbd']:+.1f}% (per-customer MAE "
        "relative to the best plus the error of the total)"
    )
    assert isinstance(out.model, CLVModel) and out.model.purchase_model == chosen
    assert out.metrics["clv_holdout_mae"] == maes[chosen]
    assert {"clv_holdout_by_frequency.png", "clv_cumulative_repeat_purchases.png"} <= set(
        out.figures
    )
    tracking = out.tables["clv_cumulative_tracking"]
    # The actual curve ends at the cohort's repeat purchase days up to as_of.
    calibration = summarize(transactions, AS_OF - pd.Timedelta(days=180))
    cohort = transactions[transactions["customer_id"].isin(calibration.index)]
    days = cohort.assign(day=cohort["timestamp"].dt.normalize())[
        ["customer_id", "day"]
    ].drop_duplicates()
    assert tracking["actual"].iloc[-1] == len(days) - days["customer_id"].nunique()
    # Both models' predicted totals over the holdout are close to the actual (within 15 %).
    holdout = tracking[tracking["holdout"]]
    actual_gain = holdout["actual"].iloc[-1] - holdout["actual"].iloc[0]
    for model in ("bgnbd", "paretonbd"):
        gain = holdout[model].iloc[-1] - holdout[model].iloc[0]
        assert gain == pytest.approx(actual_gain, rel=0.15)


def test_a_hair_better_per_customer_does_not_win_with_a_fifth_off_in_total():
    """The case of a real run: Pareto/NBD's MAE was 3 % lower, but it under-forecast the
    holdout's total by 21.4 % against BG/NBD's +10.5 %."""
    results = {
        "paretonbd": {"clv_holdout_mae": 0.644, "clv_holdout_total_error_pct": -21.4},
        "bgnbd": {"clv_holdout_mae": 0.6633, "clv_holdout_total_error_pct": 10.5},
    }
    scores = choice_scores(results)
    assert scores == pytest.approx({"paretonbd": 1.214, "bgnbd": 0.6633 / 0.644 + 0.105})
    assert min(scores, key=scores.get) == "bgnbd"


def test_a_candidate_whose_forecast_is_not_a_number_is_never_chosen(demo_data, monkeypatch):
    """A fit that broke down (NaN forecasts) scores infinity, by either rule, and is said; the
    other candidate is chosen. BG/NBD is tried first: a NaN score there used to stay the
    minimum, as no comparison with NaN is true."""
    import numpy as np

    from models.clv import PURCHASE_MODELS

    class Broken(PURCHASE_MODELS["bgnbd"]):
        def expected_purchases(self, *args, **kwargs):
            return np.full(len(np.atleast_1d(args[1])), np.nan)

    monkeypatch.setitem(PURCHASE_MODELS, "bgnbd", Broken)
    transactions, customers, _ = demo_data
    said: list[str] = []
    summary = summarize(transactions, AS_OF)
    for choose_by in ("combined", "clv_holdout_mae"):
        out = train_clv(
            transactions,
            customers,
            summary,
            AS_OF,
            step=said.append,
            holdout_days=180,
            horizon_days=365,
            discount_rate=0.1,
            margin=None,
            time_unit_days=7.0,
            choose_by=choose_by,
        )
        assert out.params["clv_model"] == "paretonbd", choose_by
    assert any("not a number: BG/NBD" in line for line in said), said
    nan = {"clv_holdout_mae": float("nan"), "clv_holdout_total_error_pct": float("nan")}
    scores = choice_scores(
        {"a": nan, "b": {"clv_holdout_mae": 0.5, "clv_holdout_total_error_pct": 2}}
    )
    assert scores == {"a": float("inf"), "b": pytest.approx(1.02)}


@pytest.mark.parametrize(
    ("span_days", "requested", "expected", "short"),
    [
        (1095, None, 180, False),  # three years: the usual 180 days
        (273, None, 91, False),  # nine months: a third, six months left to calibrate on
        (60, None, 28, True),  # two months: four weeks at least, and said to be short
        (273, 180, 180, True),  # asked for: kept, and said to be short (93 days before it)
        (1095, 90, 90, False),
    ],
)
def test_the_holdout_adapts_to_the_span_of_the_data(span_days, requested, expected, short):
    first = pd.Timestamp("2024-01-01")
    days, warning = holdout_window(first, first + pd.Timedelta(days=span_days), requested)
    assert days == expected
    assert (warning is not None) == short
    if short:
        assert warning.startswith(f"CLV: the calibration period before the {expected}-day")
        assert f"({span_days - expected} days of history)" in warning


def test_fixed_model_is_respected(demo_data):
    transactions, customers, _ = demo_data
    out = _train(transactions, customers, purchase_model="bgnbd")
    assert out.params["clv_model"] == "bgnbd"
    assert "clv_paretonbd_holdout_mae" not in out.metrics


def test_contractual_customers_use_sbg(demo_data):
    transactions, customers, _ = demo_data
    churned = customers.assign(churned=(customers.index % 3 == 0).astype(int))
    out = _train(transactions, churned)
    assert isinstance(out.model, ContractualCLV)
    assert out.params["clv_model"] == "sbg"
    assert "clv_retention_curve.png" in out.figures


def test_purchase_days_between_counts_distinct_days():
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b"],
            "timestamp": pd.to_datetime(
                ["2025-01-02 09:00", "2025-01-02 18:00", "2025-01-05 00:00", "2024-12-31 00:00"]
            ),
            "amount": 1.0,
        }
    )
    counts = purchase_days_between(tx, pd.Timestamp("2025-01-01"), pd.Timestamp("2025-01-31"))
    assert counts.to_dict() == {"a": 2}
