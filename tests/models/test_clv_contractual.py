"""Contractual CLV: sBG retention fitted on individual tenures (lost for good)."""

import numpy as np
import pandas as pd
import pytest

from models.clv.contractual import ContractualCLV, contract_durations, has_contract_data
from models.features import summarize


def subscriptions(n=20_000, alpha=0.7, beta=1.2, seed=0):
    """Monthly subscribers: churn probability θ ~ Beta(α, β) per month, signups over 2 years."""
    rng = np.random.default_rng(seed)
    as_of = pd.Timestamp("2025-12-31")
    signup = as_of - pd.to_timedelta(rng.integers(30, 730, n), unit="D")
    theta = rng.beta(alpha, beta, n)
    lifetime_months = rng.geometric(theta)  # the month in which the customer leaves (≥ 1)
    churn_date = signup + pd.to_timedelta(lifetime_months * 30, unit="D")
    churn_date = churn_date.where(churn_date <= as_of)
    ids = [f"S{i:05d}" for i in range(n)]
    customers = pd.DataFrame({"customer_id": ids, "signup_date": signup, "churn_date": churn_date})
    bills = []
    for months in range(0, 25):  # one 20.0 bill at the start of each active month
        day = signup + pd.to_timedelta(months * 30, unit="D")
        active = (day <= as_of) & (churn_date.isna() | (day < churn_date))
        bills.append(
            pd.DataFrame(
                {"customer_id": np.array(ids)[active], "timestamp": day[active], "amount": 20.0}
            )
        )
    return pd.concat(bills, ignore_index=True), customers, as_of


def test_recovers_sbg_parameters_from_individual_tenures():
    transactions, customers, as_of = subscriptions()
    assert has_contract_data(customers)
    summary = summarize(transactions, as_of)
    model = ContractualCLV(period_days=30).fit(summary, customers=customers, as_of=as_of)
    for name, true in {"alpha": 0.7, "beta": 1.2}.items():
        low, high = model.retention_.confidence_intervals_[name]
        assert low <= true <= high, (name, model.retention_.params_)


def test_durations_censor_active_customers():
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "signup_date": pd.to_datetime(["2025-01-01", "2025-01-01"]),
            "churn_date": pd.to_datetime(["2025-03-15", None]),
        }
    )
    summary = pd.DataFrame(
        {"tenure_days": [364.0, 364.0], "days_since_last": [300.0, 5.0]},
        index=pd.Index(["a", "b"], name="customer_id"),
    )
    out = contract_durations(customers, summary, "2025-12-31", 30)
    assert out.loc["a"].tolist() == [3, 1]  # left during the third month
    assert out.loc["b"].tolist() == [12, 0]  # 364 days: 12 whole months observed, still active


def test_clv_of_active_subscriber_follows_survival():
    transactions, customers, as_of = subscriptions(5000, seed=1)
    summary = summarize(transactions, as_of)
    model = ContractualCLV(period_days=30, horizon_days=360, discount_rate=0.0, margin=0.5).fit(
        summary, customers=customers, as_of=as_of
    )
    out = model.predict(summary)
    row = out.iloc[0]
    tenure = np.floor(summary["tenure_days"].iloc[0] / 30)
    s = model.retention_.survival(tenure + np.arange(12)) / model.retention_.survival(tenure)
    value = summary["total_revenue"].iloc[0] / max(tenure, 1)
    assert row["clv"] == pytest.approx(0.5 * value * s.sum())
    assert row["expected_purchases"] == pytest.approx(s.sum())
    assert row["clv_lower"] < row["clv"] < row["clv_upper"]
    # Longer-tenured subscribers renew more often (sBG sorting).
    assert model.retention_.retention_rate(24) > model.retention_.retention_rate(2)
