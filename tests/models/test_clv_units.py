"""CLV fits in any time unit, on collapsed rows, from warm starts: the same model each time."""

import numpy as np
import pytest

from models.clv import BGNBD, CLVModel, GammaGamma, ParetoNBD
from models.clv._mle import collapse
from models.clv.noncontractual import _Indexed
from training.synthetic import simulate_bgnbd_summary

MODELS = {"bgnbd": BGNBD, "paretonbd": ParetoNBD}


def gamma_gamma_spend(x: np.ndarray, p=6.0, q=4.0, gamma=60.0, seed=3) -> np.ndarray:
    """Mean spend of x purchases from the Gamma-Gamma process (0 when x = 0)."""
    rng = np.random.default_rng(seed)
    nu = rng.gamma(q, 1.0 / gamma, len(x))
    total = rng.gamma(p * np.maximum(x, 1), 1.0 / nu)
    return np.where(x > 0, total / np.maximum(x, 1), 0.0)


@pytest.fixture(scope="module")
def days():
    """20,000 customers' (frequency, recency, T) in whole days, as summarize gives them."""
    return simulate_bgnbd_summary(20_000, seed=5)


@pytest.fixture(scope="module", params=sorted(MODELS))
def day_and_week_fits(request, days):
    model = MODELS[request.param]
    x, t_x, t = (days[c].to_numpy() for c in ("frequency", "recency", "T"))
    return model().fit(x, t_x, t), model().fit(x, t_x / 7, t / 7), (x, t_x, t)


def test_day_and_week_fits_give_the_same_forecasts(day_and_week_fits):
    by_day, by_week, (x, t_x, t) = day_and_week_fits
    np.testing.assert_allclose(
        by_day.expected_purchases(182, x, t_x, t),
        by_week.expected_purchases(26, x, t_x / 7, t / 7),
        rtol=1e-7,
    )
    np.testing.assert_allclose(
        by_day.probability_alive(x, t_x, t),
        by_week.probability_alive(x, t_x / 7, t / 7),
        rtol=1e-7,
    )
    np.testing.assert_allclose(
        by_day.expected_purchases_new([91.0, 364.0]),
        by_week.expected_purchases_new([13.0, 52.0]),
        rtol=1e-7,
    )


def test_parameters_are_reported_in_the_callers_unit(day_and_week_fits):
    by_day, by_week, (x, _, _) = day_and_week_fits
    for name, value in by_week.params_.items():
        scale = 7.0 if name in ("alpha", "beta") else 1.0  # the time scales of the rates
        assert by_day.params_[name] == pytest.approx(value * scale, rel=1e-7), name
        assert by_day.standard_errors_[name] == pytest.approx(
            by_week.standard_errors_[name] * scale, rel=1e-4
        )
    # Densities in time: each of the x purchase times is 7 times likelier per week than per day.
    assert by_day.log_likelihood_ == pytest.approx(
        by_week.log_likelihood_ - np.sum(x) * np.log(7), abs=1e-5
    )


def test_reported_log_likelihood_is_the_sum_over_customers(day_and_week_fits):
    by_day, _, (x, t_x, t) = day_and_week_fits
    rows = by_day.log_likelihood_rows(x, t_x, t)
    assert by_day.log_likelihood_ == pytest.approx(rows.sum(), abs=1e-6)


def test_clv_model_in_days_and_in_weeks_values_customers_alike(days):
    summary = days.assign(monetary_value=gamma_gamma_spend(days["frequency"].to_numpy()))
    by_unit = {
        unit: CLVModel(purchase_model="paretonbd", time_unit_days=unit).fit(summary)
        for unit in (1.0, 7.0)
    }
    day, week = (by_unit[u].predict(summary) for u in (1.0, 7.0))
    for column in ("expected_purchases", "probability_alive", "expected_spend", "clv"):
        np.testing.assert_allclose(day[column], week[column], rtol=1e-7, err_msg=column)
    # The intervals' widths come from Hessians by differences: equal to 1e-3.
    np.testing.assert_allclose(
        day["clv_upper"] - day["clv"], week["clv_upper"] - week["clv"], rtol=1e-3
    )


@pytest.mark.parametrize("name", sorted(MODELS))
def test_weighted_distinct_rows_fit_as_the_rows_themselves(days, name):
    sample = days.iloc[:3000]
    x, t_x, t = (sample[c].to_numpy() / (1 if c == "frequency" else 7) for c in sample.columns[:3])
    (ux, ut_x, ut), counts = collapse(x, t_x, t)
    assert len(ux) < len(x)  # there are duplicates to collapse
    rows = MODELS[name]().fit(x, t_x, t)
    weighted = MODELS[name]().fit(ux, ut_x, ut, weights=counts)
    for key, value in rows.params_.items():
        assert weighted.params_[key] == pytest.approx(value, rel=1e-7), key
        assert weighted.standard_errors_[key] == pytest.approx(rows.standard_errors_[key], rel=1e-4)
    assert weighted.log_likelihood_ == pytest.approx(rows.log_likelihood_, abs=1e-6)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_analytic_gradient_matches_differences_of_the_likelihood(days, name):
    sample = days.iloc[:2000]
    x, t_x, t = (sample[c].to_numpy() / (1 if c == "frequency" else 30) for c in sample.columns[:3])
    (x, t_x, t), w = collapse(x, t_x, t)
    model, data = MODELS[name](), _Indexed(x, t_x, t)
    # Away from the optimum, with alpha both above and below beta (Pareto/NBD's two branches).
    for point in ([0.7, 2.0, 0.9, 3.0], [0.7, 4.0, 1.3, 2.5]):
        log_params = np.log(point)
        value, grad = model._negll_and_grad(log_params, data, w)
        assert value == pytest.approx(model._negll(log_params, data, w), rel=1e-12)
        numeric = model._numeric_neggrad(log_params, data, w)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-5 * np.abs(numeric).max())


def test_gamma_gamma_weights_and_log_likelihood():
    x = np.random.default_rng(2).integers(1, 6, 3000).astype(float)
    spend = np.round(gamma_gamma_spend(x))  # whole currency units: repeated rows
    rows = GammaGamma().fit(x, spend)
    (ux, um), counts = collapse(x, spend)
    assert len(ux) < len(x)
    weighted = GammaGamma().fit(ux, um, weights=counts)
    for key, value in rows.params_.items():
        assert weighted.params_[key] == pytest.approx(value, rel=1e-7)
    assert rows.log_likelihood_ == pytest.approx(
        GammaGamma()._loglik_rows(rows._param_array(), _spend(x, spend)).sum(), abs=1e-6
    )


def _spend(x, m):
    from models.clv.noncontractual import _SpendData

    return _SpendData(x, m, np.ones(len(x)))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_warm_start_reaches_the_same_optimum(days, name):
    x, t_x, t = (days[c].to_numpy() for c in ("frequency", "recency", "T"))
    cold = MODELS[name]().fit(x, t_x, t)
    near = {k: v * 1.3 for k, v in cold.params_.items()}
    warm = MODELS[name](initial_params=near).fit(x, t_x, t)
    for key, value in cold.params_.items():
        assert warm.params_[key] == pytest.approx(value, rel=1e-6), key


def test_clv_model_started_from_another_fit_equals_a_cold_fit(days):
    summary = days.assign(monetary_value=gamma_gamma_spend(days["frequency"].to_numpy()))
    earlier = CLVModel(purchase_model="paretonbd").fit(summary.iloc[:5000])
    cold = CLVModel(purchase_model="paretonbd").fit(summary)
    warm = CLVModel(purchase_model="paretonbd").fit(summary, start_from=earlier)
    for key, value in cold.params().items():
        assert warm.params()[key] == pytest.approx(value, rel=1e-6), key
    assert warm.high_value_threshold_ == pytest.approx(cold.high_value_threshold_, rel=1e-6)
    cold_out, warm_out = cold.predict(summary), warm.predict(summary)
    for column in ("expected_purchases", "probability_alive", "expected_spend", "clv"):
        np.testing.assert_allclose(warm_out[column], cold_out[column], rtol=1e-6, err_msg=column)
    np.testing.assert_allclose(
        warm_out["clv_upper"] - warm_out["clv"], cold_out["clv_upper"] - cold_out["clv"], rtol=1e-3
    )
