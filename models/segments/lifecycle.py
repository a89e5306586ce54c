"""Lifecycle stage: acquisition → growth → maturity → decline → lapsed (docs/METHODS.md).

The customer life cycle splits a customer's profit contribution into acquisition
growth, maturity and decline (and lets customers of very low lifetime value
drift away); relationship marketing names the phases exploration, formation,
stability and deterioration. Here a customer's stage comes from tenure, the trend
of recent against earlier activity, the probability of being alive (P(alive), from the CLV
model) and how long the customer has been silent compared with their purchase rhythm.

Rules, first match wins (thresholds are parameters of :class:`LifecycleStage`):

1. ``lapsed``: P(alive) < ``lapsed_alive`` (0.2), or silent for more than
   ``lapse_gap_factor`` (3) × the customer's reference gap.
2. ``acquisition``: first purchase less than ``acquisition_days`` (90) ago.
3. ``decline``: P(alive) < ``decline_alive`` (0.5), or silent for more than
   ``decline_gap_factor`` (1.5) × the reference gap, or ``activity_trend`` ≤
   ``decline_trend`` (−1/3: recent purchase days at most half the earlier ones).
4. ``growth``: ``activity_trend`` ≥ ``growth_trend`` (+1/3: at least double).
5. ``maturity``: the rest (steady activity).

The reference gap is the longer of the customer's own mean gap between purchase days and
the typical gap of the training population (``typical_gap_days_``, the median own gap of the
repeat buyers), so a one-time buyer is judged against the population's rhythm and a
customer who bought twice in one week is not declared lapsed after a month. P(alive) is
read from an optional ``probability_alive`` column; without it (or where it is missing)
the silence rules decide alone. The silence rules apply with P(alive) too, because BG/NBD
gives every one-time buyer P(alive) = 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from models.exceptions import InvalidInputError
from models.segments.base import check_fitted, check_not_empty, require_columns, sizes, values

LIFECYCLE_STAGES: tuple[str, ...] = ("acquisition", "growth", "maturity", "decline", "lapsed")
_COLUMNS = ("tenure_days", "days_since_last", "n_purchases")


def _own_gap(table: pd.DataFrame) -> np.ndarray:
    """Mean days between purchase days (NaN for one-time buyers)."""
    tenure, silent, n = (values(table, c) for c in _COLUMNS)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 1, (tenure - silent) / (n - 1), np.nan)


class LifecycleStage(BaseEstimator):
    """Lifecycle stage per customer from tenure, activity trend, P(alive) and silence.

    Input columns: ``tenure_days``, ``days_since_last``, ``n_purchases``, ``trend_column``
    (default ``activity_trend``) and, optionally, ``probability_alive`` (0–1).

    Fitted: ``typical_gap_days_``, ``uses_probability_alive_`` (the training table had the
    column) and ``segment_sizes_`` (stage → training customers).
    """

    scheme = "lifecycle"
    label_column = "lifecycle_stage"

    def __init__(
        self,
        acquisition_days: float = 90.0,
        growth_trend: float = 1 / 3,
        decline_trend: float = -1 / 3,
        decline_alive: float = 0.5,
        lapsed_alive: float = 0.2,
        decline_gap_factor: float = 1.5,
        lapse_gap_factor: float = 3.0,
        trend_column: str = "activity_trend",
    ):
        self.acquisition_days = acquisition_days
        self.growth_trend = growth_trend
        self.decline_trend = decline_trend
        self.decline_alive = decline_alive
        self.lapsed_alive = lapsed_alive
        self.decline_gap_factor = decline_gap_factor
        self.lapse_gap_factor = lapse_gap_factor
        self.trend_column = trend_column

    def _check_settings(self) -> None:
        if not self.decline_trend < self.growth_trend:
            raise InvalidInputError("decline_trend must be below growth_trend", field="trend")
        if not 0.0 <= self.lapsed_alive <= self.decline_alive <= 1.0:
            raise InvalidInputError(
                "need 0 <= lapsed_alive <= decline_alive <= 1", field="lapsed_alive"
            )
        if not 0.0 < self.decline_gap_factor <= self.lapse_gap_factor:
            raise InvalidInputError(
                "need 0 < decline_gap_factor <= lapse_gap_factor", field="decline_gap_factor"
            )

    def fit(self, table: pd.DataFrame, y: Any = None) -> LifecycleStage:
        """Learn the population's typical gap between purchases; returns self."""
        check_not_empty(table, self)
        self._check_settings()
        require_columns(table, [*_COLUMNS, self.trend_column])
        gaps = _own_gap(table)
        gaps = gaps[np.isfinite(gaps) & (gaps > 0)]
        self.typical_gap_days_ = (
            float(np.median(gaps)) if len(gaps) else float(self.acquisition_days)
        )
        self.uses_probability_alive_ = bool(np.isfinite(values(table, "probability_alive")).any())
        self.segment_sizes_ = sizes(self.predict(table)["lifecycle_stage"], LIFECYCLE_STAGES)
        return self

    def predict(self, table: pd.DataFrame) -> pd.DataFrame:
        """Columns ``lifecycle_stage``, ``probability_alive`` (as given, NaN when absent),
        ``silence_ratio`` (days since last purchase / reference gap) and ``lifecycle_basis``
        (``"probability_alive"`` when P(alive) was given for the customer, else
        ``"recency"``).
        """
        check_fitted(self, "typical_gap_days_")
        require_columns(table, [*_COLUMNS, self.trend_column])
        tenure = values(table, "tenure_days")
        silent = values(table, "days_since_last")
        trend = np.nan_to_num(values(table, self.trend_column), nan=0.0)
        alive = values(table, "probability_alive")
        has_alive = np.isfinite(alive)
        gap = np.fmax(_own_gap(table), self.typical_gap_days_)  # fmax: NaN own gap → typical
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = silent / np.maximum(gap, 1e-9)
        ratio_f = np.nan_to_num(ratio, nan=np.inf)  # unknown last purchase → silent
        alive_f = np.where(has_alive, alive, 1.0)

        lapsed = (alive_f < self.lapsed_alive) | (ratio_f > self.lapse_gap_factor)
        acquisition = np.nan_to_num(tenure, nan=np.inf) < self.acquisition_days
        decline = (
            (alive_f < self.decline_alive)
            | (ratio_f > self.decline_gap_factor)
            | (trend <= self.decline_trend)
        )
        growth = trend >= self.growth_trend
        stage = np.select(
            [lapsed, acquisition, decline, growth],
            ["lapsed", "acquisition", "decline", "growth"],
            default="maturity",
        )
        return pd.DataFrame(
            {
                "lifecycle_stage": stage.astype(str),
                "probability_alive": alive,
                "silence_ratio": ratio,
                "lifecycle_basis": np.where(has_alive, "probability_alive", "recency"),
            },
            index=table.index,
        )
