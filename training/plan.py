"""``cvm plan``: score the customers with the champion models and plan a retention campaign."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.planner import (
    DEFAULT_UPLIFT_Z,
    Offer,
    Plan,
    hold_out,
    plan_customers,
    uplift_basis,
    uplift_for,
)
from models.uplift.model import served_input
from training import batch
from training.campaigns import CONTROL


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
    uplift_z: float = DEFAULT_UPLIFT_Z,
    progress: Callable[[str], None] = print,
) -> Plan:
    """The plan over every customer of ``transactions``, scored as ``cvm score`` scores them
    (churn probability, risk band and CLV of the champion models); the uplift model's
    estimates from the same churn features when one is available
    (:func:`models.planner.uplift_for`: their lower confidence bound at ``uplift_z``), else
    the assumed save rates."""
    scored, features = batch.score_with_features(
        models, transactions, customers, as_of, progress=progress
    )
    uplift = None
    if models.get("uplift") is not None:  # on the churn features the scores came from
        progress("estimating each offer's uplift with the uplift model ...")
        rows = served_input(models["uplift"], features).loc[scored["customer_id"]]
        uplift = uplift_for(rows.reset_index(drop=True), offers, models["uplift"], z=uplift_z)
    progress(f"planning {len(scored):,} customers x {len(offers)} offers ...")
    result = plan_customers(
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
    result.summary["uplift_lower_bound"] = uplift_basis(models.get("uplift"), uplift_z)
    return result


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


def campaign_rows(
    contacts: pd.DataFrame,
    campaign_id: str,
    sent_at: Any,
    control_share: float = 0.2,
    seed: int = 0,
) -> pd.DataFrame:
    """The campaigns file of a plan's send, before it is sent: one row per planned customer
    with ``customer_id``, ``campaign_id``, ``sent_at``, ``treatment`` (the planned offer, or
    ``control`` for the held-out ones), ``planned_offer`` and ``cost`` (the contact's expected
    cost; 0 for control).

    The control group is drawn within each offer's customers: ``round(control_share × n)`` of
    the ``n`` customers planned for an offer, at random (``seed``), so that each offer can be
    compared with the customers held out from it, and all offers with the whole control group
    (every offer holds out the same share). ``cvm report campaign`` reads the file as it is,
    once the response window has passed."""
    when = pd.Timestamp(sent_at)
    offers = contacts["offer"].astype(str).to_numpy()
    held = hold_out(offers, control_share, seed)
    cost = contacts["expected_cost"].to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "customer_id": contacts["customer_id"].astype(str).to_numpy(),
            "campaign_id": str(campaign_id),
            "sent_at": when.strftime("%Y-%m-%d") if when == when.normalize() else when.isoformat(),
            "treatment": np.where(held, CONTROL, offers),
            "planned_offer": offers,
            "cost": np.where(held, 0.0, np.round(cost, 2)),
        }
    )


__all__ = ["campaign_rows", "contact_list", "plan_campaign", "write_contacts"]
