"""CLV models against the published CDNOW numbers (tests/data/clv/README.md)."""

import numpy as np
import pandas as pd
import pytest

from models.clv import BGNBD, CLVModel, GammaGamma
from models.exceptions import InvalidInputError, NotFittedError

PAPER = {"r": 0.242594, "alpha": 4.413596, "a": 0.792919, "b": 2.425910}


@pytest.fixture(scope="module")
def bgnbd(cdnow_summary):
    return BGNBD().fit(cdnow_summary["x"], cdnow_summary["t_x"], cdnow_summary["T"])


def test_bgnbd_reproduces_published_parameters(bgnbd):
    expected = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in expected.items():
        assert round(bgnbd.params_[name], 3) == value, name
    assert bgnbd.log_likelihood_ == pytest.approx(-9582.43, abs=0.01)


def test_bgnbd_standard_errors_are_finite_and_cover_estimates(bgnbd):
    for name in ("r", "alpha", "a", "b"):
        low, high = bgnbd.confidence_intervals_[name]
        assert 0 < low < bgnbd.params_[name] < high
        assert 0 < bgnbd.standard_errors_[name] < bgnbd.params_[name]


def test_bgnbd_derived_figures(bgnbd):
    assert bgnbd.expected_purchases(39, 2, 30.43, 38.86, params=PAPER)[0] == pytest.approx(
        1.226, abs=5e-4
    )
    assert bgnbd.probability_alive(2, 30.43, 38.86, params=PAPER)[0] == pytest.approx(
        0.727, abs=5e-4
    )
    assert bgnbd.expected_purchases(39, 0, 0, 38.86, params=PAPER)[0] == pytest.approx(
        0.195, abs=5e-4
    )
    new = bgnbd.expected_purchases_new([39, 78], params=PAPER)
    np.testing.assert_allclose(new, [1.195, 1.858], atol=5e-4)


def test_bgnbd_weights_equal_repeated_rows(cdnow_summary):
    x, t_x, t = cdnow_summary["x"], cdnow_summary["t_x"], cdnow_summary["T"]
    doubled = BGNBD().fit(np.r_[x, x], np.r_[t_x, t_x], np.r_[t, t])
    weighted = BGNBD().fit(x, t_x, t, weights=np.full(len(x), 2.0))
    for name in ("r", "alpha", "a", "b"):
        assert doubled.params_[name] == pytest.approx(weighted.params_[name], rel=1e-4)


def test_gamma_gamma_reproduces_published_parameters(cdnow_summary):
    repeat = cdnow_summary[cdnow_summary["x"] > 0]
    assert len(repeat) == 946
    gg = GammaGamma().fit(repeat["x"], repeat["zbar"])
    for name, value in {"p": 6.249, "q": 3.745, "gamma": 15.448}.items():
        assert round(gg.params_[name], 3) == value, name
    assert gg.log_likelihood_ == pytest.approx(-4055.92, abs=0.01)
    # Shrinkage: a customer's expected spend lies between their mean and the population mean.
    population = gg.params_["p"] * gg.params_["gamma"] / (gg.params_["q"] - 1)
    spend = gg.expected_spend([1, 10], [100.0, 100.0])
    assert population < spend[0] < spend[1] < 100.0


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "field"),
    [
        ([-1], [0], [10], "frequency"),
        ([2], [12], [10], "recency"),
        ([2], [np.nan], [10], "recency"),
        ([0], [3], [10], "recency"),
    ],
)
def test_impossible_inputs_name_the_field(frequency, recency, T, field):
    with pytest.raises(InvalidInputError) as info:
        BGNBD().fit(frequency, recency, T)
    assert info.value.field == field


def test_predict_before_fit_is_a_clear_error():
    with pytest.raises(NotFittedError):
        BGNBD().probability_alive([1], [1], [2])


def test_clv_model_on_cdnow(cdnow_transactions):
    from models.features import summarize

    summary = summarize(cdnow_transactions, "1997-09-30")
    model = CLVModel(time_unit_days=7, horizon_days=273, discount_rate=0.0).fit(summary)
    # Same fit as on the weekly reference summary (days / 7 == weeks).
    assert round(model.bgnbd_.params_["r"], 3) == 0.243
    out = model.predict(summary)
    assert list(out.columns) == [
        "expected_purchases",
        "probability_alive",
        "expected_spend",
        "clv",
        "clv_lower",
        "clv_upper",
        "margin",
    ]
    assert model.margin_source_.startswith("none")
    # No discount, margin 1: CLV = expected purchases × expected spend (monthly steps sum up).
    np.testing.assert_allclose(
        out["clv"], out["expected_purchases"] * out["expected_spend"], rtol=1e-6
    )
    assert (out["clv_lower"] < out["clv"]).all() and (out["clv"] < out["clv_upper"]).all()
    # Discounting lowers value.
    discounted = (
        CLVModel(time_unit_days=7, horizon_days=273, discount_rate=0.2)
        .fit(summary)
        .predict(summary)
    )
    assert (discounted["clv"] < out["clv"]).all()


def test_clv_uses_customer_margin_when_costs_known():
    rng = np.random.default_rng(1)
    n = 400
    frequency = rng.integers(0, 6, n).astype(float)
    T = rng.uniform(100, 300, n)
    recency = np.where(frequency > 0, T * rng.uniform(0.1, 1, n), 0)
    monetary = np.where(frequency > 0, rng.gamma(5, 10, n), 0)
    margin = rng.uniform(0.1, 0.4, n)
    summary = pd.DataFrame(
        {
            "frequency": frequency,
            "recency": recency,
            "T": T,
            "monetary_value": monetary,
            "total_revenue": monetary * (frequency + 1),
            "total_profit": monetary * (frequency + 1) * margin,
            "margin_rate": margin,
        }
    )
    model = CLVModel().fit(summary)
    assert model.margin_source_ == "data"
    out = model.predict(summary)
    np.testing.assert_allclose(out["margin"], margin)


@pytest.mark.parametrize("model", ["bgnbd", "pareto"])
def test_discounted_purchases_are_the_discounted_monthly_expectations(cdnow_summary, model):
    from models.clv.noncontractual import WEEKS_PER_YEAR, ParetoNBD

    x, t_x, t = (cdnow_summary[c].to_numpy(dtype=float) for c in ("x", "t_x", "T"))
    fitted = (BGNBD() if model == "bgnbd" else ParetoNBD()).fit(x, t_x, t)
    params = fitted._param_array(None)
    # By hand: the expected purchases up to each of 12 month ends, differenced, discounted.
    ends = 52.0 / 12 * np.arange(1, 13)
    cumulative = np.column_stack([fitted.expected_purchases(e, x, t_x, t) for e in ends])
    monthly = np.diff(cumulative, axis=1, prepend=0.0)
    by_hand = monthly @ (1.1 ** (-ends / WEEKS_PER_YEAR))
    discounted = fitted.discounted_purchases(params, 52.0, 0.1, x, t_x, t)
    np.testing.assert_allclose(discounted, by_hand, rtol=1e-12, atol=1e-15)
    undiscounted = fitted.discounted_purchases(params, 52.0, 0.0, x, t_x, t)
    np.testing.assert_allclose(undiscounted, cumulative[:, -1], rtol=1e-12)
    # One row alone gets the number it gets among all rows.
    assert fitted.discounted_purchases(params, 52.0, 0.1, x[:1], t_x[:1], t[:1])[0] == (
        pytest.approx(discounted[0], rel=1e-14)
    )
