"""Churn KPIs by the product's own segments: value type, RFM segment, lifecycle stage,
nine-grid cell or behaviour cluster, each customer labelled by the fitted models.

When the label is taken matters. A label taken at the end of a period would leak the churn:
a customer lost in the period has stopped buying, so the models already see them as
lapsing (lifecycle "decline", RFM "at_risk") and every "healthy" segment would look as if
nobody left it. So each period's customers are grouped by their label **as of the period's
start**: the segmentation and CLV models score the customer's purchases up to the end of
that day (:func:`models.customer_view.segment_frame`, as ``cvm score`` labels), one labelling
per period. A customer with no purchase by a period's start has no label then and is in the
segment :data:`NO_HISTORY` (for transaction data: exactly the period's new customers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from models.churn.kpi import activity, churn_by_period, churn_by_schemes
from models.customer_view import segment_frame
from models.exceptions import InvalidInputError
from models.features import summarize
from models.segments.schemes import SCHEME_COLUMNS

# ``--by`` / ``"by"`` → the column of the segmentation output holding the label.
SEGMENT_SCHEMES: dict[str, str] = {
    "value_matrix": SCHEME_COLUMNS["value_matrix"],
    "rfm": SCHEME_COLUMNS["rfm"],
    "lifecycle": SCHEME_COLUMNS["lifecycle"],
    "nine_grid": SCHEME_COLUMNS["nine_grid"],
    "cluster": SCHEME_COLUMNS["behaviour"],
}
NO_HISTORY = "no_history"  # no purchase by the period's start: no label yet


def check_scheme(by: str) -> str:
    """The label column of scheme ``by``; an unknown one is an error naming the known ones."""
    if by not in SEGMENT_SCHEMES:
        raise InvalidInputError(
            f"unknown segment scheme {by!r}; choose one of {', '.join(SEGMENT_SCHEMES)}",
            field="by",
        )
    return SEGMENT_SCHEMES[by]


def labels_as_of(
    models: dict[str, Any],
    transactions: pd.DataFrame,
    dates: Sequence[Any],
    schemes: Sequence[str],
    customers: pd.Index | None = None,
) -> dict[str, pd.DataFrame]:
    """Each scheme's labels: a frame with one row per customer (of ``transactions``, or the
    ``customers`` given) and one column per date, the label the ``segmentation`` and ``clv``
    models give the customer's purchases up to the end of that date (:data:`NO_HISTORY`
    before the first purchase)."""
    columns = {scheme: check_scheme(scheme) for scheme in schemes}
    codes, ids = pd.factorize(transactions["customer_id"].astype(str))
    if customers is None:
        customers = pd.Index(ids, name="customer_id")
    else:  # only their purchases are summarised
        transactions = transactions[ids.isin(customers)[codes]]
    found: dict[str, dict[Any, np.ndarray]] = {scheme: {} for scheme in columns}
    for date in dates:
        summary = summarize(transactions, date)
        if len(summary):
            frame = segment_frame(models, summary)
            rows = frame.index.get_indexer(customers)  # -1: no purchase by then
        for scheme, column in columns.items():
            labels = np.full(len(customers), NO_HISTORY, dtype=object)
            if len(summary):
                values = frame[column].astype(str).to_numpy(dtype=object)
                labels[rows >= 0] = values[rows[rows >= 0]]
            found[scheme][date] = labels
    return {
        scheme: pd.DataFrame(by_date, index=customers, columns=list(dates))
        for scheme, by_date in found.items()
    }


def churn_by_segment(
    models: dict[str, Any],
    transactions: pd.DataFrame,
    dates: pd.DatetimeIndex,
    *,
    by: str | Sequence[str],
    customers: pd.DataFrame | None = None,
    active_days: int = 365,
    margin: float | None = None,
) -> pd.DataFrame:
    """The churn table of :func:`models.churn.kpi.churn_by_period` over the periods between
    ``dates`` (e.g. :func:`models.churn.kpi.period_boundaries`), by the segments of scheme
    ``by`` (:data:`SEGMENT_SCHEMES`), each customer in the segment of their label as of the
    start of each period (see the module docstring). Activity as in
    :func:`models.churn.kpi.activity`.

    With a list of schemes: one long table with a ``scheme`` column first
    (:func:`models.churn.kpi.churn_by_schemes`); the models label each period once for all.
    """
    schemes = [by] if isinstance(by, str) else list(by)
    for scheme in schemes:
        check_scheme(scheme)
    for family in ("segmentation", "clv"):
        if family not in models:
            raise InvalidInputError(
                f"segment labels need the {family} model: train first (cvm train)",
                field=family,
            )
    active, first_seen = activity(
        dates, transactions=transactions, customers=customers, active_days=active_days
    )
    labels = labels_as_of(models, transactions, list(active.columns)[:-1], schemes, active.index)
    options: dict[str, Any] = {
        "transactions": transactions,
        "active_days": active_days,
        "margin": margin,
        "first_seen": first_seen,
    }
    if isinstance(by, str):
        return churn_by_period(active, labels[by], **options)
    return churn_by_schemes(active, dict(labels), **options)


__all__ = ["NO_HISTORY", "SEGMENT_SCHEMES", "check_scheme", "churn_by_segment", "labels_as_of"]
