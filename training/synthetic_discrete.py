"""Seeded synthetic data of a discrete-opportunity business (BG/BB truth), for
``cvm generate --period`` and the BG/BB tests.

Model (Fader, Hardie & Shang 2010), in periods counted back from the end of ``as_of`` as
:mod:`models.clv.periodic` counts them:

* **Acquisition.** Each customer's first purchase falls in one of the ``cohorts`` periods
  starting ``periods`` periods before ``as_of`` (uniformly), so it has ``n`` =
  ``periods − 1 − cohort`` … ``periods − 1`` opportunities after it.
* **Transactions: BG/BB.** ``p_i ~ Beta(alpha, beta)`` (transaction probability while
  alive), ``theta_i ~ Beta(gamma, delta)`` (dropout). At the start of each opportunity an
  alive customer becomes inactive for good with probability ``theta_i``; an alive customer
  transacts in it with probability ``p_i``: one purchase on one day of the period (a day
  drawn at random, or with ``regular`` about the same day of every period, as renewals are).
* **Spend: Gamma-Gamma.** ``nu_i ~ Gamma(shape q, rate spend_gamma)``; each purchase
  ``~ Gamma(shape p, rate nu_i)`` currency units, rounded to cents.

The truth (``truth.params``: the parameters; ``truth.customers``: ``p_``, ``theta_``,
``periods``, ``period_frequency``, ``period_recency``, ``alive_at_as_of``, and
``future_transactions``: the periods with a purchase among the ``horizon_periods`` after
``as_of``) is known exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models.clv.periodic import period_days
from models.exceptions import InvalidInputError
from training.synthetic import SyntheticTruth

DAY_SECONDS = 86_400


def generate_discrete(
    n_customers: int = 2000,
    seed: int = 0,
    as_of: str | pd.Timestamp = "2025-12-31",
    *,
    period: str = "month",
    periods: int = 36,
    cohorts: int = 12,
    horizon_periods: int = 12,
    alpha: float = 1.2,
    beta: float = 0.75,
    gamma: float = 0.66,
    delta: float = 2.8,
    p: float = 6.0,
    q: float = 4.0,
    spend_gamma: float = 60.0,
    regular: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, SyntheticTruth]:
    """``(transactions, customers, truth)``: ``transactions`` has ``customer_id``,
    ``timestamp``, ``amount`` (purchases up to the end of ``as_of``, sorted by customer and
    time); ``customers`` has ``customer_id`` and ``signup_date`` (the first purchase's day).
    Same arguments, same frames."""
    length = period_days(period)
    counts = {"n_customers": n_customers, "periods": periods, "cohorts": cohorts}
    for name, count in counts.items():
        if int(count) < 1:
            raise InvalidInputError(f"{name} must be at least 1, got {count!r}", field=name)
    if cohorts > periods:
        raise InvalidInputError(
            f"cohorts ({cohorts}) must not exceed periods ({periods})", field="cohorts"
        )
    for name, value in {
        "alpha": alpha, "beta": beta, "gamma": gamma, "delta": delta,
        "p": p, "q": q, "spend_gamma": spend_gamma,
    }.items():  # fmt: skip
        if not np.isfinite(value) or value <= 0:
            raise InvalidInputError(f"{name} must be a positive number, got {value!r}", field=name)
    rng = np.random.default_rng(seed)
    n = int(n_customers)
    as_of_day = pd.Timestamp(as_of).normalize()
    prob = rng.beta(alpha, beta, n)
    theta = rng.beta(gamma, delta, n)
    nu = rng.gamma(q, 1 / spend_gamma, n)
    # back index of the first purchase's period (0 = the period ending at as_of)
    first_back = periods - 1 - rng.integers(0, cohorts, n)
    total = periods + horizon_periods  # opportunities simulated: observed and future
    k = np.arange(1, total + 1)
    dies_at = rng.geometric(theta)  # the opportunity at whose start the customer leaves
    alive = k[None, :] < dies_at[:, None]
    buys = alive & (rng.random((n, total)) < prob[:, None])
    observed = k[None, :] <= first_back[:, None]
    future = (k[None, :] > first_back[:, None]) & (
        k[None, :] <= first_back[:, None] + horizon_periods
    )
    phase = rng.random(n)  # where in its period a regular customer buys

    who, opportunity = np.nonzero(buys & observed)
    who = np.r_[np.arange(n), who]
    back = np.r_[first_back, first_back[who[n:]] - opportunity - 1]
    start = np.ceil(back * length)
    width = np.ceil((back + 1) * length) - start  # whole days whose back index is `back`
    within = phase[who] if regular else rng.random(len(who))
    days_back = start + np.floor(within * width)
    seconds = rng.integers(8 * 3600, 20 * 3600, len(who))
    timestamp = (
        as_of_day - pd.to_timedelta(days_back, unit="D") + pd.to_timedelta(seconds, unit="s")
    )
    amount = np.round(rng.gamma(p, 1 / nu[who]), 2)
    ids = np.array([f"D{i + 1:05d}" for i in range(n)], dtype=object)
    transactions = pd.DataFrame(
        {"customer_id": ids[who], "timestamp": timestamp, "amount": np.maximum(amount, 0.01)}
    )
    transactions = transactions.sort_values(["customer_id", "timestamp"], kind="stable")
    transactions = transactions.reset_index(drop=True).astype({"customer_id": "str"})
    signup = (as_of_day - pd.to_timedelta(days_back[:n], unit="D")).normalize()
    customers = pd.DataFrame({"customer_id": ids, "signup_date": signup}).astype(
        {"customer_id": "str"}
    )
    seen = buys & observed
    x = seen.sum(axis=1)
    truth_customers = pd.DataFrame(
        {
            "customer_id": ids,
            "p_": prob,
            "theta_": theta,
            "periods": first_back,
            "period_frequency": x,
            "period_recency": np.where(x > 0, (seen * k[None, :]).max(axis=1), 0),
            "alive_at_as_of": dies_at > first_back,
            "future_transactions": (buys & future).sum(axis=1),
        }
    ).astype({"customer_id": "str"})
    params: dict[str, Any] = {
        "model": "bgbb",
        "period": period,
        "period_days": length,
        "as_of": str(as_of_day.date()),
        "n_customers": n,
        "seed": seed,
        "periods": periods,
        "cohorts": cohorts,
        "horizon_periods": horizon_periods,
        "regular": regular,
        "bgbb": {"alpha": alpha, "beta": beta, "gamma": gamma, "delta": delta},
        "gamma_gamma": {"p": p, "q": q, "gamma": spend_gamma},
    }
    return transactions, customers, SyntheticTruth(params=params, customers=truth_customers)


__all__ = ["generate_discrete"]
