"""A model version's input columns (its MLflow signature), compiled once for validation: the
model store builds one per loaded version (``LoadedModel.input_schema``) and
:mod:`service.mlflow_payload` checks scoring bodies against it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # MLflow's: double, float, long, integer, boolean, string, ...
    required: bool


class InputSchema:
    """A model version's input columns (its MLflow signature), compiled for validation; the
    model store builds one per loaded version (``LoadedModel.input_schema``)."""

    __slots__ = ("allowed", "columns", "getter", "names", "required")

    def __init__(self, columns: Sequence[Column]):
        self.columns = tuple(columns)
        names = self.names = tuple(c.name for c in self.columns)
        self.allowed = frozenset(names)
        self.required = frozenset(c.name for c in self.columns if c.required)
        # every column of a record, in order: one C-level call per row
        self.getter: Callable[[Any], tuple[Any, ...]] = (
            itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
        )

    @classmethod
    def from_mlflow(cls, spec: list[dict[str, Any]]) -> InputSchema:
        """From MLflow's ``Schema.to_dict()``; only named columns are served."""
        columns = []
        for i, col in enumerate(spec):
            if "name" not in col:
                raise ValueError(f"input column {i} has no name: only named columns are served")
            columns.append(Column(col["name"], str(col.get("type", "")), col.get("required", True)))
        return cls(columns)
