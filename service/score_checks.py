"""Customers the models cannot score, named as a 422 before they become a 500 or a null.

A request can pass the schemas and still hold values the models cannot compute with:

- date attributes (``signup_date``, ``complaint_date``, ``resolution_date``) are text that the
  churn features parse: each is parsed here, once, and checked against the supported years;
- purchase amounts (or costs) whose sums overflow a float (three amounts of 1e308), or a
  summary whose ``monetary_value × (frequency + 1)`` does: the summary is checked finite;
- values so large that a model's output is not a finite number (a ``monetary_value`` of
  1e307): the scores a response shows are checked finite.

Each error names the customer and the field. The checks are numpy passes over the frames
the request builds anyway; the customer is looked for only when one fails.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from models.churn.features import DATE_ATTRIBUTES
from models.exceptions import InvalidInputError
from service.fields import MAX_YEAR, MIN_YEAR
from service.schemas import CustomerIn

# Summary columns that always hold a number; the others may be missing (NaN), never infinite.
REQUIRED_SUMMARY = (
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "n_purchases",
    "total_revenue",
    "avg_order_value",
    "tenure_days",
    "days_since_last",
)
_FROM_COSTS = frozenset({"total_profit", "profit_per_purchase", "margin_rate"})
# The numbers of the customer view (response fields that cannot be null).
SHOWN_SCORES = (
    "churn_probability",
    "expected_purchases",
    "probability_alive",
    "expected_spend",
    "clv",
    "margin",
    "value_at_risk",
    "historical_value",
    "value_margin",
)
_LARGEST = "about 1.8e308, the largest number the service computes with"


def _source(customers: list[CustomerIn], i: int) -> str:
    """The input block of customer ``i``: ``customers.<i>.transactions`` or ``...summary``."""
    block = "transactions" if customers[i].transactions is not None else "summary"
    return f"customers.{i}.{block}"


# --- date attributes --------------------------------------------------------------------------
def _date(value: Any, customer_id: str, field: str) -> pd.Timestamp | None:
    name = field.rsplit(".", 1)[-1]
    hint = "send a date as ISO 8601 text, e.g. 2024-05-01"
    if not isinstance(value, str):
        raise InvalidInputError(
            f"{name} of customer {customer_id!r} is not a date: {value!r} ({hint})", field=field
        )
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, OverflowError):  # unparsable, or out of pandas' range
        raise InvalidInputError(
            f"{name} of customer {customer_id!r} is not a date: {value[:40]!r} ({hint})",
            field=field,
        ) from None
    if pd.isna(stamp):
        return None
    if stamp.tzinfo is not None:  # as the purchase timestamps: UTC, then naive
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    if not MIN_YEAR <= stamp.year <= MAX_YEAR:
        raise InvalidInputError(
            f"{name} of customer {customer_id!r} must be between the years {MIN_YEAR} and "
            f"{MAX_YEAR}; got {value[:40]!r}",
            field=field,
        )
    return stamp


def attribute_rows(customers: list[CustomerIn]) -> list[dict[str, Any]]:
    """One attribute record per customer, its ``customer_id`` the request's (an attribute of
    that name never replaces it) and its date attributes parsed as timestamps."""
    rows = []
    for i, customer in enumerate(customers):
        row: dict[str, Any] = {"customer_id": customer.customer_id}
        if customer.attributes:
            row.update(customer.attributes)
            row["customer_id"] = customer.customer_id
            for key in DATE_ATTRIBUTES:
                if row.get(key) is not None:
                    field = f"customers.{i}.attributes.{key}"
                    row[key] = _date(row[key], customer.customer_id, field)
        rows.append(row)
    return rows


# --- the summary ------------------------------------------------------------------------------
def check_summary(summary: pd.DataFrame, customers: list[CustomerIn]) -> None:
    """Every customer's summary features finite (``summary`` in request order); else a 422
    naming the first customer whose sums overflow, and the rows of all of them."""
    values = summary.to_numpy(dtype=float, na_value=np.nan)
    bad = np.isinf(values)
    required = [j for j, c in enumerate(summary.columns) if c in REQUIRED_SUMMARY]
    bad[:, required] |= np.isnan(values[:, required])
    if not bad.any():
        return
    i, j = (int(k) for k in np.argwhere(bad)[0])
    rows = np.flatnonzero(bad.any(axis=1)).tolist()
    column, customer_id = str(summary.columns[j]), customers[i].customer_id
    if customers[i].transactions is not None:
        what = "costs" if column in _FROM_COSTS else "amounts"
        message = (
            f"the purchase {what} of customer {customer_id!r} add up to more than {_LARGEST}; "
            "send them in a larger currency unit"
        )
        raise InvalidInputError(message, field=f"customers.{i}.transactions", rows=rows)
    if column in _FROM_COSTS:  # the profit columns a summary's margin rate gives
        message = (
            f"the total profit of customer {customer_id!r}, margin_rate × total revenue, is "
            f"more than {_LARGEST}; send a margin rate such as 0.3, or amounts in a larger "
            "currency unit"
        )
        raise InvalidInputError(message, field=f"customers.{i}.summary.margin_rate", rows=rows)
    message = (
        f"the total revenue of customer {customer_id!r}, monetary_value × (frequency + 1), is "
        f"more than {_LARGEST}; send total_revenue, or amounts in a larger currency unit"
    )
    raise InvalidInputError(message, field=f"customers.{i}.summary.monetary_value", rows=rows)


# --- the scores -------------------------------------------------------------------------------
def _unscorable(customers: list[CustomerIn], rows: list[int], what: str) -> InvalidInputError:
    """A 422 for the customers of ``rows`` (request order), naming the first and its input:
    its purchases or summary, and its attributes too when the churn model (which also reads
    them) failed, and it has some (then the error's field is the customer)."""
    i = rows[0]
    customer = customers[i]
    field = check = _source(customers, i)
    if what.startswith("churn") and customer.attributes:
        field, check = f"customers.{i}", f"{field} and customers.{i}.attributes"
    message = (
        f"customer {customer.customer_id!r} cannot be scored: its values are too large for "
        f"the models ({what} would not be a finite number); check {check}"
    )
    return InvalidInputError(message, field=field, rows=rows)


def check_scores(frame: pd.DataFrame, customers: list[CustomerIn]) -> None:
    """The customer view's numbers (:data:`SHOWN_SCORES` of a ``score_frame``, rows in
    request order) all finite; else a 422 naming the first customer without."""
    for column in SHOWN_SCORES:
        finite = np.isfinite(frame[column].to_numpy(dtype=float, na_value=np.nan))
        if not finite.all():
            raise _unscorable(customers, np.flatnonzero(~finite).tolist(), column)


def check_churn(reasons: pd.DataFrame, customers: list[CustomerIn]) -> None:
    """Each customer's churn probability and reason contributions finite (``reasons`` from
    ``churn_reasons``, rows in request order)."""
    probability = reasons["churn_probability"].to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(probability)
    for i, drivers in enumerate(reasons["reasons"]):
        if any(not math.isfinite(reason["contribution"]) for reason in drivers):
            bad[i] = True
    if bad.any():
        raise _unscorable(customers, np.flatnonzero(bad).tolist(), "churn_probability")
