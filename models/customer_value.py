"""Customer value in three parts: what a customer has been worth, is worth now, and may be
worth.

=====================  ================================================================
``historical_value``   profit to date: ``total_revenue`` × margin (currency)
``current_value``      profit in the last 12 months: ``revenue_12m`` × margin (the 365
                       days up to as_of; NaN when unknown, e.g. a summary that does not say)
``potential_value``    the CLV: discounted profit over the CLV model's horizon (currency)
``value_margin``       the margin of the first two: the customer's own ``margin_rate``
                       (from costs, or sent with a summary), else the margin the CLV model
                       applies to the customer (configured, learned from costs, or 1.0 when
                       there were no costs: values are then revenue)
=====================  ================================================================

Whenever the CLV model learned its margins from costs (the default with cost data), the
potential value uses the same margin as the other two; with a configured margin, or a model
trained without costs, the CLV keeps the model's margin.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from models.segments.base import values

# The summary columns the parts read (besides the CLV model's clv and margin).
VALUE_INPUTS: tuple[str, ...] = ("total_revenue", "revenue_12m", "margin_rate")
VALUE_COLUMNS: tuple[str, ...] = (
    "historical_value",
    "current_value",
    "potential_value",
    "value_margin",
)


def value_parts(column: Callable[[str], np.ndarray]) -> dict[str, np.ndarray]:
    """The :data:`VALUE_COLUMNS` from float columns: ``column(name)`` gives the summary's
    ``total_revenue``, ``revenue_12m`` and ``margin_rate`` and the CLV model's ``clv`` and
    ``margin`` (all NaN when absent). Shared by the pandas, column-wise and Spark scoring."""
    own = column("margin_rate")
    margin = np.where(np.isfinite(own), own, column("margin"))
    return {
        "historical_value": column("total_revenue") * margin,
        "current_value": column("revenue_12m") * margin,
        "potential_value": np.asarray(column("clv"), dtype=float),
        "value_margin": margin,
    }


def with_value(out: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """``out`` (the segment and CLV columns of :func:`models.customer_view.segment_frame`)
    with the :data:`VALUE_COLUMNS`; ``summary`` holds the customers' summary columns (rows
    in the order of ``out``; it may be ``out`` itself)."""

    def column(name: str) -> np.ndarray:
        return values(summary if name in summary.columns else out, name)

    for name, parts in value_parts(column).items():
        out[name] = parts
    return out
