"""Contractual CLV (subscriptions, accounts): sBG retention × value per period.

A lost customer never returns ("lost for good", Dwyer 1997), so the purchase models do not
apply. Retention is the shifted-beta-geometric model fitted on every customer's observed
tenure (churned customers: the period they left; active ones: right-censored), and an active
customer of tenure n is worth margin × value per period × Σ_{k<H} S(n+k)/S(n) · discount^k.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from models.clv._mle import delta_standard_error
from models.clv.discrete import ShiftedBetaGeometric
from models.clv.noncontractual import clv_frame, customer_margins, learn_margin
from models.exceptions import InvalidInputError, NotFittedError
from models.features import end_of_day


def has_contract_data(customers: pd.DataFrame) -> bool:
    """True when the customer table says who churned (``churned`` or ``churn_date``)."""
    for column in ("churn_date", "churned"):
        if column in customers.columns and customers[column].notna().any():
            return True
    return False


def contract_durations(
    customers: pd.DataFrame, summary: pd.DataFrame, as_of: Any, period_days: float
) -> pd.DataFrame:
    """Per customer: whole ``duration`` periods observed and ``churned`` (0/1).

    Start = ``signup_date`` (else the first purchase); end = ``churn_date`` (else, for
    ``churned`` = 1 without a date, the last purchase), or ``as_of`` for active customers.
    """
    end = end_of_day(as_of).normalize()
    table = customers.assign(customer_id=customers["customer_id"].astype(str)).set_index(
        "customer_id"
    )
    table = table.reindex(summary.index)
    first_purchase = end - pd.to_timedelta(summary["tenure_days"], unit="D")
    last_purchase = end - pd.to_timedelta(summary["days_since_last"], unit="D")
    start = first_purchase
    if "signup_date" in table:
        signup = pd.to_datetime(table["signup_date"], errors="coerce")
        start = signup.where(signup.notna(), first_purchase)
    churn_date = (
        pd.to_datetime(table["churn_date"], errors="coerce")
        if "churn_date" in table
        else pd.Series(pd.NaT, index=table.index)
    )
    churned_flag = (
        pd.to_numeric(table["churned"], errors="coerce").fillna(0)
        if "churned" in table
        else pd.Series(0, index=table.index)
    )
    churned = churn_date.notna() | (churned_flag == 1)
    dated = churn_date.notna() & (churn_date <= end)
    fallback = last_purchase.where(churned, end)
    stop = churn_date.where(dated, fallback)
    stop = stop.where(~(churn_date > end), end)  # churn after as_of: still active as of it
    churned &= ~(churn_date > end)
    elapsed = (stop - start).dt.days.to_numpy(dtype=float) / period_days
    duration = np.where(churned, np.maximum(np.ceil(elapsed), 1), np.maximum(np.floor(elapsed), 0))
    return pd.DataFrame(
        {"duration": duration, "churned": churned.astype(int).to_numpy()}, index=summary.index
    )


class ContractualCLV(BaseEstimator):
    """CLV for contractual businesses; same ``predict`` columns as :class:`CLVModel`.

    - ``period_days``: length of one contract period (30 = monthly renewals).
    - ``horizon_days``, ``discount_rate`` (annual), ``margin`` as in :class:`CLVModel`.

    ``predict`` treats the scored customers as active: ``probability_alive`` is the
    probability of renewing at the next period, ``expected_purchases`` the expected paid
    periods within the horizon and ``expected_spend`` the customer's revenue per period.
    """

    def __init__(
        self,
        period_days: float = 30.0,
        horizon_days: int = 365,
        discount_rate: float = 0.10,
        margin: float | None = None,
    ):
        self.period_days = period_days
        self.horizon_days = horizon_days
        self.discount_rate = discount_rate
        self.margin = margin

    def fit(
        self, summary: pd.DataFrame, y: Any = None, *, customers: pd.DataFrame, as_of: Any
    ) -> ContractualCLV:
        if not has_contract_data(customers):
            raise InvalidInputError(
                "the customer table has no churned/churn_date column", field="churned"
            )
        durations = contract_durations(customers, summary, as_of, self.period_days)
        self.retention_ = ShiftedBetaGeometric().fit_durations(
            durations["duration"], durations["churned"]
        )
        self.margin_, self.margin_source_ = learn_margin(summary, self.margin)
        self.high_value_threshold_ = float(np.quantile(self.predict(summary)["clv"], 0.8))
        return self

    def predict(self, summary: pd.DataFrame) -> pd.DataFrame:
        if not hasattr(self, "retention_"):
            raise NotFittedError("ContractualCLV is not fitted; call fit first")
        tenure = np.floor(summary["tenure_days"].to_numpy(dtype=float) / self.period_days)
        periods = max(1, int(round(self.horizon_days / self.period_days)))
        value = summary["total_revenue"].to_numpy(dtype=float) / np.maximum(tenure, 1)
        margins = customer_margins(summary, self.margin_, self.margin_source_)
        k = np.arange(periods)
        discount = (1 + self.discount_rate) ** (-(k * self.period_days) / 365.25)
        names = self.retention_._param_names

        def survival_ratio(p: np.ndarray) -> np.ndarray:  # (customers, periods) of S(n+k)/S(n)
            params = dict(zip(names, p, strict=True))
            s = self.retention_.survival(tenure[:, None] + k[None, :], params)
            return s / self.retention_.survival(tenure, params)[:, None]

        def fn(p: np.ndarray) -> np.ndarray:
            return survival_ratio(p) @ discount * value * margins

        base = self.retention_._param_array()
        clv = fn(base)
        se = delta_standard_error(
            fn, self.retention_.log_params_, self.retention_.log_covariance_, clv
        )
        return clv_frame(
            summary.index,
            expected_purchases=survival_ratio(base).sum(axis=1),
            probability_alive=self.retention_.retention_rate(tenure + 1),
            expected_spend=value,
            clv=clv,
            se=se,
            margins=margins,
        )

    def params(self) -> dict[str, float]:
        return {f"sbg_{k}": v for k, v in self.retention_.params_.items()} | {
            "margin": self.margin_
        }
