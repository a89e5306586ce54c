"""Why a customer is at risk: top drivers per scored customer, each with a churn type.

Attribution: for customer *x* and feature *j*, the contribution is the change in the model's
log-odds of churn when *x_j* is replaced by the feature's typical training value (median of a
numeric column, most frequent category), all else kept:
``c_j = score(x) − score(x with x_j := typical_j)``. A positive contribution raises the
risk. It is exact for the model (no surrogate), needs one batched prediction per feature
(vectorised: thousands of customers take a fraction of a second) and reads plainly: "had
this customer's value been typical, the log-odds would be lower by c_j".

Each feature maps to a readable name and one of the seven churn types through a
configurable table (:data:`DEFAULT_TYPES_PATH`, JSON): exact names first, then glob
patterns, then the default type.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.churn.encoding import frame_columns
from models.exceptions import InvalidInputError

CHURN_TYPES = ("product", "price", "service", "benefit", "management", "industry", "natural")
DEFAULT_TYPES_PATH = Path(__file__).with_name("churn_types.json")
_CHUNK_ROWS = 200_000  # rows per batched prediction


@dataclass(frozen=True)
class ChurnTypeTable:
    """Feature → (readable label, churn type)."""

    features: dict[str, dict[str, str]] = field(default_factory=dict)
    patterns: list[tuple[str, str]] = field(default_factory=list)
    default_type: str = "product"

    def __post_init__(self) -> None:
        types = [v.get("type", self.default_type) for v in self.features.values()]
        types += [t for _, t in self.patterns] + [self.default_type]
        unknown = sorted(set(types) - set(CHURN_TYPES))
        if unknown:
            raise InvalidInputError(
                f"unknown churn type '{unknown[0]}'; use one of {', '.join(CHURN_TYPES)}",
                field="type",
            )

    def churn_type(self, feature: str) -> str:
        if feature in self.features and "type" in self.features[feature]:
            return self.features[feature]["type"]
        lowered = feature.lower()
        for pattern, kind in self.patterns:
            if fnmatch.fnmatchcase(lowered, pattern.lower()):
                return kind
        return self.default_type

    def label(self, feature: str) -> str:
        if feature in self.features and "label" in self.features[feature]:
            return self.features[feature]["label"]
        return feature.replace("_", " ").strip().capitalize()


def load_churn_types(source: str | Path | dict[str, Any] | None = None) -> ChurnTypeTable:
    """The feature → type table from a JSON file or dict (default: ``churn_types.json``)."""
    if source is None:
        source = DEFAULT_TYPES_PATH
    if isinstance(source, str | Path):
        try:
            spec = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidInputError(f"cannot read churn types: {exc}", field="types") from exc
    else:
        spec = source
    return ChurnTypeTable(
        features={str(k): dict(v) for k, v in spec.get("features", {}).items()},
        patterns=[(str(p["match"]), str(p["type"])) for p in spec.get("patterns", [])],
        default_type=str(spec.get("default_type", "product")),
    )


def contributions(model: Any, X: Any) -> pd.DataFrame:
    """Per-customer log-odds contributions of every feature of a fitted ChurnClassifier.

    Rows follow ``X`` (its index when a DataFrame), columns ``model.feature_names_in_``;
    ignored columns and features at their typical value contribute 0.
    """
    return _contributions(model, X)[0]


def _encode(model: Any, X: Any) -> np.ndarray:
    """``model.encode(X)``, without pandas work per column for a DataFrame (same numbers)."""
    if (
        isinstance(X, pd.DataFrame)
        and hasattr(model, "predict_proba_columns")
        and not getattr(model, "fast_path_disabled_", None)
    ):
        return model.encoder_.transform_columns(frame_columns(X), len(X))
    return model.encode(X)


def _raw_score(model: Any, encoded: np.ndarray) -> np.ndarray:
    fast = getattr(model, "raw_score_fast", None)
    return fast(encoded) if fast is not None else model.raw_score(encoded)


def _contributions(model: Any, X: Any) -> tuple[pd.DataFrame, np.ndarray]:
    """(:func:`contributions`, the rows' raw log-odds)."""
    encoded = _encode(model, X)
    n, k = encoded.shape
    base = _raw_score(model, encoded)
    baseline = np.asarray(model.baseline_, dtype=float)
    out = np.zeros((n, k))
    active = [
        j
        for j, kind in enumerate(model.feature_kinds_)
        if kind != "ignored" and np.isfinite(baseline[j])
    ]
    per_chunk = max(1, _CHUNK_ROWS // max(n, 1))
    for start in range(0, len(active), per_chunk):
        block = active[start : start + per_chunk]
        stacked = np.repeat(encoded[None, :, :], len(block), axis=0)
        for b, j in enumerate(block):
            stacked[b, :, j] = baseline[j]
        scores = _raw_score(model, stacked.reshape(-1, k)).reshape(len(block), n)
        out[:, block] = (base[None, :] - scores).T
    index = X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(n)
    return pd.DataFrame(out, index=index, columns=list(model.feature_names_in_)), base


def _display(model: Any, X: Any, name: str, row: int) -> str:
    if isinstance(X, pd.DataFrame) and name in X.columns:
        value = X[name].iloc[row]
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            return "missing"
        if isinstance(value, float | np.floating):
            return f"{float(value):,.4g}"
        return str(value)
    return model.encoder_.decode(
        name, float(model.encode(X)[row, list(model.feature_names_in_).index(name)])
    )


def churn_reasons(
    model: Any,
    X: Any,
    *,
    top: int = 3,
    types: ChurnTypeTable | str | Path | dict[str, Any] | None = None,
    risk_raising_only: bool = False,
) -> pd.DataFrame:
    """Top drivers of churn risk per customer of ``X`` for a fitted ChurnClassifier.

    Drivers are the features with the largest contributions (:func:`contributions`), risk-
    raising ones first (largest first), then, if fewer than ``top`` raise the risk, the
    largest risk-lowering ones (skipped with ``risk_raising_only``).

    Columns (index of ``X``): ``churn_probability``; ``churn_type``, the type of the top
    risk-raising driver (None when nothing raises the risk); ``reasons``, a list of up to
    ``top`` dicts ``{feature, label, type, direction ("raises risk" / "lowers risk"), value,
    contribution}``; and ``reason_1`` … ``reason_<top>`` as readable text.
    """
    table = types if isinstance(types, ChurnTypeTable) else load_churn_types(types)
    if top < 1:
        raise InvalidInputError("top must be at least 1", field="top")
    contrib, base = _contributions(model, X)
    probability = model.probability_from_score(base)  # = predict_proba(X)[:, 1]
    names = np.array(contrib.columns, dtype=object)
    values = contrib.to_numpy()
    # risk-raising first by size, then risk-lowering by size; zero contributions never count
    key = np.where(values > 0, values, np.where(values < 0, -1e6 - values, -np.inf))
    order = np.argsort(-key, axis=1, kind="stable")[:, :top]
    records: list[list[dict[str, Any]]] = []
    churn_type: list[str | None] = []
    for i in range(len(values)):
        reasons: list[dict[str, Any]] = []
        for j in order[i]:
            c = float(values[i, j])
            if c == 0 or (risk_raising_only and c < 0):
                continue
            feature = str(names[j])
            reasons.append(
                {
                    "feature": feature,
                    "label": table.label(feature),
                    "type": table.churn_type(feature),
                    "direction": "raises risk" if c > 0 else "lowers risk",
                    "value": _display(model, X, feature, i),
                    "contribution": round(c, 4),
                }
            )
        records.append(reasons)
        churn_type.append(
            reasons[0]["type"] if reasons and reasons[0]["contribution"] > 0 else None
        )
    out = pd.DataFrame(
        {"churn_probability": probability, "churn_type": churn_type, "reasons": records},
        index=contrib.index,
    )
    for k in range(top):
        out[f"reason_{k + 1}"] = [
            f"{r[k]['label']} = {r[k]['value']} ({r[k]['direction']})" if len(r) > k else None
            for r in records
        ]
    return out
