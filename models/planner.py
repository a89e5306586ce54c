"""The retention planner: whom to contact, with which offer, within a budget.

For each customer *i* and offer *j* the expected incremental profit is

    profit[i, j] = uplift[i, j] × value[i] − expected_cost[j]

where ``uplift`` is the increase in retention probability the offer brings (over no contact),
``value`` the customer's CLV (margin over the CLV horizon) and ``expected_cost`` the offer's
cost, times its acceptance rate when the cost is paid only on acceptance.
:func:`plan` picks at most one offer per customer (or none) so that the total expected cost
stays within the budget and no offer goes to more customers than its capacity, maximising
the total expected incremental profit:

- pairs with a profit of 0 or less are never part of an optimal plan (leaving the customer
  out does better) and are pruned first, so are offers dearer than the whole budget;
- the linear relaxation of the rest is solved by HiGHS (``scipy.optimize.linprog``, interior
  point with crossover): its value bounds every plan, and rounded it gives a feasible plan;
- reduced-cost fixing settles every pair whose reduced cost exceeds the gap between the two,
  and the few pairs left go to an exact mixed-integer programme (``scipy.optimize.milp``,
  HiGHS) when there are at most :data:`MAX_EXACT_PAIRS`: the plan is then optimal;
- otherwise, or when the solver hits its time limit, the rounded plan stands and the summary
  reports the relaxation's bound and the optimality gap.

Without uplift estimates (no campaign history, no uplift model) :func:`assumed_uplift` uses
assumed save rates by churn risk band (:data:`DEFAULT_SAVE_RATES`): the share of the
customers who would churn that an offer keeps. Every offer is then assumed equally effective,
so the cheapest offer with room is chosen; such a plan is marked ``assumption_based``.

Pure: no I/O beyond :func:`load_offers` reading the offers file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models._json import read_json_file
from models.churn.risk import BAND_NAMES
from models.exceptions import InvalidInputError

COST_WHEN = ("contacted", "accepted")
OFFER_FIELDS = ("id", "cost", "cost_when", "capacity", "acceptance_rate")
RESERVED_IDS = ("control",)  # the treatment of a campaign's control group
MAX_EXACT_PAIRS = 200_000
TIME_LIMIT = 60.0  # seconds for the exact programme
MIP_REL_GAP = 1e-7

# The plan's uplift: the lower confidence bound, estimate − DEFAULT_UPLIFT_Z × its standard
# error (make bench-plan, seeds 5-7: the plan's true profit went from 1,887 / 2,514 / 2,867
# to 2,399 / 4,214 / 2,801, and its expected profit from 2-3.6x the true one to 0.74-0.97x).
DEFAULT_UPLIFT_Z = 1.0
# Assumed save rates by churn risk band: the share of the customers who would churn that a
# retention offer keeps, used when there is no uplift estimate. Medium-risk customers are the
# most persuadable; many high-risk ones have already decided (lost causes); the few churners
# among low-risk customers mostly leave for reasons an offer does not change.
DEFAULT_SAVE_RATES: dict[str, float] = {"low": 0.05, "medium": 0.15, "high": 0.10}


@dataclass(frozen=True)
class Offer:
    """A retention offer: its cost, when the cost is paid and how many customers it can go to."""

    id: str
    cost: float
    cost_when: str = "contacted"
    capacity: int | None = None
    acceptance_rate: float | None = None

    @property
    def expected_cost(self) -> float:
        """The cost per contacted customer: ``cost``, or ``cost × acceptance_rate`` when the
        cost is paid on acceptance (an acceptance rate not given counts as 1: every contacted
        customer accepts, so the budget holds whatever the take-up)."""
        if self.cost_when == "accepted":
            rate = 1.0 if self.acceptance_rate is None else self.acceptance_rate
            return self.cost * rate
        return self.cost

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "cost": self.cost,
            "cost_when": self.cost_when,
            "capacity": self.capacity,
            "acceptance_rate": self.acceptance_rate,
        }


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_offers(data: Any, source: str = "offers", path: str = "offers") -> list[Offer]:
    """The offers of ``data`` (a list of objects), validated. Errors name ``source`` (the file
    or the request), the offer (its id and position, ``path.N``) and the field."""
    if not isinstance(data, list) or not data:
        raise InvalidInputError(
            f"{source}: expected a non-empty list of offers, got {type(data).__name__}"
            + (" (empty)" if isinstance(data, list) else ""),
            field=path,
        )
    offers: list[Offer] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(data):
        where = f"{path}.{i}"
        if not isinstance(item, dict):
            raise InvalidInputError(
                f"{source}: offer {i} is a {type(item).__name__}, expected an object with "
                f"{', '.join(OFFER_FIELDS)}",
                field=where,
            )
        offer_id = item.get("id")
        if not isinstance(offer_id, str) or not offer_id.strip():
            raise InvalidInputError(
                f"{source}: offer {i}: id must be a non-empty text, got {offer_id!r}",
                field=f"{where}.id",
            )
        name = f"{source}: offer {offer_id!r} ({where})"
        unknown = sorted(set(item) - set(OFFER_FIELDS))
        if unknown:
            raise InvalidInputError(
                f"{name}: unknown field(s) {', '.join(unknown)}; the fields are "
                f"{', '.join(OFFER_FIELDS)}",
                field=f"{where}.{unknown[0]}",
            )
        if offer_id in RESERVED_IDS:
            raise InvalidInputError(
                f"{name}: id {offer_id!r} is reserved for the control group; rename the offer",
                field=f"{where}.id",
            )
        if offer_id in seen:
            raise InvalidInputError(
                f"{name}: id {offer_id!r} is also offer {seen[offer_id]}; ids must be unique",
                field=f"{where}.id",
            )
        seen[offer_id] = i
        cost: Any = item.get("cost")
        if not _is_number(cost) or cost < 0:
            raise InvalidInputError(
                f"{name}: cost must be a number >= 0, got {cost!r}", field=f"{where}.cost"
            )
        cost_when = item.get("cost_when", "contacted")
        if cost_when not in COST_WHEN:
            raise InvalidInputError(
                f"{name}: cost_when must be 'contacted' or 'accepted', got {cost_when!r}",
                field=f"{where}.cost_when",
            )
        capacity = item.get("capacity")
        if capacity is not None and (
            isinstance(capacity, bool)
            or not isinstance(capacity, int | float)
            or not math.isfinite(capacity)
            or capacity != int(capacity)
            or capacity < 0
        ):
            raise InvalidInputError(
                f"{name}: capacity must be a whole number >= 0 or null (no limit), got "
                f"{capacity!r}",
                field=f"{where}.capacity",
            )
        rate = item.get("acceptance_rate")
        if rate is not None:
            if not _is_number(rate) or not 0 <= rate <= 1:
                raise InvalidInputError(
                    f"{name}: acceptance_rate must be a number from 0 to 1, got {rate!r}",
                    field=f"{where}.acceptance_rate",
                )
            if cost_when != "accepted":
                raise InvalidInputError(
                    f"{name}: acceptance_rate applies only to an offer paid on acceptance "
                    '(cost_when "accepted"); this one is paid on contact',
                    field=f"{where}.acceptance_rate",
                )
        offers.append(
            Offer(
                id=offer_id,
                cost=float(cost),
                cost_when=cost_when,
                capacity=None if capacity is None else int(capacity),
                acceptance_rate=None if rate is None else float(rate),
            )
        )
    return offers


def load_offers(path: str | Path) -> list[Offer]:
    """The offers of a JSON file (a list of offer objects), validated."""
    return parse_offers(read_json_file(path, "offers file"), source=str(path))


def check_budget(budget: Any, field: str = "budget") -> float:
    if not _is_number(budget) or budget < 0:
        raise InvalidInputError(f"budget must be a number >= 0, got {budget!r}", field=field)
    return float(budget)


def parse_save_rates(text: str) -> dict[str, float]:
    """``"low=0.05,medium=0.15,high=0.1"`` as save rates by risk band (bands not named keep
    :data:`DEFAULT_SAVE_RATES`)."""
    rates = dict(DEFAULT_SAVE_RATES)
    for part in (p.strip() for p in text.split(",") if p.strip()):
        band, _, value = part.partition("=")
        band = band.strip()
        if band not in BAND_NAMES:
            raise InvalidInputError(
                f"save rates {text!r}: unknown risk band {band!r}; the bands are "
                f"{', '.join(BAND_NAMES)}",
                field="save_rates",
            )
        try:
            rate = float(value)
        except ValueError:
            rate = math.nan
        if not 0 <= rate <= 1:
            raise InvalidInputError(
                f"save rates {text!r}: the rate of {band} must be a number from 0 to 1, got "
                f"{value.strip()!r}",
                field="save_rates",
            )
        rates[band] = rate
    return rates


def assumed_uplift(
    churn_probability: Any,
    risk_band: Any,
    n_offers: int,
    save_rates: dict[str, float] | None = None,
) -> np.ndarray:
    """(n, n_offers) uplift without campaign history: churn probability × the save rate of the
    customer's risk band, the same for every offer."""
    rates = save_rates or DEFAULT_SAVE_RATES
    p = np.nan_to_num(np.asarray(churn_probability, dtype=float), nan=0.0)
    bands = np.asarray(risk_band, dtype=object)
    rate = np.array([rates.get(str(b), 0.0) for b in bands], dtype=float)
    return np.repeat((np.clip(p, 0.0, 1.0) * rate)[:, None], n_offers, axis=1)


def uplift_for(
    customers_frame: pd.DataFrame,
    offers: list[Offer],
    model: Any = None,
    z: float = DEFAULT_UPLIFT_Z,
) -> np.ndarray | None:
    """The (n customers, n offers) retention uplift of each offer from the uplift ``model``
    (the ``cvm-uplift`` champion), or None when there is none (the plan then uses
    :func:`assumed_uplift`).

    ``customers_frame``: one row per customer, in the order of the plan, holding the churn-
    feature columns the model was trained on; the answer's columns follow ``offers``. An offer
    the model was not trained on is an error naming it and the known ones.

    ``z``: plan on the lower confidence bound, estimate − ``z`` × its standard error, when
    the model has bootstrap refits (:func:`uplift_basis` says what was used); 0: the
    estimates themselves. Why: the plan picks the customers whose estimates are highest, and
    among those the errors lean upwards (the winner's curse); a customer whose estimate is
    high only because it is noisy is passed over."""
    if model is None:
        return None
    from models.uplift import uplift_matrix

    check_z(z)
    effects, _ = uplift_matrix(model, customers_frame, [o.id for o in offers], z=z)
    return effects


def check_z(z: Any, field: str = "uplift_z") -> float:
    """``z`` as a number from 0 to 5, else an error naming ``field``."""
    if isinstance(z, bool) or not _is_number(z) or not 0.0 <= float(z) <= 5.0:
        raise InvalidInputError(f"{field} must be a number from 0 to 5, got {z!r}", field=field)
    return float(z)


def uplift_basis(model: Any, z: float) -> dict[str, Any] | None:
    """What the plan's uplift is (for the summary): ``{"z", "replicas"}`` when it is the
    lower confidence bound of a model with bootstrap refits, None for the estimates
    themselves (or no model)."""
    replicas = len(getattr(model, "replicas_", None) or []) if model is not None else 0
    if z <= 0 or replicas < 2:
        return None
    return {"z": float(z), "replicas": replicas}


@dataclass
class Plan:
    """The contact list (one row per contacted customer) and the summary."""

    contacts: pd.DataFrame
    summary: dict[str, Any]


@dataclass
class _Solution:
    chosen: np.ndarray  # indices into the candidate pairs
    method: str  # exact, lp_rounding or greedy
    status: str
    bound: float  # no plan earns more (NaN: unknown)
    core_pairs: int  # pairs left to the mixed-integer programme after fixing


def _constraints(
    customer: np.ndarray, offer: np.ndarray, cost: np.ndarray, capacity: np.ndarray, budget: float
) -> tuple[Any, np.ndarray]:
    """(A, upper bounds) of ``A x <= upper``: one offer per customer (customers with more than
    one candidate offer), the budget, and each limited offer's ``capacity`` (inf: no limit)."""
    from scipy import sparse

    m = len(customer)
    _, rank, counts = np.unique(customer, return_inverse=True, return_counts=True)
    several = counts[rank] > 1  # a customer with one candidate needs no row: x <= 1 holds
    _, row = np.unique(rank[several], return_inverse=True)
    n_rows = int(row.max()) + 1 if several.any() else 0
    blocks = [
        sparse.csr_array(
            (np.ones(int(several.sum())), (row, np.flatnonzero(several))), shape=(n_rows, m)
        ),
        sparse.csr_array(cost.reshape(1, -1)),
    ]
    upper = [np.ones(n_rows), np.array([budget])]
    for j in np.flatnonzero(np.isfinite(capacity)):
        blocks.append(sparse.csr_array((offer == j).astype(float).reshape(1, -1)))
        upper.append(np.array([float(capacity[j])]))
    return sparse.vstack(blocks, format="csr"), np.concatenate(upper)


def _round(
    x: np.ndarray,
    profit: np.ndarray,
    customer: np.ndarray,
    offer: np.ndarray,
    cost: np.ndarray,
    capacity: np.ndarray,
    budget: float,
) -> np.ndarray:
    """A feasible plan from a relaxed solution ``x``: its whole pairs, then the others by
    their relaxed value and profit while budget, capacity and one offer per customer allow."""
    order = np.lexsort((-profit, -np.round(x, 9)))
    left = budget
    room = capacity.copy()
    taken: set[int] = set()
    chosen = []
    for k in order:
        j, i = int(offer[k]), int(customer[k])
        if i in taken or cost[k] > left + 1e-9 or room[j] < 1:
            continue
        chosen.append(k)
        taken.add(i)
        left -= cost[k]
        room[j] -= 1
    return np.array(sorted(chosen), dtype=int)


def _solve(
    profit: np.ndarray,
    customer: np.ndarray,
    offer: np.ndarray,
    cost: np.ndarray,
    capacity: np.ndarray,
    budget: float,
    max_exact_pairs: int,
    time_limit: float,
) -> _Solution:
    """The best plan over the candidate pairs.

    1. The linear relaxation (HiGHS): its value bounds every plan; rounded, a feasible plan.
    2. Reduced-cost fixing: a pair whose reduced cost exceeds the gap between the bound and
       that plan takes its relaxed value in every better plan, so it is fixed.
    3. The pairs left (the few the relaxation is undecided about) go to the mixed-integer
       programme (``scipy.optimize.milp``) when there are at most ``max_exact_pairs``; its
       optimum with the fixed pairs is the exact optimum. Otherwise the rounded plan stands,
       with the bound and gap reported."""
    from scipy.optimize import Bounds, LinearConstraint, linprog, milp

    m = len(profit)
    if m == 0:
        return _Solution(np.array([], dtype=int), "exact", "optimal", 0.0, 0)
    a, upper = _constraints(customer, offer, cost, capacity, budget)
    lp = linprog(
        -profit, A_ub=a, b_ub=upper, bounds=(0, 1), method="highs-ipm",
        options={"time_limit": time_limit},
    )  # fmt: skip
    if lp.x is None:  # the relaxation did not finish: a greedy plan, no bound
        chosen = _round(np.zeros(m), profit, customer, offer, cost, capacity, budget)
        return _Solution(chosen, "greedy", "time_limit", float("nan"), m)
    x, bound = np.asarray(lp.x), -float(lp.fun)
    best = _round(x, profit, customer, offer, cost, capacity, budget)
    value = float(profit[best].sum())
    tol = 1e-9 * max(1.0, abs(bound))
    gap = bound - value
    if gap <= tol:
        return _Solution(best, "exact", "optimal", max(bound, value), 0)
    # reduced costs of the minimisation: >= 0 at the lower bound, <= 0 at the upper one
    fix0 = (x <= 1e-9) & (np.asarray(lp.lower.marginals) > gap + tol)
    fix1 = (x >= 1 - 1e-9) & (-np.asarray(lp.upper.marginals) > gap + tol)
    decided = np.isin(customer, customer[fix1])  # a customer fixed to an offer gets no other
    free = np.flatnonzero(~fix0 & ~decided)
    if len(free) > max_exact_pairs:
        status = "too_large" if m > max_exact_pairs else "core_too_large"
        return _Solution(best, "lp_rounding", status, bound, len(free))
    fixed = np.flatnonzero(fix1)
    left = budget - float(cost[fixed].sum())
    room = capacity - np.bincount(offer[fixed], minlength=len(capacity))
    f_a, f_upper = _constraints(
        customer[free], offer[free], cost[free], np.maximum(room, 0), max(left, 0.0)
    )
    res = milp(
        -profit[free],
        integrality=np.ones(len(free)),
        bounds=Bounds(0.0, 1.0),
        constraints=LinearConstraint(f_a, -np.inf, f_upper),
        options={"time_limit": time_limit, "mip_rel_gap": MIP_REL_GAP, "disp": False},
    )
    if res.x is not None:
        candidate = np.sort(np.concatenate([fixed, free[np.asarray(res.x) > 0.5]]))
        if float(profit[candidate].sum()) > value:
            best, value = candidate, float(profit[candidate].sum())
    if res.status == 0:
        return _Solution(best, "exact", "optimal", value, len(free))
    core_bound = getattr(res, "mip_dual_bound", None)
    if core_bound is not None and np.isfinite(core_bound):
        bound = min(bound, float(profit[fixed].sum()) - float(core_bound))
    return _Solution(best, "exact", "time_limit", max(bound, value), len(free))


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator > 0 else None


def plan(
    customer_ids: Any,
    uplift: Any,
    value: Any,
    offers: list[Offer],
    budget: float,
    *,
    acquisition_cost: float | None = None,
    churn_probability: Any = None,
    assumed_save_rates: dict[str, float] | None = None,
    max_exact_pairs: int = MAX_EXACT_PAIRS,
    time_limit: float = TIME_LIMIT,
) -> Plan:
    """The profit-maximising allocation of ``offers`` to customers within ``budget``.

    ``uplift``: (n, len(offers)) increase in retention probability per customer and offer;
    ``value``: (n,) CLV margin over the horizon (negative values count as 0);
    ``acquisition_cost``: what winning a new customer costs, for the comparison with
    retention; ``churn_probability``: (n,) to count the expected losses of the population;
    ``assumed_save_rates``: the save rates the uplift was assumed from (marks the plan as
    assumption-based)."""
    ids = pd.Index(np.asarray(customer_ids, dtype=object))
    n, k = len(ids), len(offers)
    budget = check_budget(budget)
    if acquisition_cost is not None and (not _is_number(acquisition_cost) or acquisition_cost < 0):
        raise InvalidInputError(
            f"acquisition cost must be a number >= 0, got {acquisition_cost!r}",
            field="acquisition_cost",
        )
    if k == 0:
        raise InvalidInputError("no offers to plan with", field="offers")
    lift = np.asarray(uplift, dtype=float)
    if lift.shape != (n, k):
        raise InvalidInputError(
            f"uplift has shape {lift.shape}; expected ({n} customers, {k} offers)", field="uplift"
        )
    worth = np.asarray(value, dtype=float)
    if worth.shape != (n,):
        raise InvalidInputError(
            f"value has shape {worth.shape}; expected ({n},) customers", field="value"
        )
    worth = np.maximum(np.nan_to_num(worth, nan=0.0), 0.0)
    lift = np.nan_to_num(lift, nan=0.0)
    offer_cost = np.array([o.expected_cost for o in offers], dtype=float)
    profit_all = lift * worth[:, None] - offer_cost[None, :]
    capacity = np.array([np.inf if o.capacity is None else o.capacity for o in offers], float)
    keep = (profit_all > 0) & (offer_cost <= budget)[None, :] & (capacity >= 1)[None, :]
    customer, offer = np.nonzero(keep)
    profit = profit_all[customer, offer]
    cost = offer_cost[offer]
    solution = _solve(profit, customer, offer, cost, capacity, budget, max_exact_pairs, time_limit)
    picked_customer, picked_offer = customer[solution.chosen], offer[solution.chosen]
    picked_profit, picked_cost = profit[solution.chosen], cost[solution.chosen]
    picked_lift = lift[picked_customer, picked_offer]
    with np.errstate(divide="ignore", invalid="ignore"):
        roi = np.where(picked_cost > 0, picked_profit / picked_cost, np.nan)
    contacts = pd.DataFrame(
        {
            "customer_id": ids[picked_customer],
            "offer": [offers[j].id for j in picked_offer],
            "expected_save": picked_lift,
            "value": worth[picked_customer],
            "expected_incremental_profit": picked_profit,
            "expected_cost": picked_cost,
            "roi": roi,
        }
    )
    contacts = contacts.sort_values(
        ["expected_incremental_profit", "customer_id"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)
    summary = _summary(
        contacts, offers, n, budget, solution, len(profit), n * k, acquisition_cost,
        churn_probability, assumed_save_rates,
    )  # fmt: skip
    return Plan(contacts, summary)


def _summary(
    contacts: pd.DataFrame,
    offers: list[Offer],
    n: int,
    budget: float,
    solution: _Solution,
    pairs: int,
    all_pairs: int,
    acquisition_cost: float | None,
    churn_probability: Any,
    assumed_save_rates: dict[str, float] | None,
) -> dict[str, Any]:
    saves = float(contacts["expected_save"].sum())
    spend = float(contacts["expected_cost"].sum())
    profit = float(contacts["expected_incremental_profit"].sum())
    by_offer = {}
    for o in offers:
        part = contacts[contacts["offer"] == o.id]
        by_offer[o.id] = {
            "customers": len(part),
            "capacity": o.capacity,
            "expected_saves": float(part["expected_save"].sum()),
            "expected_spend": float(part["expected_cost"].sum()),
            "expected_incremental_profit": float(part["expected_incremental_profit"].sum()),
        }
    bound = solution.bound
    gap = None
    if np.isfinite(bound):
        gap = 0.0 if bound <= 0 else max(bound - profit, 0.0) / bound
    summary: dict[str, Any] = {
        "customers": n,
        "customers_contacted": len(contacts),
        "expected_saves": saves,
        "expected_spend": spend,
        "budget": budget,
        "expected_incremental_value": float((contacts["expected_save"] * contacts["value"]).sum()),
        "expected_incremental_profit": profit,
        "roi": _ratio(profit, spend),
        "by_offer": by_offer,
        "optimisation": {
            "method": solution.method,
            "status": solution.status,
            "bound": float(bound) if np.isfinite(bound) else None,
            "optimality_gap": gap,
            "candidate_pairs": pairs,
            "pruned_pairs": all_pairs - pairs,
            "integer_pairs": solution.core_pairs,
        },
        "assumption_based": assumed_save_rates is not None,
        "save_rates": dict(assumed_save_rates) if assumed_save_rates is not None else None,
        "acquisition": None,
    }
    if acquisition_cost is not None:
        expected_losses = None
        if churn_probability is not None:
            p = np.nan_to_num(np.asarray(churn_probability, dtype=float), nan=0.0)
            expected_losses = float(np.clip(p, 0, 1).sum())
        c = float(acquisition_cost)
        summary["acquisition"] = {
            "acquisition_cost": c,
            "expected_losses": expected_losses,
            "cost_of_replacing_losses": None if expected_losses is None else c * expected_losses,
            "losses_avoided": saves,
            "cost_of_replacing_avoided_losses": c * saves,
            "retention_cost_per_save": _ratio(spend, saves),
            "acquisition_to_retention_ratio": _ratio(c * saves, spend),
        }
    return summary


def plan_customers(
    customer_ids: Any,
    churn_probability: Any,
    risk_band: Any,
    clv: Any,
    offers: list[Offer],
    budget: float,
    *,
    uplift: np.ndarray | None = None,
    acquisition_cost: float | None = None,
    save_rates: dict[str, float] | None = None,
    time_limit: float = TIME_LIMIT,
) -> Plan:
    """:func:`plan` for scored customers: the uplift given (from the uplift model), else
    assumed from the churn probability and risk band (:func:`assumed_uplift`)."""
    assumed = None
    if uplift is None:
        assumed = dict(save_rates or DEFAULT_SAVE_RATES)
        uplift = assumed_uplift(churn_probability, risk_band, len(offers), assumed)
    return plan(
        customer_ids,
        uplift,
        clv,
        offers,
        budget,
        acquisition_cost=acquisition_cost,
        churn_probability=churn_probability,
        assumed_save_rates=assumed,
        time_limit=time_limit,
    )


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def format_summary(summary: dict[str, Any]) -> str:
    """The plan's summary as lines of text for the terminal."""
    s = summary
    roi = "n/a" if s["roi"] is None else f"{s['roi']:.2f}"
    opt = s["optimisation"]
    lines = [
        f"customers scored:             {s['customers']:,}",
        f"customers contacted:          {s['customers_contacted']:,}",
        f"expected saves:               {s['expected_saves']:,.1f}",
        f"expected spend:               {_money(s['expected_spend'])} of {_money(s['budget'])}",
        f"expected incremental profit:  {_money(s['expected_incremental_profit'])}",
        f"ROI (profit / spend):         {roi}",
    ]
    for offer_id, part in s["by_offer"].items():
        cap = "" if part["capacity"] is None else f" (capacity {part['capacity']:,})"
        lines.append(
            f"  offer {offer_id}: {part['customers']:,} customers{cap}, spend "
            f"{_money(part['expected_spend'])}, profit {_money(part['expected_incremental_profit'])}"
        )
    gap = opt["optimality_gap"]
    gap_text = "unknown" if gap is None else f"{100 * gap:.4f} %"
    if opt["method"] == "exact" and opt["status"] == "optimal":
        how = "optimal (linear bound, then a mixed-integer programme on the undecided pairs)"
    else:
        how = (
            f"not proven optimal ({opt['status'].replace('_', ' ')}): upper bound "
            f"{_money(opt['bound'])}, optimality gap {gap_text}"
        )
    lines.append(f"allocation:                   {how}")
    acq = s.get("acquisition")
    if acq:
        if acq["expected_losses"] is not None:
            lines.append(
                f"expected losses (all scored): {acq['expected_losses']:,.1f} customers; replacing "
                f"them at {_money(acq['acquisition_cost'])} each costs "
                f"{_money(acq['cost_of_replacing_losses'])}"
            )
        ratio = acq["acquisition_to_retention_ratio"]
        ratio_text = "n/a" if ratio is None else f"{ratio:.1f}x"
        lines.append(
            f"the plan's expected saves would cost {_money(acq['cost_of_replacing_avoided_losses'])}"
            f" to replace by acquisition: {ratio_text} its retention spend (retention cost per "
            f"save {_money(acq['retention_cost_per_save'])})"
        )
    if s["assumption_based"]:
        rates = ", ".join(f"{b} {r:g}" for b, r in s["save_rates"].items())
        lines.append(
            "assumption-based: no uplift model, so uplift = churn probability x an assumed "
            f"save rate by risk band ({rates}); every offer is assumed equally effective"
        )
    elif s.get("uplift_lower_bound"):
        bound = s["uplift_lower_bound"]
        lines.append(
            f"uplift: the lower confidence bound, estimate - {bound['z']:g} x its standard "
            f"error ({bound['replicas']} bootstrap refits of the uplift model), so that a "
            "customer whose estimate is high only because it is noisy is passed over; "
            "measure the send against its control group (cvm report campaign)"
        )
    elif s["customers_contacted"]:
        lines.append(
            "read the expected profit as an upper estimate: the plan picks the customers whose "
            "estimated uplift is highest, and the errors of those estimates lean upwards; "
            "measure the send against its control group (cvm report campaign)"
        )
    return "\n".join(lines)


def unmeasured_offers(offers: Any, held: np.ndarray) -> list[str]:
    """The offers of a send none of whose contacts :func:`hold_out` held out (too few
    contacts for the share): their effect cannot be measured on its own."""
    chosen = np.asarray(offers).astype(str)
    return sorted(o for o in set(chosen.tolist()) if not held[chosen == o].any())


def check_control_share(share: Any) -> float:
    """``share`` as a number strictly between 0 and 1, else an error: a campaign without a
    control group (or without anyone sent) cannot be measured."""
    if isinstance(share, bool) or not _is_number(share) or not 0.0 < float(share) < 1.0:
        raise InvalidInputError(
            f"the control share must be between 0 and 1 (exclusive), got {share}: a campaign "
            "without a control group cannot be measured",
            field="control_share",
        )
    return float(share)


def hold_out(offers: Any, share: float, seed: int = 0) -> np.ndarray:
    """The control group of a planned send: True for ``round(share × n)`` of the ``n``
    contacts of each offer, drawn at random with ``seed`` (within each offer, so that each
    offer can be compared with the customers held out from it, and all offers with the whole
    control group: every offer holds out the same share)."""
    share = check_control_share(share)
    chosen = np.asarray(offers).astype(str)
    held = np.zeros(len(chosen), dtype=bool)
    rng = np.random.default_rng(seed)
    for offer in sorted(set(chosen.tolist())):
        rows = np.flatnonzero(chosen == offer)
        held[rng.permutation(rows)[: int(round(float(share) * len(rows)))]] = True
    return held


__all__ = [
    "DEFAULT_SAVE_RATES",
    "MAX_EXACT_PAIRS",
    "Offer",
    "Plan",
    "DEFAULT_UPLIFT_Z",
    "assumed_uplift",
    "check_budget",
    "check_control_share",
    "check_z",
    "format_summary",
    "hold_out",
    "load_offers",
    "parse_offers",
    "parse_save_rates",
    "plan",
    "plan_customers",
    "unmeasured_offers",
    "uplift_basis",
    "uplift_for",
]
