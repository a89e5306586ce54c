"""Early-warning rules: readable, configurable thresholds on churn features.

A rule is ``{"name", "label", "feature", "op", "value"}``: the customer is flagged when
``feature op value`` holds (``op`` one of ``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``,
``in``). A missing feature value never raises a flag. The default rules work on
:func:`models.churn.features.churn_features` columns; a team can pass its own list, or a
JSON file of that list (:func:`load_rules`), e.g. a low-balance rule on a ``balance`` column.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.exceptions import InvalidInputError

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class Rule:
    """``feature op value`` flags the customer; ``label`` is what a retention team reads."""

    name: str
    label: str
    feature: str
    op: str
    value: Any

    def __post_init__(self) -> None:
        if self.op not in _OPS and self.op != "in":
            raise InvalidInputError(f"rule '{self.name}': unknown op '{self.op}'", field="op")
        if not self.name or not self.feature:
            raise InvalidInputError("a rule needs a name and a feature", field="name")

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Rule:
        missing = [k for k in ("name", "feature", "op", "value") if k not in spec]
        if missing:
            raise InvalidInputError(f"rule lacks '{missing[0]}'", field=missing[0])
        return cls(
            name=str(spec["name"]),
            label=str(spec.get("label", spec["name"])),
            feature=str(spec["feature"]),
            op=str(spec["op"]),
            value=spec["value"],
        )

    def evaluate(self, features: pd.DataFrame) -> np.ndarray:
        """Boolean flags, one per row of ``features`` (False where the feature is missing)."""
        if self.feature not in features.columns:
            return np.zeros(len(features), dtype=bool)
        column = features[self.feature]
        if self.op == "in":
            values = self.value if isinstance(self.value, list | tuple | set) else [self.value]
            return column.isin(list(values)).to_numpy(dtype=bool)
        if isinstance(self.value, int | float) and not isinstance(self.value, bool):
            numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
            with np.errstate(invalid="ignore"):
                flags = _OPS[self.op](numbers, float(self.value))
            return np.asarray(flags, dtype=bool) & np.isfinite(numbers)
        flags = _OPS[self.op](column.astype("string"), str(self.value))
        return flags.fillna(False).to_numpy(dtype=bool)


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(
        "spend_drop",
        "Spend in the last 3 months down more than 30% on the 3 months before",
        "spend_change",
        "<",
        -0.30,
    ),
    Rule(
        "overdue",
        "No purchase for more than twice the customer's usual gap between purchases",
        "gap_ratio",
        ">",
        2.0,
    ),
    Rule("unresolved_complaint", "Unresolved complaint", "unresolved_complaints", ">", 0),
    Rule(
        "usage_drop",
        "Purchase days in the last 3 months at most a third of the 3 months before",
        "activity_trend",
        "<=",
        -0.5,
    ),
)


def load_rules(source: str | Path | Iterable[Mapping[str, Any] | Rule]) -> list[Rule]:
    """Rules from a JSON file (a list of rule objects) or from a list of dicts / Rules."""
    if isinstance(source, str | Path):
        try:
            specs = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidInputError(
                f"cannot read rules from {source}: {exc}", field="rules"
            ) from exc
        if not isinstance(specs, list):
            raise InvalidInputError("a rules file holds a JSON list of rules", field="rules")
        source = specs
    rules = [r if isinstance(r, Rule) else Rule.from_dict(r) for r in source]
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise InvalidInputError("rule names must be unique", field="rules")
    return rules


def early_warnings(
    features: pd.DataFrame, rules: Iterable[Mapping[str, Any] | Rule] | None = None
) -> pd.DataFrame:
    """Alert flags per customer (rows of ``features``, same index).

    Columns: one boolean column per rule (its name), ``n_alerts``, and ``alerts`` (the
    labels of the rules that fired, a list per customer). Rules on a feature absent from
    ``features`` never fire; their names are in ``attrs["unavailable_rules"]``.
    """
    chosen = list(DEFAULT_RULES) if rules is None else load_rules(rules)
    flags = pd.DataFrame(
        {rule.name: rule.evaluate(features) for rule in chosen}, index=features.index
    )
    labels = np.array([rule.label for rule in chosen], dtype=object)
    matrix = flags.to_numpy(dtype=bool)
    flags["n_alerts"] = matrix.sum(axis=1).astype(int)
    flags["alerts"] = [labels[row].tolist() for row in matrix]
    flags.attrs["unavailable_rules"] = [r.name for r in chosen if r.feature not in features]
    return flags
