"""``cvm plan``: score the customers with the champion models and plan a retention campaign."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from models.planner import Offer, Plan, plan_customers, uplift_for
from models.uplift.model import served_input
from training import batch


def plan_campaign(
    models: dict[str, Any],
    transactions: pd.DataFrame,
    customers: pd.DataFrame | None,
    as_of: Any,
    offers: list[Offer],
    budget: float,
    *,
    acquisition_cost: float | None = None,
    save_rates: dict[str, float] | None = None,
    progress: Callable[[str], None] = print,
) -> Plan:
    """The plan over every customer of ``transactions``, scored as ``cvm score`` scores them
    (churn probability, risk band and CLV of the champion models); the uplift model's
    estimates from the same churn features when one is available
    (:func:`models.planner.uplift_for`), else the assumed save rates."""
    scored, features = batch.score_with_features(
        models, transactions, customers, as_of, progress=progress
    )
    uplift = None
    if models.get("uplift") is not None:  # on the churn features the scores came from
        progress("estimating each offer's uplift with the uplift model ...")
        rows = served_input(models["uplift"], features).loc[scored["customer_id"]]
        uplift = uplift_for(rows.reset_index(drop=True), offers, models["uplift"])
    progress(f"planning {len(scored):,} customers x {len(offers)} offers ...")
    return plan_customers(
        scored["customer_id"].astype(str).to_numpy(),
        scored["churn_probability"].to_numpy(dtype=float),
        scored["risk_band"].astype(str).to_numpy(),
        scored["clv"].to_numpy(dtype=float),
        offers,
        budget,
        uplift=uplift,
        acquisition_cost=acquisition_cost,
        save_rates=save_rates,
    )


def contact_list(plan: Plan) -> pd.DataFrame:
    """The contact list as written: money to the cent, probabilities and ROI to 4 decimals."""
    return plan.contacts.round(
        {
            "expected_save": 4,
            "value": 2,
            "expected_incremental_profit": 2,
            "expected_cost": 2,
            "roi": 4,
        }
    )


def write_contacts(plan: Plan, path: Path) -> None:
    batch.write_table(contact_list(plan), path)


__all__ = ["contact_list", "plan_campaign", "write_contacts"]
