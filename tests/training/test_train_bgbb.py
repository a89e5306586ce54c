"""BG/BB in CLV training: a forced choice and a candidate judged on the same holdout as the
others, the period given or detected, the retrain comparison, the model card, clear errors."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from models.clv import CLVModel, DiscreteCLV
from models.clv.periodic import with_period_columns
from models.exceptions import InvalidInputError
from models.features import summarize
from training import compare
from training.model_card import model_card
from training.synthetic_discrete import generate_discrete
from training.train_clv import purchase_days_between, train_clv

AS_OF = pd.Timestamp("2025-12-31")


@pytest.fixture(scope="module")
def monthly():
    """1,500 customers with one chance to give per month (BG/BB truth)."""
    transactions, customers, _ = generate_discrete(1500, seed=8, period="month")
    return transactions, customers


def _train(transactions, customers=None, lines=None, **kwargs):
    options = dict(
        holdout_days=180, horizon_days=365, discount_rate=0.1, margin=None, time_unit_days=7.0
    )
    options.update(kwargs)
    say = lines.append if lines is not None else (lambda m: None)
    summary = summarize(transactions, AS_OF)
    return train_clv(transactions, customers, summary, AS_OF, step=say, **options)


def test_forced_bgbb_is_fitted_per_period_and_judged_on_the_holdout(monthly):
    transactions, customers = monthly
    out = _train(transactions, customers, purchase_model="bgbb", period="month")
    model = out.model
    assert isinstance(model, DiscreteCLV) and model.period == "month"
    assert out.params["clv_model"] == "bgbb"
    assert out.params["clv_period"] == "month" and out.params["clv_period_source"] == "given"
    assert out.params["clv_period_days"] == 30.4375 and out.params["clv_horizon_periods"] == 12
    assert out.params["clv_bgbb_alpha"] == round(model.bgbb_.params_["alpha"], 6)
    assert out.metrics["clv_log_likelihood_bgbb"] == model.bgbb_.log_likelihood_
    # The holdout: the calibration fit's expected purchases in the 180 days after it, against
    # the purchase days that happened (the others' target).
    start = AS_OF - pd.Timedelta(days=180)
    calibration = with_period_columns(model, summarize(transactions, start), transactions, start)
    predicted = out.holdout_model.forecast_purchases(180, calibration)
    actual = purchase_days_between(transactions, start, AS_OF).reindex(calibration.index)
    actual = actual.fillna(0).to_numpy(dtype=float)
    assert out.metrics["clv_holdout_mae"] == pytest.approx(np.mean(np.abs(predicted - actual)))
    assert out.metrics["clv_holdout_total_actual"] == actual.sum()
    assert abs(out.metrics["clv_holdout_total_error_pct"]) < 10
    # The final fit starts from the calibration fit: the same optimum as a cold start.
    cold = DiscreteCLV(period="month").fit(
        with_period_columns(model, summarize(transactions, AS_OF), transactions, AS_OF)
    )
    for name, value in cold.bgbb_.params_.items():
        assert model.bgbb_.params_[name] == pytest.approx(value, rel=1e-4)


def test_bgbb_with_a_period_joins_the_candidates_and_wins_on_discrete_data(monthly):
    transactions, customers = monthly
    lines = []
    out = _train(transactions, customers, lines=lines, period="month")
    maes = {m: out.metrics[f"clv_{m}_holdout_mae"] for m in ("bgnbd", "paretonbd", "bgbb")}
    scores = {m: out.metrics[f"clv_{m}_choice_score"] for m in maes}
    assert out.params["clv_model"] == "bgbb" == min(scores, key=scores.get)
    assert maes["bgbb"] < min(maes["bgnbd"], maes["paretonbd"])
    assert out.params["clv_choice_reason"].startswith(f"bgbb MAE {maes['bgbb']:.3f}")
    assert "against bgnbd MAE" in out.params["clv_choice_reason"]
    assert {"clv_holdout_by_frequency.png", "clv_cumulative_repeat_purchases.png"} <= set(
        out.figures
    )
    assert "bgbb" in out.tables["clv_cumulative_tracking"].columns
    assert any(line.startswith("CLV: chose bgbb per month (alpha=") for line in lines)


def test_a_regular_rhythm_is_detected_and_said(demo_data):
    regular, customers, _ = generate_discrete(600, seed=4, period="quarter", regular=True)
    lines = []
    out = _train(regular, customers, lines=lines)
    assert out.params["clv_period"] == "quarter"
    assert out.params["clv_period_source"] == "detected"
    assert "clv_bgbb_holdout_mae" in out.metrics
    assert lines[0] == (
        "CLV: 100% of the gaps between a customer's purchases are whole quarters: "
        "BG/BB per quarter is a candidate"
    )
    # Purchases at random times: no BG/BB candidate, nothing said about periods.
    transactions, customers, _ = demo_data
    out = _train(transactions, customers, purchase_model="bgnbd")
    assert "clv_period" not in out.params and isinstance(out.model, CLVModel)


def test_clear_errors(monthly, demo_data):
    transactions, customers = monthly
    with pytest.raises(InvalidInputError, match="--period month is for --model bgbb") as caught:
        _train(transactions, customers, purchase_model="bgnbd", period="month")
    assert caught.value.field == "period"
    with pytest.raises(InvalidInputError, match="--model bgbb needs --period week, month"):
        _train(demo_data[0], None, purchase_model="bgbb")
    with pytest.raises(InvalidInputError, match="unknown CLV model 'sbg'"):
        _train(transactions, customers, purchase_model="sbg")


def test_retrain_comparison_measures_a_bgbb_champion(monthly):
    transactions, customers = monthly
    out = _train(transactions, customers, purchase_model="bgbb", period="month")
    holdout = compare.Holdout.build(
        transactions, customers, AS_OF, churn_horizon_days=90, clv_holdout_days=120
    )
    metrics = compare.holdout_metrics({"clv": out.model}, holdout=holdout)
    start = AS_OF - pd.Timedelta(days=120)
    calibration = with_period_columns(out.model, holdout.calibration, transactions, start)
    predicted = out.model.forecast_purchases(120, calibration)
    assert metrics["clv_holdout_mae"] == pytest.approx(np.mean(np.abs(predicted - holdout.actual)))


def test_model_card_says_what_bgbb_counts(monthly):
    transactions, customers = monthly
    out = _train(transactions, customers, purchase_model="bgbb", period="month")
    result = SimpleNamespace(
        params={"as_of": "2025-12-31", **out.params},
        metrics={"n_customers": 1500.0, **out.metrics},
        models={"clv": out.model},
    )
    card = model_card("clv", "cvm-clv", result, "abc", None)
    assert "## BG/BB (discrete opportunities)" in card
    assert "- period: month (30.4375 days; given), counted back from as-of" in card
    assert "- BG/BB assumes one chance to transact per period" in card
    assert "BG/NBD and Pareto/NBD assume" not in card
