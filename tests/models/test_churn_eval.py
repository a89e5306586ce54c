import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import cross_val_score

from models.churn.evaluation import (
    LogisticBaseline,
    calibration_curve_data,
    churn_evaluation,
    compare_models,
    gains_data,
    top_decile_lift,
)
from models.exceptions import InvalidInputError

Y = np.array([0, 0, 1, 1, 0, 1, 0, 0, 0, 1])
P = np.array([0.1, 0.2, 0.8, 0.25, 0.3, 0.9, 0.35, 0.05, 0.15, 0.6])


def test_metrics_by_hand():
    m = churn_evaluation(Y, P)
    assert m["base_rate"] == 0.4
    assert m["roc_auc"] == pytest.approx(22 / 24)  # 0.25 beats 4 of the 6 non-churners
    assert m["pr_auc"] == pytest.approx((1 + 1 + 1 + 4 / 6) / 4)
    assert m["brier"] == pytest.approx(1.06 / 10)
    expected_ll = -np.mean(Y * np.log(P) + (1 - Y) * np.log(1 - P))
    assert m["log_loss"] == pytest.approx(expected_ll)
    assert m["top_decile_lift"] == pytest.approx(2.5)  # the top 10 % is one churner
    assert top_decile_lift(Y, P, share=0.3) == pytest.approx(1.0 / 0.4)
    one_class = churn_evaluation(np.zeros(4), [0.1, 0.2, 0.3, 0.4])
    assert np.isnan(one_class["roc_auc"]) and one_class["brier"] == pytest.approx(0.075)
    with pytest.raises(InvalidInputError):
        churn_evaluation([0, 2], [0.1, 0.2])


def test_gains_and_calibration_tables_by_hand():
    gains = gains_data(Y, P, n_bins=5)
    assert gains["churners"].tolist() == [2, 1, 1, 0, 0]
    assert gains["gain"].tolist() == pytest.approx([0.5, 0.75, 1.0, 1.0, 1.0])
    assert gains["lift"].tolist() == pytest.approx([2.5, 1.25, 1.25, 0.0, 0.0])
    assert gains["cumulative_lift"].tolist() == pytest.approx([2.5, 1.875, 1 / 0.6, 1.25, 1.0])
    assert gains["share_contacted"].tolist() == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    calib = calibration_curve_data(Y, P, n_bins=2)
    assert calib["customers"].tolist() == [5, 5]
    assert calib["observed_rate"].tolist() == pytest.approx([0.2, 0.6])
    assert calib["mean_predicted"].tolist() == pytest.approx([0.15, 0.59])


def crm(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, n)
    plan = rng.choice(["basic", "plus", "premium"], n)
    logit = 1.0 - 0.06 * tenure + 1.2 * (plan == "basic")
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "Yes", "No")
    fee = rng.normal(50, 10, n).round(2).astype(str)
    fee[::30] = ""
    return pd.DataFrame(
        {"id": [f"C{i}" for i in range(n)], "tenure": tenure, "plan": plan, "fee": fee}
    ), y


def test_logistic_baseline_on_a_raw_table():
    X, y = crm()
    auc = cross_val_score(LogisticBaseline(), X, y, scoring="roc_auc", cv=3).mean()
    assert auc > 0.75
    model = LogisticBaseline().fit(X, y)
    assert model.classes_.tolist() == ["No", "Yes"]
    assert model.encoder_.kinds_ == ["ignored", "numeric", "categorical", "numeric"]
    p = model.predict_proba(X.head(3).assign(plan="unknown plan"))
    assert np.allclose(p.sum(axis=1), 1)


def test_compare_models_table():
    table = compare_models(Y, {"model": P, "coin": np.full(10, 0.5)})
    assert list(table.index) == ["model", "coin"]
    assert table.loc["coin", "roc_auc"] == 0.5 and table.loc["coin", "brier"] == 0.25
