"""The AHP-weighted value index: one 0–100 number per customer from several value indicators.

Indicators
----------
Each indicator is a numeric column of the per-customer table the segmentation model reads
(the summary of :func:`models.features.summarize`, ``probability_alive``, or a column of the
customer table such as a deposit balance), with a direction: ``"higher"`` (more is better)
or ``"lower"`` (less is better, e.g. days since the last purchase or a cost-income ratio).

Weights (analytic hierarchy process, Saaty 1980)
-----------------------------------------------
The user compares the indicators two by two on Saaty's 1–9 scale: ``a[i][j]`` says how much
more indicator ``i`` matters than indicator ``j`` (1 equal, 3 moderately, 5 strongly,
7 very strongly, 9 extremely more; 2, 4, 6, 8 in between; the reciprocals 1/3, 1/5, ... when
``j`` matters more). The matrix must be square, positive, reciprocal (``a[j][i] = 1/a[i][j]``
within 1 %) with ones on the diagonal and values from 1/9 to 9. The weights are its principal
eigenvector (normalised to sum to 1), and ``λmax`` its largest eigenvalue. The consistency
index is ``CI = (λmax − n) / (n − 1)`` and the consistency ratio ``CR = CI / RI(n)``, with
``RI`` Saaty's random index (:data:`RANDOM_INDEX`, the mean CI of random matrices of that
size). ``CR`` ≤ 0.1 is accepted; a larger one is refused with the judgement that departs
most from the weights it implies (the pair whose ``a[i][j]`` is furthest, on a log scale,
from ``w[i] / w[j]``), to revise first. Up to 2 indicators are always consistent.

Normalisation and the index
---------------------------
Each indicator becomes its percentile against the training customers (a sorted reference
sample of the training values is kept: ties count half, so values shared by many customers
rank together), reversed for ``"lower"``: a new customer is placed in the training
population, and an outlier counts as the top percentile, not as a multiple of the others.
The index is ``100 × Σ wᵢ · percentileᵢ``, in [0, 100].

Missing values: a customer without a value for some indicators is scored on the others, their
weights scaled up to sum to 1 (the index of a customer missing every indicator is missing).
At fit time a required indicator whose column is absent or holds no number is an error; an
``"optional"`` one (the default configuration's P(alive), which only exists with a CLV model)
is left out and the matrix reduced to the indicators kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from models._json import read_json_file
from models.exceptions import InvalidInputError
from models.segments.base import check_fitted, check_not_empty, mid_rank, reference_sample, values

__all__ = [
    "BANK_TEMPLATE",
    "CR_LIMIT",
    "DEFAULT_VALUE_INDEX",
    "RANDOM_INDEX",
    "VALUE_INDEX_COLUMN",
    "AHPWeights",
    "ValueIndex",
    "ahp_weights",
    "check_config",
    "load_value_index",
    "resolve_value_index",
]

# The output column of the index (0–100) in the segmentation model's predictions and in
# ``cvm score``; the nine-grid's own ``value_index`` (0–1) is another measure.
VALUE_INDEX_COLUMN = "ahp_value_index"

# Saaty's random index: the mean consistency index of random reciprocal matrices of size n.
RANDOM_INDEX: dict[int, float] = {
    1: 0.0,
    2: 0.0,
    3: 0.58,
    4: 0.90,
    5: 1.12,
    6: 1.24,
    7: 1.32,
    8: 1.41,
    9: 1.45,
    10: 1.49,
    11: 1.51,
    12: 1.48,
    13: 1.56,
    14: 1.57,
    15: 1.59,
}
CR_LIMIT = 0.1
RECIPROCAL_TOLERANCE = 0.01  # |a_ij · a_ji − 1| allowed (0.333 for 1/3 passes)
SCALE = (1 / 9, 9.0)
DIRECTIONS = ("higher", "lower")

BANK_TEMPLATE = Path(__file__).with_name("value_index_bank.json")

# The index for the product's own data, used when no configuration is given: value to date,
# purchase frequency, recency, the chance the customer is still active, and tenure.
DEFAULT_VALUE_INDEX: dict[str, Any] = {
    "name": "default",
    "description": "Revenue to date, purchase days, days since the last purchase, P(alive) "
    "from the CLV model and tenure, from the per-customer summary.",
    "indicators": [
        {"column": "total_revenue", "direction": "higher", "label": "revenue to date"},
        {"column": "n_purchases", "direction": "higher", "label": "purchase days"},
        {"column": "days_since_last", "direction": "lower", "label": "days since last purchase"},
        {
            "column": "probability_alive",
            "direction": "higher",
            "label": "P(alive)",
            "optional": True,
        },
        {"column": "tenure_days", "direction": "higher", "label": "tenure (days)"},
    ],
    "comparisons": [
        [1, 2, 3, 2, 5],
        ["1/2", 1, 2, 1, 3],
        ["1/3", "1/2", 1, "1/2", 2],
        ["1/2", 1, 2, 1, 3],
        ["1/5", "1/3", "1/2", "1/3", 1],
    ],
}

_CONFIG_KEYS = {"name", "description", "indicators", "comparisons", "use_for_nine_grid"}
_INDICATOR_KEYS = {"column", "direction", "label", "optional"}


@dataclass(frozen=True)
class AHPWeights:
    """The priorities of a pairwise comparison matrix and its consistency."""

    matrix: np.ndarray
    weights: np.ndarray  # principal eigenvector, sums to 1
    lambda_max: float
    consistency_index: float
    consistency_ratio: float

    @property
    def consistent(self) -> bool:
        return self.consistency_ratio <= CR_LIMIT

    def deviations(self) -> np.ndarray:
        """|log(a_ij · w_j / w_i)|: how far each judgement is from the ratio the weights
        imply (0 for a perfectly consistent matrix)."""
        w = self.weights
        return np.abs(np.log(self.matrix * w[None, :] / w[:, None]))

    def most_inconsistent(self) -> tuple[int, int]:
        """(i, j), i < j: the judgement furthest from ``w_i / w_j``."""
        upper = np.triu(self.deviations(), k=1)
        i, j = np.unravel_index(int(np.argmax(upper)), upper.shape)
        return int(i), int(j)


def ahp_weights(matrix: Any) -> AHPWeights:
    """Weights, λmax, CI and CR of a square positive matrix (checked by :func:`_matrix`
    when it comes from a configuration; here only its shape and sign are checked)."""
    a = np.asarray(matrix, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise InvalidInputError("a pairwise comparison matrix must be square", field="comparisons")
    if not (np.isfinite(a).all() and (a > 0).all()):
        raise InvalidInputError(
            "a pairwise comparison matrix must hold positive numbers", field="comparisons"
        )
    n = a.shape[0]
    if n > max(RANDOM_INDEX):
        raise InvalidInputError(
            f"{n} indicators: the random index is tabulated up to {max(RANDOM_INDEX)}",
            field="comparisons",
        )
    eigenvalues, vectors = np.linalg.eig(a)
    k = int(np.argmax(eigenvalues.real))  # the Perron root of a positive matrix is real
    weights = np.abs(vectors[:, k].real)
    weights = weights / weights.sum()
    lambda_max = float(eigenvalues[k].real)
    ci = (lambda_max - n) / (n - 1) if n > 2 else 0.0
    ci = max(ci, 0.0)  # λmax ≥ n in exact arithmetic; rounding can give −1e-16
    cr = ci / RANDOM_INDEX[n] if RANDOM_INDEX[n] > 0 else 0.0
    return AHPWeights(a, weights, lambda_max, ci, cr)


def _number(value: Any, where: str, source: str) -> float:
    """A judgement: a number, or a fraction written as text ("1/3")."""
    if isinstance(value, str):
        try:
            return float(Fraction(value.strip()))
        except (ValueError, ZeroDivisionError):
            pass
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise InvalidInputError(
        f'{source}: {where} must be a number or a fraction such as "1/3", got {value!r}',
        field=where,
    )


def _show(value: float) -> str:
    """A judgement as people write it: 3, 1/3, 0.45."""
    if value >= 1 and float(value).is_integer():
        return str(int(value))
    inverse = 1 / value
    if abs(inverse - round(inverse)) < 1e-3:
        return f"1/{round(inverse)}"
    return f"{value:.3g}"


def _matrix(raw: Any, columns: list[str], source: str) -> np.ndarray:
    """The comparisons of ``columns`` checked: square, one row per indicator, positive, on
    Saaty's scale, ones on the diagonal, reciprocal."""
    n = len(columns)
    if not isinstance(raw, list) or len(raw) != n:
        got = len(raw) if isinstance(raw, list) else type(raw).__name__
        raise InvalidInputError(
            f"{source}: comparisons must be a list of {n} rows, one per indicator "
            f"({', '.join(columns)}), got {got}",
            field="comparisons",
        )
    a = np.ones((n, n))
    for i, row in enumerate(raw):
        if not isinstance(row, list) or len(row) != n:
            got = len(row) if isinstance(row, list) else type(row).__name__
            raise InvalidInputError(
                f"{source}: comparisons row {i + 1} ({columns[i]}) must hold {n} values, "
                f"got {got}: the matrix is square, one row and one column per indicator",
                field=f"comparisons[{i}]",
            )
        for j, value in enumerate(row):
            a[i, j] = _number(value, f"comparisons[{i}][{j}]", source)
    low, high = SCALE
    for i in range(n):
        if abs(a[i, i] - 1) > RECIPROCAL_TOLERANCE:
            raise InvalidInputError(
                f"{source}: comparisons[{i}][{i}] ({columns[i]} against itself) must be 1, "
                f"got {_show(a[i, i])}",
                field=f"comparisons[{i}][{i}]",
            )
        for j in range(n):
            if not low * (1 - RECIPROCAL_TOLERANCE) <= a[i, j] <= high * (1 + RECIPROCAL_TOLERANCE):
                raise InvalidInputError(
                    f"{source}: comparisons[{i}][{j}] ({columns[i]} against {columns[j]}) is "
                    f"{a[i, j]:g}: judgements go from 1/9 to 9 (Saaty's scale), and must be "
                    "positive",
                    field=f"comparisons[{i}][{j}]",
                )
    for i in range(n):
        for j in range(i + 1, n):
            if abs(a[i, j] * a[j, i] - 1) > RECIPROCAL_TOLERANCE:
                raise InvalidInputError(
                    f"{source}: comparisons[{i}][{j}] ({columns[i]} against {columns[j]}) is "
                    f"{_show(a[i, j])} but comparisons[{j}][{i}] is {_show(a[j, i])}: the "
                    f"matrix must be reciprocal, so comparisons[{j}][{i}] should be "
                    f"{_show(1 / a[i, j])}",
                    field=f"comparisons[{j}][{i}]",
                )
    return a


def _indicators(raw: Any, source: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise InvalidInputError(
            f"{source}: indicators must be a non-empty list of "
            '{"column": ..., "direction": "higher" or "lower"}',
            field="indicators",
        )
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for k, item in enumerate(raw):
        where = f"indicators[{k}]"
        if not isinstance(item, dict):
            raise InvalidInputError(
                f"{source}: {where} must be an object with column and direction", field=where
            )
        unknown = sorted(set(item) - _INDICATOR_KEYS)
        if unknown:
            raise InvalidInputError(
                f"{source}: {where} has unknown keys {', '.join(unknown)} (known: "
                f"{', '.join(sorted(_INDICATOR_KEYS))})",
                field=f"{where}.{unknown[0]}",
            )
        column = item.get("column")
        if not isinstance(column, str) or not column.strip():
            raise InvalidInputError(
                f"{source}: {where}.column must name a column, got {column!r}",
                field=f"{where}.column",
            )
        if column in seen:
            raise InvalidInputError(
                f"{source}: the column {column!r} is named by two indicators", field=where
            )
        seen.add(column)
        direction = item.get("direction", "higher")
        if direction not in DIRECTIONS:
            raise InvalidInputError(
                f'{source}: {where}.direction of {column!r} must be "higher" (more is '
                f'better) or "lower" (less is better), got {direction!r}',
                field=f"{where}.direction",
            )
        optional = item.get("optional", False)
        if not isinstance(optional, bool):
            raise InvalidInputError(
                f"{source}: {where}.optional must be true or false, got {optional!r}",
                field=f"{where}.optional",
            )
        label = item.get("label", column)
        out.append(
            {"column": column, "direction": direction, "label": str(label), "optional": optional}
        )
    return out


def check_config(config: Any, source: str = "value index") -> dict[str, Any]:
    """A value-index configuration checked (keys, indicators, comparisons, consistency) and
    normalised: indicators with every key, comparisons as numbers. ``source`` names it in
    the errors (the file)."""
    if not isinstance(config, dict):
        raise InvalidInputError(
            f"{source}: a value index configuration is a JSON object with indicators and "
            f"comparisons, got {type(config).__name__}",
            field="value_index",
        )
    unknown = sorted(set(config) - _CONFIG_KEYS)
    if unknown:
        raise InvalidInputError(
            f"{source}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(_CONFIG_KEYS))})",
            field=unknown[0],
        )
    indicators = _indicators(config.get("indicators"), source)
    columns = [item["column"] for item in indicators]
    matrix = _matrix(config.get("comparisons"), columns, source)
    use = config.get("use_for_nine_grid", False)
    if not isinstance(use, bool):
        raise InvalidInputError(
            f"{source}: use_for_nine_grid must be true or false, got {use!r}",
            field="use_for_nine_grid",
        )
    checked = {
        "name": str(config.get("name", source)),
        "description": str(config.get("description", "")),
        "indicators": indicators,
        "comparisons": matrix.tolist(),
        "use_for_nine_grid": use,
    }
    _consistent(ahp_weights(matrix), indicators, source)
    return checked


def _consistent(result: AHPWeights, indicators: list[dict[str, Any]], source: str) -> None:
    """Raise when CR > 0.1, naming the judgement to revise first."""
    if result.consistent:
        return
    i, j = result.most_inconsistent()
    a, b = indicators[i]["column"], indicators[j]["column"]
    implied = result.weights[i] / result.weights[j]
    n = len(indicators)
    raise InvalidInputError(
        f"{source}: the pairwise comparisons are not consistent enough: CR "
        f"{result.consistency_ratio:.3f} > {CR_LIMIT} (λmax {result.lambda_max:.3f} for {n} "
        f"indicators, CI {result.consistency_index:.3f}, RI {RANDOM_INDEX[n]}). The most "
        f"inconsistent judgement is {a} against {b} (comparisons[{i}][{j}] = "
        f"{_show(result.matrix[i, j])}), while the other judgements imply about {implied:.2f}: "
        f"revise it (and comparisons[{j}][{i}], its reciprocal) first.",
        field=f"comparisons[{i}][{j}]",
    )


def load_value_index(path: str | Path) -> dict[str, Any]:
    """The checked configuration of a JSON file (see :data:`BANK_TEMPLATE` for the form)."""
    return check_config(read_json_file(path, "value index file"), source=str(path))


def resolve_value_index(spec: str | Path | Mapping[str, Any] | None) -> dict[str, Any]:
    """The configuration a training setting names: ``None`` → :data:`DEFAULT_VALUE_INDEX`,
    ``"bank"`` → the shipped bank template, another string or path → that JSON file, a
    mapping → itself (inline); always checked."""
    if spec is None:
        return check_config(DEFAULT_VALUE_INDEX, source="the default value index")
    if isinstance(spec, Mapping):
        return check_config(dict(spec), source=str(spec.get("name", "value_index")))
    if str(spec) == "bank":
        return load_value_index(BANK_TEMPLATE)
    return load_value_index(spec)


class ValueIndex(BaseEstimator):
    """AHP-weighted value index (0–100) over configurable indicators (module docs).

    - ``indicators``: ``[{"column", "direction", "label", "optional"}]`` (``direction``
      ``"higher"`` or ``"lower"``; ``label`` for people; ``optional``: left out at fit time
      when the column has no data). ``None``: :data:`DEFAULT_VALUE_INDEX`.
    - ``comparisons``: the n × n Saaty matrix, rows and columns in the order of
      ``indicators`` (numbers or fractions as text, ``"1/3"``).
    - ``name``: what the configuration is called (in errors and in the run).

    Fitted: ``columns_``, ``directions_``, ``labels_``, ``weights_`` (sum 1, in the order of
    ``columns_``), ``lambda_max_``, ``consistency_index_``, ``consistency_ratio_``,
    ``references_`` (sorted training values per column), ``dropped_`` (optional indicators
    left out) and ``incomplete_share_`` (training customers missing some indicator).
    """

    def __init__(
        self,
        indicators: list[dict[str, Any]] | None = None,
        comparisons: list[list[Any]] | None = None,
        name: str | None = None,
    ):
        self.indicators = indicators
        self.comparisons = comparisons
        self.name = name

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any] | None, source: str = "value index"
    ) -> ValueIndex:
        """An unfitted index from a configuration (``None``: the default), checked."""
        checked = check_config(dict(config if config is not None else DEFAULT_VALUE_INDEX), source)
        return cls(
            indicators=checked["indicators"],
            comparisons=checked["comparisons"],
            name=checked["name"],
        )

    def _config(self) -> dict[str, Any]:
        if self.indicators is None and self.comparisons is None:
            return check_config(DEFAULT_VALUE_INDEX, source="the default value index")
        source = self.name or "value index"
        return check_config(
            {"indicators": self.indicators, "comparisons": self.comparisons, "name": source},
            source,
        )

    def fit(self, table: pd.DataFrame, y: Any = None) -> ValueIndex:
        """Weights from the comparisons; percentile references from ``table``; returns self."""
        check_not_empty(table, self)
        config = self._config()
        source = config["name"]
        indicators = config["indicators"]
        keep, dropped = [], []
        for k, item in enumerate(indicators):
            column = item["column"]
            has_data = column in table.columns and np.isfinite(values(table, column)).any()
            if has_data:
                keep.append(k)
            elif item["optional"]:
                dropped.append(column)
            else:
                said = "holds no number" if column in table.columns else "is not in the data"
                shown = sorted(str(c) for c in table.columns)
                raise InvalidInputError(
                    f"value index {source!r}: the indicator column {column!r} {said} "
                    f"({len(table):,} customers; columns: {', '.join(shown[:40])}"
                    f"{' ...' if len(shown) > 40 else ''}); add it to the customer table or "
                    'mark the indicator "optional": true',
                    field=column,
                )
        matrix = np.asarray(config["comparisons"], dtype=float)[np.ix_(keep, keep)]
        result = ahp_weights(matrix)
        kept = [indicators[k] for k in keep]
        _consistent(result, kept, source)
        self.columns_ = [item["column"] for item in kept]
        self.directions_ = [item["direction"] for item in kept]
        self.labels_ = [item["label"] for item in kept]
        self.weights_ = [float(w) for w in result.weights]
        self.lambda_max_ = result.lambda_max
        self.consistency_index_ = result.consistency_index
        self.consistency_ratio_ = result.consistency_ratio
        self.dropped_ = dropped
        self.name_ = source
        self.references_ = [reference_sample(values(table, c)) for c in self.columns_]
        present = np.column_stack([np.isfinite(values(table, c)) for c in self.columns_])
        self.incomplete_share_ = float(1 - present.all(axis=1).mean())
        return self

    @property
    def weights(self) -> dict[str, float]:
        """``{column: weight}`` of the fitted index."""
        check_fitted(self, "weights_")
        return dict(zip(self.columns_, self.weights_, strict=True))

    def percentiles_of(self, column_values: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """(n × indicators) percentiles in [0, 1], "lower is better" reversed, NaN where a
        value is missing; ``column_values``: column → float array (an absent column is all
        missing). The one computation the pandas and the column-wise paths share."""
        check_fitted(self, "weights_")
        out = np.empty((n, len(self.columns_)))
        for k, (column, reference, direction) in enumerate(
            zip(self.columns_, self.references_, self.directions_, strict=True)
        ):
            raw = column_values.get(column)
            x = np.full(n, np.nan) if raw is None else np.asarray(raw, dtype=float)
            rank = mid_rank(reference, x)
            out[:, k] = 1.0 - rank if direction == "lower" else rank
        return out

    def index_of(self, column_values: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """The index (0–100) of n customers; missing values as in the module docs."""
        ranks = self.percentiles_of(column_values, n)
        weights = np.broadcast_to(np.asarray(self.weights_), ranks.shape)
        present = np.isfinite(ranks)
        weight_sum = np.where(present, weights, 0.0).sum(axis=1)
        weighted = np.where(present, ranks * weights, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(weight_sum > 0, 100.0 * weighted / weight_sum, np.nan)

    def percentiles(self, table: pd.DataFrame) -> pd.DataFrame:
        """Each indicator's percentile (0–1, higher is better) per customer: what the index
        is made of."""
        ranks = self.percentiles_of({c: values(table, c) for c in self.columns_}, len(table))
        return pd.DataFrame(ranks, columns=self.columns_, index=table.index)

    def predict(self, table: pd.DataFrame) -> pd.DataFrame:
        """Column :data:`VALUE_INDEX_COLUMN`: the index, 0–100 (NaN: no indicator known)."""
        check_fitted(self, "weights_")
        index = self.index_of({c: values(table, c) for c in self.columns_}, len(table))
        return pd.DataFrame({VALUE_INDEX_COLUMN: index}, index=table.index)
