"""Retention campaigns: whom to contact, with which offer, within a budget."""

from __future__ import annotations

import math
from datetime import date
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from models.planner import (
    DEFAULT_UPLIFT_Z,
    hold_out,
    parse_offers,
    plan_customers,
    unmeasured_offers,
    uplift_basis,
    uplift_for,
)
from service.model_store import ModelStore
from service.routers.customers import scoring_route
from service.schemas import REQUEST_CONFIG, ScoreRequest
from service.scoring import RequestNotes, plan_inputs

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])

MAX_OFFERS = 50
TIME_LIMIT = 20.0  # seconds for the allocation of one request
MAX_CAPACITY = 10**12  # more than any customer base; keeps the answer's numbers in 64 bits


class OfferIn(BaseModel):
    """A retention offer."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=100, description="The offer's id (not 'control').")
    cost: float = Field(ge=0, allow_inf_nan=False, description="Cost per customer (currency).")
    cost_when: Literal["contacted", "accepted"] = Field(
        default="contacted",
        description="contacted: paid for every customer contacted; accepted: only when the "
        "customer takes the offer (expected cost = cost × acceptance_rate).",
    )
    capacity: int | None = Field(
        default=None,
        ge=0,
        le=MAX_CAPACITY,
        description="At most this many customers (null: no limit).",
    )
    acceptance_rate: float | None = Field(
        default=None,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="Share of contacted customers who accept (cost_when accepted only; "
        "default 1: the budget holds whatever the take-up).",
    )


class PlanRequest(ScoreRequest):
    """The customers to plan for, the offers and the budget."""

    offers: list[OfferIn] = Field(min_length=1, max_length=MAX_OFFERS)
    budget: float = Field(
        ge=0, allow_inf_nan=False, description="Total expected spend of the campaign (currency)."
    )
    acquisition_cost: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="What winning a new customer costs (currency): the summary compares "
        "replacing the customers the plan keeps with its retention spend.",
    )
    control_share: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        allow_inf_nan=False,
        description="Hold out this share of each offer's contacts as the control group, to "
        "measure the campaign afterwards: each contact's treatment is then its offer or "
        "'control' (null: no control group drawn, every treatment null).",
    )
    uplift_z: float = Field(
        default=DEFAULT_UPLIFT_Z,
        ge=0,
        le=5,
        allow_inf_nan=False,
        description="With an uplift model that has bootstrap refits: plan on estimate − "
        "uplift_z × its standard error, so that customers whose estimate is high only because "
        "it is noisy are passed over (0: the estimates themselves).",
    )
    seed: int = Field(
        default=0,
        ge=0,
        le=2**32 - 1,
        description="The control draw's seed: the same request draws the same control group.",
    )

    model_config = ConfigDict(
        **REQUEST_CONFIG,
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2025-12-31",
                    "budget": 50.0,
                    "acquisition_cost": 60.0,
                    "offers": [
                        {"id": "voucher10", "cost": 10.0},
                        {
                            "id": "free_month",
                            "cost": 25.0,
                            "cost_when": "accepted",
                            "acceptance_rate": 0.4,
                            "capacity": 100,
                        },
                    ],
                    "customers": [
                        {
                            "customer_id": "C0002",
                            "summary": {
                                "frequency": 12,
                                "recency": 300,
                                "T": 420,
                                "monetary_value": 150.0,
                            },
                        }
                    ],
                }
            ]
        },
    )


class ContactOut(BaseModel):
    customer_id: str
    offer: str
    expected_save: float = Field(description="Increase in retention probability (uplift).")
    value: float = Field(description="The customer's CLV over the CLV horizon (currency).")
    expected_incremental_profit: float = Field(
        description="expected_save × value − expected_cost (currency)."
    )
    expected_cost: float = Field(description="Cost × acceptance rate where paid on acceptance.")
    roi: float | None = Field(description="Profit / expected cost (null: a free offer).")
    treatment: str | None = Field(
        default=None,
        description="With control_share: what to send, the offer or 'control' (held out; "
        "the offer stays in 'offer', the one it was held out from). Null otherwise.",
    )


class ControlOut(BaseModel):
    share: float
    seed: int
    held_out: int = Field(description="Contacts held out as control (none of their cost spent).")
    expected_spend_sent: float = Field(description="The expected spend of the contacts sent.")


class OfferSummary(BaseModel):
    customers: int
    capacity: int | None
    expected_saves: float
    expected_spend: float
    expected_incremental_profit: float


class OptimisationOut(BaseModel):
    method: str = Field(
        description="exact (proven optimal or stopped by the time limit), lp_rounding (too "
        "many undecided pairs: the relaxation rounded) or greedy."
    )
    status: str
    bound: float | None = Field(description="No plan earns more than this (currency).")
    optimality_gap: float | None = Field(description="(bound − profit) / bound.")
    candidate_pairs: int = Field(description="(customer, offer) pairs with a positive profit.")
    pruned_pairs: int
    integer_pairs: int = Field(description="Pairs the mixed-integer programme decided.")


class AcquisitionOut(BaseModel):
    acquisition_cost: float
    expected_losses: float | None = Field(description="Σ P(churn) over the customers sent.")
    cost_of_replacing_losses: float | None = Field(
        description="acquisition_cost × expected_losses."
    )
    losses_avoided: float = Field(description="The plan's expected saves.")
    cost_of_replacing_avoided_losses: float = Field(
        description="acquisition_cost × losses_avoided."
    )
    retention_cost_per_save: float | None
    acquisition_to_retention_ratio: float | None = Field(
        description="cost_of_replacing_avoided_losses / the plan's spend."
    )


class LowerBoundOut(BaseModel):
    z: float
    replicas: int = Field(description="Bootstrap refits behind the standard errors.")


class PlanSummary(BaseModel):
    customers: int
    customers_contacted: int
    expected_saves: float = Field(description="Σ uplift over the contacted customers.")
    expected_spend: float
    budget: float
    expected_incremental_value: float
    expected_incremental_profit: float
    roi: float | None = Field(description="Profit / spend (null: nothing spent).")
    by_offer: dict[str, OfferSummary]
    optimisation: OptimisationOut
    assumption_based: bool = Field(
        description="True: no uplift model; uplift = P(churn) × the assumed save rate of the "
        "customer's risk band (save_rates)."
    )
    save_rates: dict[str, float] | None
    acquisition: AcquisitionOut | None
    control: ControlOut | None = Field(
        default=None, description="With control_share: the control group drawn."
    )
    uplift_lower_bound: LowerBoundOut | None = Field(
        default=None,
        description="The uplift planned on is estimate − z × its standard error (null: the "
        "estimates themselves, or assumed save rates).",
    )


class PlanResponse(BaseModel):
    as_of: date
    model_versions: dict[str, str]
    contacts: list[ContactOut] = Field(description="Highest expected profit first.")
    summary: PlanSummary
    warnings: list[str] = Field(default_factory=list)


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


@scoring_route(
    router,
    "/plan",
    PlanRequest,  # type: ignore[arg-type]
    PlanResponse,
    "Plan a retention campaign: whom to contact with which offer, within the budget",
)
def plan_campaign(
    store: ModelStore, body: PlanRequest, as_of: date, notes: RequestNotes
) -> dict[str, Any]:
    offers = parse_offers([o.model_dump() for o in body.offers], source="request", path="offers")
    versions, frame, features, uplift_model = plan_inputs(store, body.customers, as_of, notes)
    result = plan_customers(
        frame["customer_id"].to_numpy(dtype=object),
        frame["churn_probability"].to_numpy(dtype=float),
        frame["risk_band"].to_numpy(dtype=object),
        frame["clv"].to_numpy(dtype=float),
        offers,
        body.budget,
        uplift=uplift_for(features, offers, uplift_model, z=body.uplift_z),
        acquisition_cost=body.acquisition_cost,
        time_limit=TIME_LIMIT,
    )
    contacts = [
        {**record, "roi": _finite(record["roi"]), "treatment": None}
        for record in result.contacts.to_dict(orient="records")
    ]
    summary = {
        **result.summary,
        "control": None,
        "uplift_lower_bound": uplift_basis(uplift_model, body.uplift_z),
    }
    if body.control_share is not None:
        held = hold_out(result.contacts["offer"], body.control_share, body.seed)
        unmeasured = unmeasured_offers(result.contacts["offer"], held)
        if unmeasured:
            notes.warnings.append(
                f"no contact of offer(s) {', '.join(unmeasured)} was held out (too few "
                "contacts for the control share): their effect cannot be measured on its own"
            )
        for contact, out in zip(contacts, held, strict=True):
            contact["treatment"] = "control" if out else contact["offer"]
        spend = result.contacts["expected_cost"].to_numpy(dtype=float)
        summary["control"] = {
            "share": body.control_share,
            "seed": body.seed,
            "held_out": int(held.sum()),
            "expected_spend_sent": float(spend[~held].sum()),
        }
    return {
        "as_of": as_of,
        "model_versions": versions,
        "contacts": contacts,
        "summary": summary,
    }
