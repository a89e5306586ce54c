"""Customer migration between segments as a Markov chain, and customer equity from it.

Dwyer's customer migration model treats a customer who stops buying for a while as moved
to another state, not lost; Pfeifer & Carraway (2000, "Modeling customer relationships as
Markov chains", J. Interactive Marketing) write it as a Markov chain. Here the states are
the labels of a segmentation scheme (RFM segment, value type, lifecycle stage, ...) at two
dates, one period apart:

- :class:`CustomerMigration` counts the customers going from each label at the first date
  to each label at the second (``counts_``) and row-normalises the counts into the
  one-period transition matrix ``P`` (``matrix_``);
- :meth:`CustomerMigration.distribution`: the expected number of customers in each state
  after t periods, ``n_t = n_0 · P^t``;
- :meth:`CustomerMigration.equity` (Pfeifer & Carraway): the expected discounted value of a
  customer by starting state over N periods, ``V = Σ_{t=0}^{N} (1 + d)^-t · P^t · R``
  (``R``: the reward of one period in each state, ``d``: the discount rate per period; the
  term t = 0 is the current period's reward); :meth:`CustomerMigration.base_equity`: the
  customer base's expected equity, ``n_0 · V``.

States, in this fixed order: the labels in the order given (``states``; labels seen in the
data and not given are an error), then :data:`GONE`.

- :data:`GONE` ("(gone)"): a customer labelled at the first date and not at the second
  (left the data, or a churn date passed). It is a state of the chain with reward 0; its row
  is observed like any other, so it is absorbing ("lost for good") unless customers marked
  gone at the first date come back.
- :data:`NEW` ("(new)"): a customer labelled at the second date only (acquired during the
  period). It is the last row of ``counts_`` (where the new customers landed; their shares
  are ``entry_``) but not a state of the chain, which describes customers who already are
  customers.
- A state that no customer held at the first date has no observed row: the chain keeps its
  customers there (probability 1 of staying) and the state is listed in ``unobserved_``.

The two names carry parentheses so that no segment label (RFM has a ``new`` and a ``lost``
segment) can be taken for them.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from models.exceptions import InvalidInputError
from models.segments.base import check_fitted

GONE = "(gone)"
NEW = "(new)"


class CustomerMigration(BaseEstimator):
    """Transition counts and probabilities between the labels of two dates (see the module).

    ``states``: the segment labels in the order the tables show them (``None``: the labels
    seen, sorted). Fitted: ``states_`` (the labels, then :data:`GONE`), ``counts_`` (rows:
    ``states_`` then :data:`NEW`; columns: ``states_``; customers), ``matrix_`` (rows and
    columns ``states_``; each row sums to 1), ``entry_`` (the share of new customers landing
    in each state; NaN without new customers), ``unobserved_`` (states no customer held at
    the first date) and ``kept_share_`` (customers with the same label at both dates, as a
    share of the customers labelled at the first date).
    """

    def __init__(self, states: Iterable[Hashable] | None = None):
        self.states = states

    def fit(self, before: pd.Series, after: pd.Series) -> CustomerMigration:
        """``before`` and ``after``: each customer's label at the two dates, indexed by
        customer id (a missing label, or a customer absent from one of them, is no label).
        Labels may be :data:`GONE` already at the first date. Returns self."""
        before, after = _labels(before, "before"), _labels(after, "after")
        states = self._state_order(before, after)
        ids = before.index.union(after.index)
        start = before.reindex(ids)
        end = after.reindex(ids)
        start = start.where(start.notna(), NEW)
        end = end.where(end.notna(), GONE)  # labelled before, not after: gone
        # a customer with neither label is not in either table (the union is of labelled ids)
        rows = [*states, NEW]
        table = pd.crosstab(
            pd.Categorical(start.to_numpy(dtype=object), categories=rows),
            pd.Categorical(end.to_numpy(dtype=object), categories=states),
            dropna=False,
        )
        counts = table.reindex(index=rows, columns=states, fill_value=0).astype(int)
        counts.index.name, counts.columns.name = "from_state", "to_state"
        square = counts.loc[states].to_numpy(dtype=float)
        held = square.sum(axis=1)
        matrix = np.where(held[:, None] > 0, square / np.where(held > 0, held, 1.0)[:, None], 0.0)
        unobserved = held == 0
        matrix[unobserved, np.flatnonzero(unobserved)] = 1.0  # nobody there: they would stay
        self.states_ = tuple(states)
        self.counts_ = counts
        self.matrix_ = pd.DataFrame(matrix, index=counts.index[:-1], columns=counts.columns)
        entered = counts.loc[NEW].to_numpy(dtype=float)
        self.entry_ = pd.Series(
            entered / entered.sum() if entered.sum() > 0 else np.full(len(states), np.nan),
            index=counts.columns,
            name="share",
        )
        self.unobserved_ = tuple(s for s, empty in zip(states, unobserved, strict=True) if empty)
        # of the customers with a segment label at the first date (GONE is last)
        labelled = held[:-1].sum()
        kept = np.trace(square[:-1, :-1])
        self.kept_share_ = float(kept / labelled) if labelled else math.nan
        return self

    def _state_order(self, before: pd.Series, after: pd.Series) -> list[Hashable]:
        seen = set(before.dropna()) | set(after.dropna())
        if NEW in seen:
            raise InvalidInputError(
                f"the label {NEW!r} means 'not yet a customer': leave the label out instead",
                field="labels",
            )
        seen.discard(GONE)
        if self.states is None:
            return [*sorted(seen, key=str), GONE]
        given = list(dict.fromkeys(self.states))
        for special in (GONE, NEW):
            if special in given:
                raise InvalidInputError(
                    f"states: {special!r} is added by the model; leave it out", field="states"
                )
        unknown = sorted(seen - set(given), key=str)
        if unknown:
            counts = pd.concat([before, after]).value_counts()
            listed = ", ".join(f"{label!r} ({int(counts[label]):,})" for label in unknown[:10])
            raise InvalidInputError(
                f"{len(unknown)} label(s) not among the states ({', '.join(map(str, given))}): "
                f"{listed} (times seen over both dates)",
                field="states",
            )
        return [*given, GONE]

    def rewards(self, reward: Mapping[Hashable, float] | pd.Series) -> np.ndarray:
        """The reward vector ``R`` in state order: one value per label (currency per
        customer per period); :data:`GONE` is 0 unless given."""
        check_fitted(self, "matrix_")
        given = dict(reward)
        given.setdefault(GONE, 0.0)
        missing = [s for s in self.states_ if s not in given]
        if missing:
            raise InvalidInputError(
                f"no reward for the state(s) {', '.join(map(str, missing))}", field="reward"
            )
        out = np.array([float(given[s]) for s in self.states_])
        if not np.isfinite(out).all():
            bad = [s for s, v in zip(self.states_, out, strict=True) if not math.isfinite(v)]
            raise InvalidInputError(
                f"the reward of {', '.join(map(str, bad))} is not a number", field="reward"
            )
        return out

    def equity(
        self,
        reward: Mapping[Hashable, float] | pd.Series,
        periods: int | None,
        discount_rate: float,
    ) -> pd.Series:
        """Expected discounted value of one customer by starting state (currency):
        ``Σ_{t=0}^{N} (1 + d)^-t · P^t · R`` with ``N = periods`` (``None``: the infinite
        horizon ``(I − P / (1 + d))^-1 · R``, for ``d`` > 0)."""
        check_fitted(self, "matrix_")
        values = discounted_value(
            self.matrix_.to_numpy(), self.rewards(reward), periods, discount_rate
        )
        return pd.Series(values, index=self.matrix_.index, name="equity")

    def distribution(
        self, start: Mapping[Hashable, float] | pd.Series, periods: int
    ) -> pd.DataFrame:
        """Expected customers in each state after t = 0 … ``periods`` periods from ``start``
        (customers by state; a state left out has none): rows t, columns the states."""
        check_fitted(self, "matrix_")
        n = self._start_vector(start)
        rows = [n]
        P = self.matrix_.to_numpy()
        for _ in range(_periods(periods)):
            rows.append(rows[-1] @ P)
        out = pd.DataFrame(rows, columns=self.matrix_.columns)
        out.index.name = "period"
        return out

    def base_equity(
        self,
        start: Mapping[Hashable, float] | pd.Series,
        reward: Mapping[Hashable, float] | pd.Series,
        periods: int | None,
        discount_rate: float,
    ) -> float:
        """Expected equity of a customer base with ``start`` customers by state: ``n_0 · V``
        (currency)."""
        value = self.equity(reward, periods, discount_rate).to_numpy()
        return float(self._start_vector(start) @ value)

    def _start_vector(self, start: Mapping[Hashable, float] | pd.Series) -> np.ndarray:
        given = dict(start)
        unknown = [s for s in given if s not in self.states_]
        if unknown:
            raise InvalidInputError(
                f"start: unknown state(s) {', '.join(map(str, unknown))}; the states are "
                f"{', '.join(map(str, self.states_))}",
                field="start",
            )
        out = np.array([float(given.get(s, 0.0)) for s in self.states_])
        if not (np.isfinite(out).all() and (out >= 0).all()):
            raise InvalidInputError("start: customers must be numbers >= 0", field="start")
        return out

    def transitions(self) -> pd.DataFrame:
        """The counts and probabilities in long form: ``from_state``, ``to_state``,
        ``customers``, ``probability`` (NaN on the :data:`NEW` row: not a state)."""
        check_fitted(self, "matrix_")
        counts = self.counts_
        rows, columns = counts.shape
        return pd.DataFrame(
            {
                "from_state": np.repeat(np.asarray(counts.index, dtype=object), columns),
                "to_state": np.tile(np.asarray(counts.columns, dtype=object), rows),
                "customers": counts.to_numpy().ravel(),
                "probability": self.matrix_.reindex(index=counts.index).to_numpy().ravel(),
            }
        )


def discounted_value(
    matrix: Any, reward: Any, periods: int | None, discount_rate: float
) -> np.ndarray:
    """``Σ_{t=0}^{N} (1 + d)^-t · P^t · R`` (Pfeifer & Carraway): the expected discounted
    reward by starting state over N periods after the current one; ``periods=None``: the
    infinite horizon ``(I − P / (1 + d))^-1 · R`` (needs ``d`` > 0)."""
    P = np.asarray(matrix, dtype=float)
    R = np.asarray(reward, dtype=float)
    if P.ndim != 2 or P.shape[0] != P.shape[1] or R.shape != (P.shape[0],):
        raise InvalidInputError(
            f"the transition matrix must be square and the reward one value per state "
            f"(got {P.shape} and {R.shape})",
            field="matrix",
        )
    if not (np.isfinite(P).all() and (P >= 0).all() and np.allclose(P.sum(axis=1), 1.0)):
        raise InvalidInputError(
            "each row of the transition matrix must be probabilities summing to 1",
            field="matrix",
        )
    if not (math.isfinite(discount_rate) and discount_rate >= 0):
        raise InvalidInputError(
            f"the discount rate must be a number >= 0 (got {discount_rate})",
            field="discount_rate",
        )
    factor = 1.0 / (1.0 + discount_rate)
    if periods is None:
        if discount_rate <= 0:
            raise InvalidInputError(
                "the infinite horizon needs a discount rate > 0", field="discount_rate"
            )
        return np.linalg.solve(np.eye(len(R)) - factor * P, R)
    term = R.copy()  # t = 0: the current period's reward
    value = term.copy()
    for _ in range(_periods(periods)):
        term = factor * (P @ term)  # (1 + d)^-t · P^t · R from the term before
        value += term
    return value


def per_period_rate(annual_rate: float, period_days: float) -> float:
    """The discount rate of a period of ``period_days`` days equivalent to ``annual_rate``
    (compounded: ``(1 + annual)^(days / 365.25) − 1``)."""
    if not (math.isfinite(annual_rate) and annual_rate >= 0):
        raise InvalidInputError(
            f"the discount rate must be a number >= 0 (got {annual_rate})", field="discount_rate"
        )
    return float((1.0 + annual_rate) ** (period_days / 365.25) - 1.0)


def state_rewards(labels: pd.Series, value: pd.Series, states: Iterable[Hashable]) -> pd.Series:
    """Mean ``value`` per customer by label (``labels`` and ``value`` indexed by customer id;
    a customer without a value counts 0), for every state of ``states`` (0 for a state no
    customer holds and for :data:`GONE`)."""
    labelled = labels.dropna()
    amounts = value.reindex(labelled.index).fillna(0.0).astype(float)
    means = amounts.groupby(labelled.to_numpy(dtype=object)).mean()
    out = pd.Series({s: float(means.get(s, 0.0)) for s in states}, name="reward")
    if GONE in out.index:
        out[GONE] = 0.0
    return out


def _labels(labels: pd.Series, name: str) -> pd.Series:
    if not isinstance(labels, pd.Series):
        raise InvalidInputError(f"{name}: a Series of labels by customer id", field=name)
    if labels.index.has_duplicates:
        repeated = labels.index[labels.index.duplicated()].unique()
        raise InvalidInputError(
            f"{name}: {len(repeated):,} customer id(s) appear more than once, e.g. "
            f"{', '.join(map(str, repeated[:5]))}",
            field=name,
        )
    return labels.astype(object).where(labels.notna()).dropna()


def _periods(periods: int) -> int:
    if isinstance(periods, bool) or not isinstance(periods, int | np.integer) or periods < 0:
        raise InvalidInputError(
            f"periods must be a whole number >= 0 (got {periods!r})", field="periods"
        )
    return int(periods)


__all__ = [
    "GONE",
    "NEW",
    "CustomerMigration",
    "discounted_value",
    "per_period_rate",
    "state_rewards",
]
