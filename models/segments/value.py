"""Value schemes: the value matrix (four customer types) and the nine-grid.

Value matrix
------------
Profit per purchase × repeat purchases:

=================  ====================  ======================
                   few repeat purchases  many repeat purchases
=================  ====================  ======================
high profit/purch  ``meteor``        ``gold``
low profit/purch   ``burden``        ``stream``
=================  ====================  ======================

"Many" means ``frequency`` (repeat purchase days) ≥ ``repeat_threshold``; "high" means
``profit_per_purchase`` ≥ ``profit_threshold``. Unset thresholds are learned at fit time:
the profit threshold is the ``profit_quantile`` (default the median, the usual cut of a
2 × 2 value matrix) of the training customers' profit per purchase, the repeat threshold the
median repeat count of the customers who bought again (rounded up, at least 1). A customer
without a known cost (``profit_per_purchase`` missing, e.g. data without a cost column) is
valued at its own ``margin_rate`` × ``avg_order_value`` when the margin rate is given (a
summary sent without costs), else at ``margin`` × ``avg_order_value``, and the output says so
in ``value_basis``.

Nine-grid
---------
Value tier × growth tier, 3 × 3. Value is measured by revenue scale and profitability
together: the value index is the weighted mean of the customer's percentile ranks on
``value_weights`` (default total revenue and margin rate, equal weights) against the training
population; the value tiers cut it at its training terciles. Growth is the purchase-rate
trend (:func:`purchase_trend`, in [−1, 1]): the CLV model's expected purchases over its
horizon against the customer's own past rate over a period of that length. It exists for
every customer, silent ones included (their forecast falls with P(alive)); the growth tiers
cut it at its training terciles (``growth_quantiles``), so each tier holds about a third of
the training customers and "growing" reads "growing, or falling least, among these
customers". Fixed cuts (``growth_cuts``) and another measure (``growth_column``, e.g.
``spend_trend``, recent against earlier revenue) can be set instead. Models saved before
the purchase trend keep their measure, ``spend_trend`` at the fixed cuts −1/3 and +1/3, with
no spend in either trend window counted as declining. Each cell carries one of four
strategies: keep investing, develop deeper, adjust and optimise, planned exit
(:data:`DEFAULT_NINE_GRID_STRATEGIES`, replaceable). Other value indicators and weights go
in ``value_weights``; ``value_axis="ahp_value_index"`` measures value by the AHP value index
(:mod:`models.segments.value_index`) instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from models.exceptions import InvalidInputError
from models.segments.base import (
    check_fitted,
    check_not_empty,
    mid_rank,
    reference_sample,
    require_columns,
    sizes,
    values,
)

VALUE_TYPES: tuple[str, ...] = ("gold", "meteor", "stream", "burden")

VALUE_TIERS: tuple[str, ...] = ("low", "mid", "high")
GROWTH_TIERS: tuple[str, ...] = ("declining", "stable", "growing")
NINE_GRID_CELLS: tuple[str, ...] = tuple(
    f"{value}_value_{growth}" for value in reversed(VALUE_TIERS) for growth in GROWTH_TIERS
)
NINE_GRID_STRATEGIES: tuple[str, ...] = (
    "keep_investing",
    "develop_deeper",
    "adjust_and_optimise",
    "planned_exit",
)
DEFAULT_NINE_GRID_STRATEGIES: dict[str, str] = {
    "high_value_growing": "keep_investing",
    "high_value_stable": "keep_investing",
    "high_value_declining": "adjust_and_optimise",
    "mid_value_growing": "develop_deeper",
    "mid_value_stable": "develop_deeper",
    "mid_value_declining": "adjust_and_optimise",
    "low_value_growing": "develop_deeper",
    "low_value_stable": "adjust_and_optimise",
    "low_value_declining": "planned_exit",
}
DEFAULT_VALUE_WEIGHTS: dict[str, float] = {"total_revenue": 0.5, "margin_rate": 0.5}


def _repeat_purchases(table: pd.DataFrame) -> np.ndarray:
    """``frequency`` (repeat purchase days), else ``n_purchases`` − 1."""
    if "frequency" in table.columns:
        return values(table, "frequency")
    require_columns(table, ["frequency"] if "n_purchases" not in table.columns else [])
    return values(table, "n_purchases") - 1


def profit_per_purchase(
    column: Callable[[str], np.ndarray], margin: float
) -> tuple[np.ndarray, np.ndarray]:
    """(profit per purchase in currency, its basis) per customer; ``column(name)`` gives a
    float column (all NaN when absent). The value matrix's rule, shared by its column-wise
    twin (:mod:`models.fast_view`):

    - ``profit_per_purchase`` where known (from costs): basis ``"profit"``;
    - else the customer's own ``margin_rate`` × ``avg_order_value`` (a summary sent with a
      margin rate, e.g. to ``/invocations``): basis ``"profit"`` too, as purchases with costs
      at that margin would give;
    - else ``margin`` (the model's assumed margin) × ``avg_order_value``: ``"assumed_margin"``;
    - ``"missing"`` (valued low) when even the average order value is missing.
    """
    known = column("profit_per_purchase")
    order_value = column("avg_order_value")
    own = column("margin_rate") * order_value
    known = np.where(np.isfinite(known), known, own)
    has_cost = np.isfinite(known)
    assumed = margin * order_value
    profit = np.where(has_cost, known, assumed)
    basis = np.where(
        has_cost, "profit", np.where(np.isfinite(assumed), "assumed_margin", "missing")
    )
    return profit, basis


class ValueMatrix(BaseEstimator):
    """Gold / Meteor / Stream / Burden from profit per purchase × repeat purchases.

    Parameters (``None`` thresholds are learned at fit time, see the module docs):

    - ``profit_threshold``: profit per purchase (currency) from which a customer is "high".
    - ``repeat_threshold``: repeat purchases from which a customer buys "often".
    - ``profit_quantile``: the quantile of training profit per purchase used when
      ``profit_threshold`` is None (0.5 = median split).
    - ``margin``: margin assumed for customers without a known cost; ``None`` uses the
      margin observed over the training customers with costs, else 1.0 (revenue per
      purchase: with learned thresholds only the order of customers matters).

    Input columns: ``frequency`` (or ``n_purchases``), ``avg_order_value`` and, when the
    data had costs, ``profit_per_purchase`` (or the customer's ``margin_rate``: see
    :func:`profit_per_purchase`).

    Fitted: ``profit_threshold_``, ``repeat_threshold_``, ``margin_``, ``margin_source_``
    (``"configured"``, ``"data"`` or ``"none"``), ``value_basis_`` (``"profit"``,
    ``"assumed_margin"`` or ``"mixed"``: what the training customers were valued on) and
    ``segment_sizes_``.
    """

    scheme = "value_matrix"
    label_column = "value_type"

    def __init__(
        self,
        profit_threshold: float | None = None,
        repeat_threshold: float | None = None,
        profit_quantile: float = 0.5,
        margin: float | None = None,
    ):
        self.profit_threshold = profit_threshold
        self.repeat_threshold = repeat_threshold
        self.profit_quantile = profit_quantile
        self.margin = margin

    def _profit(self, table: pd.DataFrame, margin: float) -> tuple[np.ndarray, np.ndarray]:
        """Profit per purchase and its basis per customer (:func:`profit_per_purchase`)."""
        profit, basis = profit_per_purchase(lambda column: values(table, column), margin)
        if (basis != "profit").any():
            require_columns(table, ["avg_order_value"])
        return profit, basis

    def fit(self, table: pd.DataFrame, y: Any = None) -> ValueMatrix:
        """Learn the thresholds (unless configured) from the training customers; returns self."""
        check_not_empty(table, self)
        if not 0.0 < self.profit_quantile < 1.0:
            raise InvalidInputError("profit_quantile must be in (0, 1)", field="profit_quantile")
        repeats = _repeat_purchases(table)
        known = values(table, "profit_per_purchase")
        if self.margin is not None:
            self.margin_, self.margin_source_ = float(self.margin), "configured"
        elif np.isfinite(known).any():
            # Overall margin of the customers with costs: Σ profit / Σ revenue.
            profit_total = values(table, "total_profit")
            revenue_total = values(table, "total_revenue")
            if not np.isfinite(profit_total).any():  # per-purchase columns only
                profit_total, revenue_total = known, values(table, "avg_order_value")
            ok = np.isfinite(profit_total) & np.isfinite(revenue_total)
            self.margin_ = float(profit_total[ok].sum() / max(revenue_total[ok].sum(), 1e-12))
            self.margin_source_ = "data"
        else:
            self.margin_, self.margin_source_ = 1.0, "none"
        profit, basis = self._profit(table, self.margin_)
        if self.profit_threshold is not None:
            self.profit_threshold_ = float(self.profit_threshold)
        elif np.isfinite(profit).any():
            self.profit_threshold_ = float(np.nanquantile(profit, self.profit_quantile))
        else:
            raise InvalidInputError(
                "no customer has a profit per purchase or an average order value",
                field="avg_order_value",
            )
        if self.repeat_threshold is not None:
            self.repeat_threshold_ = float(self.repeat_threshold)
        else:
            repeaters = repeats[np.isfinite(repeats) & (repeats > 0)]
            median = float(np.median(repeaters)) if len(repeaters) else 1.0
            self.repeat_threshold_ = float(max(1, math.ceil(median)))
        used = set(basis[basis != "missing"].tolist())
        self.value_basis_ = used.pop() if len(used) == 1 else "mixed"
        self.segment_sizes_ = sizes(self._label(profit, repeats), VALUE_TYPES)
        return self

    def _label(self, profit: np.ndarray, repeats: np.ndarray) -> np.ndarray:
        high_value = np.nan_to_num(profit, nan=-np.inf) >= self.profit_threshold_
        often = np.nan_to_num(repeats, nan=0.0) >= self.repeat_threshold_
        return np.where(
            high_value, np.where(often, "gold", "meteor"), np.where(often, "stream", "burden")
        )

    def predict(self, table: pd.DataFrame) -> pd.DataFrame:
        """Columns ``profit_per_purchase`` (the value used, currency), ``repeat_purchases``,
        ``value_type`` (gold / meteor / stream / burden) and ``value_basis`` (``"profit"``
        from known costs, ``"assumed_margin"``, or ``"missing"`` → valued low).
        """
        check_fitted(self, "profit_threshold_")
        repeats = _repeat_purchases(table)
        profit, basis = self._profit(table, self.margin_)
        return pd.DataFrame(
            {
                "profit_per_purchase": profit,
                "repeat_purchases": repeats,
                "value_type": self._label(profit, repeats),
                "value_basis": basis,
            },
            index=table.index,
        )


def purchase_trend(
    expected_purchases: np.ndarray,
    n_purchases: np.ndarray,
    tenure_days: np.ndarray,
    horizon_days: float,
) -> np.ndarray:
    """The purchase-rate trend, in [−1, 1]: (expected − past) / (expected + past).

    ``expected``: the CLV model's expected purchases over the next ``horizon_days``;
    ``past``: the customer's own purchase days per period of the same length so far,
    ``n_purchases`` × ``horizon_days`` / max(``tenure_days``, ``horizon_days``) (a customer
    younger than one period: the purchases so far). 0 when both are 0; NaN where an input is
    missing. −1/3 means half the past rate is expected, +1/3 double.
    """
    horizon = float(horizon_days)
    expected = np.asarray(expected_purchases, dtype=float)
    past = np.asarray(n_purchases, dtype=float) * horizon / np.fmax(tenure_days, horizon)
    total = expected + past
    with np.errstate(invalid="ignore", divide="ignore"):
        trend = np.where(total > 0, (expected - past) / np.where(total > 0, total, 1.0), 0.0)
    return np.where(np.isnan(total), np.nan, trend)


# The growth measure computed from the CLV model's forecast (the default growth column).
PURCHASE_TREND = "purchase_trend"
PURCHASE_TREND_INPUTS: tuple[str, ...] = ("expected_purchases", "n_purchases", "tenure_days")


class NineGrid(BaseEstimator):
    """Value tier × growth tier (3 × 3) with a strategy per cell.

    - ``value_weights``: ``{column: weight}`` of the value index (percentile ranks against
      training); ``None`` = :data:`DEFAULT_VALUE_WEIGHTS`. Columns missing or all-missing at
      fit time are dropped (e.g. ``margin_rate`` without cost data); a customer missing
      some columns is ranked on the others.
    - ``value_cuts``: quantiles of the training value index separating low / mid / high.
    - ``growth_column``: the growth measure. ``"purchase_trend"`` (default) is
      :func:`purchase_trend` of the CLV model's ``expected_purchases`` (a column of the
      table, as ``probability_alive`` is) against the customer's past rate; any other name
      is a column of the table (e.g. ``spend_trend``, ``activity_trend``).
    - ``growth_cuts``: the two values of the measure separating declining / stable /
      growing (growing when ≥ the upper cut); ``None`` (default) learns them at fit time as
      the ``growth_quantiles`` of the training customers' measure (terciles by default).
    - ``strategies``: ``{cell: strategy}`` for all nine cells; ``None`` =
      :data:`DEFAULT_NINE_GRID_STRATEGIES`.
    - ``value_axis``: ``None`` (default) measures value by ``value_weights``; a column name
      measures it by that column alone, e.g. ``"ahp_value_index"``, the AHP value index
      (:mod:`models.segments.value_index`) that :class:`CustomerSegments` adds to the table.
    - ``horizon_days``: the CLV model's horizon, the period of ``expected_purchases``.

    Fitted: ``value_columns_``, ``value_weights_`` (normalised), ``references_`` (sorted
    training samples per value column), ``value_thresholds_`` (index values of the cuts),
    ``growth_thresholds_`` (measure values of the growth cuts), ``strategies_`` and
    ``segment_sizes_`` (cell → training customers).
    """

    scheme = "nine_grid"
    label_column = "nine_grid"

    def __init__(
        self,
        value_weights: dict[str, float] | None = None,
        value_cuts: tuple[float, float] = (1 / 3, 2 / 3),
        growth_column: str = PURCHASE_TREND,
        growth_cuts: tuple[float, float] | None = None,
        strategies: dict[str, str] | None = None,
        value_axis: str | None = None,
        growth_quantiles: tuple[float, float] = (1 / 3, 2 / 3),
        horizon_days: float = 365.0,
    ):
        self.value_weights = value_weights
        self.value_cuts = value_cuts
        self.growth_column = growth_column
        self.growth_cuts = growth_cuts
        self.strategies = strategies
        self.value_axis = value_axis
        self.growth_quantiles = growth_quantiles
        self.horizon_days = horizon_days

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("value_axis", None)  # models saved before it
        # Models saved before the growth cuts were learned: spend_trend at fixed cuts.
        self.__dict__.setdefault("growth_quantiles", (1 / 3, 2 / 3))
        self.__dict__.setdefault("horizon_days", 365.0)
        if "value_thresholds_" in self.__dict__ and "growth_thresholds_" not in self.__dict__:
            self.growth_thresholds_ = [float(c) for c in self.growth_cuts or (-1 / 3, 1 / 3)]

    def _check_settings(self) -> dict[str, str]:
        for name in ("value_cuts", "growth_cuts", "growth_quantiles"):
            cuts = getattr(self, name)
            if cuts is not None and not cuts[0] < cuts[1]:
                raise InvalidInputError(f"{name} must be increasing", field=name)
        for name in ("value_cuts", "growth_quantiles"):
            low, high = getattr(self, name)
            if not 0.0 < low < high < 1.0:
                raise InvalidInputError(f"{name} must be quantiles in (0, 1)", field=name)
        if not self.horizon_days > 0:
            raise InvalidInputError("horizon_days must be positive", field="horizon_days")
        strategies = dict(self.strategies or DEFAULT_NINE_GRID_STRATEGIES)
        missing = [cell for cell in NINE_GRID_CELLS if cell not in strategies]
        if missing:
            raise InvalidInputError(f"strategies lack the cell '{missing[0]}'", field="strategies")
        return strategies

    def _require_growth(self, table: pd.DataFrame) -> None:
        if self.growth_column != PURCHASE_TREND:
            require_columns(table, [self.growth_column])
            return
        for column in PURCHASE_TREND_INPUTS:
            if column not in table.columns:
                what = (
                    ": the CLV model's expected purchases over its horizon, added to the "
                    "summary as probability_alive is"
                    if column == "expected_purchases"
                    else ""
                )
                raise InvalidInputError(
                    f"the nine-grid's growth axis (the purchase trend) needs the column "
                    f"'{column}'{what}",
                    field=column,
                )

    def growth_measure(self, column: Callable[[str], np.ndarray]) -> np.ndarray:
        """The growth measure per customer; ``column(name)`` gives a float column."""
        if self.growth_column == PURCHASE_TREND:
            expected, count, tenure = (column(c) for c in PURCHASE_TREND_INPUTS)
            return purchase_trend(expected, count, tenure, self.horizon_days)
        return column(self.growth_column)

    def growth_tiers(self, column: Callable[[str], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(growth measure, growth tier as 0 declining / 1 stable / 2 growing); shared with
        the column-wise twin (:mod:`models.fast_view`). A missing measure is stable; with
        ``spend_trend`` no spend in either trend window is declining (the trend reads 0)."""
        growth = self.growth_measure(column)
        low, high = self.growth_thresholds_
        falling = growth < low
        if self.growth_column == "spend_trend":
            # No spend in either trend window: revenue has fallen to nothing, not "stable".
            falling |= (column("spend_recent") + column("spend_earlier")) == 0
        return growth, np.where(growth >= high, 2, np.where(falling, 0, 1))

    def fit(self, table: pd.DataFrame, y: Any = None) -> NineGrid:
        """Learn the value references and the value and growth thresholds; returns self."""
        check_not_empty(table, self)
        self.strategies_ = self._check_settings()
        self._require_growth(table)
        if self.value_axis is not None:
            require_columns(table, [self.value_axis])
            weights = {self.value_axis: 1.0}
        else:
            weights = dict(self.value_weights or DEFAULT_VALUE_WEIGHTS)
        if any(w < 0 for w in weights.values()):
            raise InvalidInputError("value_weights must be >= 0", field="value_weights")
        usable = {
            c: float(w) for c, w in weights.items() if w > 0 and np.isfinite(values(table, c)).any()
        }
        if not usable:
            raise InvalidInputError(
                f"none of the value columns {sorted(weights)} has data", field="value_weights"
            )
        total = sum(usable.values())
        self.value_columns_ = list(usable)
        self.value_weights_ = [usable[c] / total for c in self.value_columns_]
        self.references_ = [reference_sample(values(table, c)) for c in self.value_columns_]
        index = self._value_index(table)
        self.value_thresholds_ = [
            float(np.nanquantile(index, q)) if np.isfinite(index).any() else float(q)
            for q in self.value_cuts
        ]
        if self.growth_cuts is not None:
            self.growth_thresholds_ = [float(c) for c in self.growth_cuts]
        else:
            growth = self.growth_measure(lambda c: values(table, c))
            if not np.isfinite(growth).any():
                raise InvalidInputError(
                    f"no customer has a growth measure ({self.growth_column}) to learn the "
                    "growth tiers from",
                    field=self.growth_column,
                )
            self.growth_thresholds_ = [
                float(np.nanquantile(growth, q)) for q in self.growth_quantiles
            ]
        self.segment_sizes_ = sizes(self.predict(table)["nine_grid"], NINE_GRID_CELLS)
        return self

    def _value_index(self, table: pd.DataFrame) -> np.ndarray:
        ranks = np.column_stack(
            [
                mid_rank(ref, values(table, c))
                for c, ref in zip(self.value_columns_, self.references_, strict=True)
            ]
        )
        weights = np.broadcast_to(np.asarray(self.value_weights_), ranks.shape)
        present = np.isfinite(ranks)
        weight_sum = np.where(present, weights, 0.0).sum(axis=1)
        weighted = np.where(present, ranks * weights, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(weight_sum > 0, weighted / weight_sum, np.nan)

    def predict(self, table: pd.DataFrame) -> pd.DataFrame:
        """Columns ``value_index`` (0–1), ``value_tier`` (low / mid / high), ``growth_index``
        (the growth measure), ``growth_tier`` (declining / stable / growing), ``nine_grid``
        (``"<value>_value_<growth>"``) and ``nine_grid_strategy``.

        A customer with no value data is ranked low; a missing growth measure counts as
        stable (see :meth:`growth_tiers`).
        """
        check_fitted(self, "value_thresholds_")
        self._require_growth(table)
        index = self._value_index(table)
        low_cut, high_cut = self.value_thresholds_
        filled = np.nan_to_num(index, nan=-np.inf)
        value_tier = np.where(filled >= high_cut, "high", np.where(filled >= low_cut, "mid", "low"))
        growth, growth_at = self.growth_tiers(lambda c: values(table, c))
        growth_tier = np.asarray(GROWTH_TIERS)[growth_at]
        cells = np.char.add(np.char.add(value_tier.astype(str), "_value_"), growth_tier)
        kinds, at = np.unique(cells, return_inverse=True)
        strategy = np.array([self.strategies_[c] for c in kinds.tolist()], dtype=object)[at]
        return pd.DataFrame(
            {
                "value_index": index,
                "value_tier": value_tier,
                "growth_index": growth,
                "growth_tier": growth_tier,
                "nine_grid": cells.astype(str),
                "nine_grid_strategy": strategy.astype(str),
            },
            index=table.index,
        )
