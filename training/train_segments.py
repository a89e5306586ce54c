"""Segmentation training: every scheme, ids matched to the champion's, sizes, profiles, plots;
the AHP value index with its weights and consistency."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.churn.features import churn_features_from_summary
from models.exceptions import InvalidInputError
from models.segments.bundle import CustomerSegments
from models.segments.value_index import VALUE_INDEX_COLUMN, ValueIndex
from training.evaluate import finish, subplots


@dataclass
class SegmentTraining:
    model: CustomerSegments
    labels: pd.DataFrame
    metrics: dict[str, float] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


def value_index_columns(
    config: dict[str, Any], available: list[str], customers: pd.DataFrame | None
) -> list[str]:
    """The customer-table columns the value index ``config`` reads (those not in
    ``available``, the summary and P(alive)); a required indicator found in neither is an
    error now, before the models are fitted."""
    columns = set(customers.columns) if customers is not None else set()
    extra = []
    for item in config["indicators"]:
        column = item["column"]
        if column in available:
            continue
        if column in columns:
            extra.append(column)
        elif not item["optional"]:
            where = (
                "the customer table" if customers is not None else "the summary (no --customers)"
            )
            raise InvalidInputError(
                f"value index {config['name']!r}: the indicator column {column!r} is neither in "
                f"the per-customer summary nor in {where}; summary columns: "
                f"{', '.join(available)}"
                + (
                    f"; customer-table columns: {', '.join(map(str, customers.columns))}"
                    if customers is not None
                    else ""
                ),
                field=column,
            )
    return extra


def join_customer_columns(
    table: pd.DataFrame, customers: pd.DataFrame | None, columns: list[str], as_of: Any
) -> pd.DataFrame:
    """``table`` (the summary, indexed by customer id) with ``columns`` of the customer table
    as the served customer view reads them: through the churn features' attribute handling
    (last row per customer; complaint counts as of ``as_of``), so training and serving see
    the same values."""
    if not columns or customers is None:
        return table
    attributes = churn_features_from_summary(table, customers, as_of)
    joined = attributes.reindex(columns=columns).set_axis(table.index)
    return table.join(joined)


def train_segments(
    table: pd.DataFrame,
    *,
    previous: CustomerSegments | None = None,
    margin: float | None = None,
    value_index: dict[str, Any] | None = None,
    horizon_days: float = 365.0,
) -> SegmentTraining:
    """Fit all schemes on ``table`` (summary + the CLV model's probability_alive and
    expected_purchases over ``horizon_days``, + the customer columns the value index reads);
    match cluster ids to ``previous`` (the champion) when given. ``value_index``: the checked
    AHP configuration (None: the default)."""
    reference = previous.clusters_.centroid_reference() if previous is not None else None
    model = CustomerSegments(
        cluster_reference=reference,
        margin=margin,
        value_index=value_index,
        horizon_days=horizon_days,
    ).fit(table)
    labels = model.predict(table)
    n = len(table)
    metrics: dict[str, float] = {
        "segment_behaviour_k": float(model.clusters_.n_clusters_),
        "segment_behaviour_silhouette": float(model.clusters_.silhouette_),
    }
    # the nine-grid's growth cuts, learned on these customers (purchase trend, −1 to 1)
    low, high = model.nine_grid_.growth_thresholds_
    metrics["segment_nine_grid_growth_cut_low"] = float(low)
    metrics["segment_nine_grid_growth_cut_high"] = float(high)
    if previous is not None:  # share of customers keeping their cluster id across retrains
        before = previous.clusters_.predict(table)["cluster"].to_numpy()
        metrics["segment_behaviour_stability"] = float(
            np.mean(before == labels["cluster"].to_numpy())
        )
    for scheme, sizes in model.segment_sizes_.items():
        for label, size in sizes.items():
            metrics[f"segment_share_{scheme}_{label}"] = size / n
    index = model.value_index_
    metrics.update(value_index_metrics(index))
    profiles = model.clusters_.profiles_.copy()
    return SegmentTraining(
        model=model,
        labels=labels,
        metrics=metrics,
        params=value_index_params(index, model.nine_grid_.value_axis),
        figures={
            "segments_silhouette.png": plot_silhouette(
                model.clusters_.silhouette_scores_, model.clusters_.n_clusters_
            ),
            "segments_rfm_heatmap.png": plot_rfm_heatmap(labels),
            "segments_value_matrix.png": plot_value_matrix(labels, model),
            "segments_nine_grid.png": plot_nine_grid(labels),
            "segments_value_index.png": plot_value_index(labels[VALUE_INDEX_COLUMN], index),
        },
        tables={"segment_cluster_profiles": profiles},
        texts={
            "segment_catalogue.json": json.dumps(model.catalogue(), indent=2, default=_plain),
            "value_index.json": json.dumps(value_index_record(index), indent=2),
        },
    )


def _metric_name(column: str) -> str:
    """A column name as MLflow accepts it in a metric name."""
    return re.sub(r"[^0-9A-Za-z_\-. /]", "_", column)


def value_index_metrics(index: ValueIndex) -> dict[str, float]:
    """λmax, CI, CR, each weight, and the share of training customers missing an indicator."""
    out = {
        "segment_value_index_lambda_max": index.lambda_max_,
        "segment_value_index_consistency_index": index.consistency_index_,
        "segment_value_index_consistency_ratio": index.consistency_ratio_,
        "segment_value_index_incomplete_share": index.incomplete_share_,
    }
    for column, weight in index.weights.items():
        out[f"segment_value_index_weight_{_metric_name(column)}"] = weight
    return out


def value_index_params(index: ValueIndex, nine_grid_axis: str | None) -> dict[str, Any]:
    """The configuration of the run's value index, as MLflow params."""
    return {
        "value_index_name": index.name_,
        "value_index_weights": ",".join(f"{c}={w:.4f}" for c, w in index.weights.items()),
        "value_index_directions": ",".join(
            f"{c}:{d}" for c, d in zip(index.columns_, index.directions_, strict=True)
        ),
        "value_index_dropped": ",".join(index.dropped_) or "none",
        "value_index_nine_grid": nine_grid_axis == VALUE_INDEX_COLUMN,
    }


def value_index_record(index: ValueIndex) -> dict[str, Any]:
    """What the run keeps of the value index: its configuration, weights and consistency."""
    return {
        "name": index.name_,
        "indicators": [
            {"column": c, "label": label, "direction": d, "weight": w}
            for c, label, d, w in zip(
                index.columns_, index.labels_, index.directions_, index.weights_, strict=True
            )
        ],
        "dropped": index.dropped_,
        "comparisons": index.comparisons,
        "lambda_max": index.lambda_max_,
        "consistency_index": index.consistency_index_,
        "consistency_ratio": index.consistency_ratio_,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def plot_silhouette(scores: dict[int, float], chosen: int) -> Figure:
    fig, ax = subplots(figsize=(6, 4))
    ks = sorted(scores)
    ax.plot(ks, [scores[k] for k in ks], "o-")
    ax.axvline(chosen, color="grey", linestyle=":", label=f"chosen K = {chosen}")
    return finish(fig, ax, "K (clusters)", "mean silhouette", legend=True)


def plot_rfm_heatmap(labels: pd.DataFrame) -> Figure:
    """Customers by R score × F score, annotated with counts and mean M score."""
    counts = pd.crosstab(labels["r_score"], labels["f_score"]).reindex(
        index=range(1, 6), columns=range(1, 6), fill_value=0
    )
    fig, ax = subplots(figsize=(6, 5))
    image = ax.imshow(counts.to_numpy(), origin="lower", cmap="Blues")
    for r in range(5):
        for f in range(5):
            ax.text(f, r, str(counts.to_numpy()[r, f]), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(5), labels=[str(i) for i in range(1, 6)])
    ax.set_yticks(range(5), labels=[str(i) for i in range(1, 6)])
    fig.colorbar(image, ax=ax, label="customers")
    return finish(fig, ax, "F score", "R score")


# The value-matrix scatter draws at most this many customers (a random sample beyond).
SCATTER_POINTS = 20_000


def plot_value_matrix(labels: pd.DataFrame, model: CustomerSegments) -> Figure:
    fig, ax = subplots(figsize=(6, 5))
    rng = np.random.default_rng(0)
    if len(labels) > SCATTER_POINTS:
        labels = labels.iloc[np.sort(rng.choice(len(labels), SCATTER_POINTS, replace=False))]
    for value_type, group in labels.groupby("value_type"):
        jitter = rng.uniform(-0.3, 0.3, len(group))
        ax.scatter(
            group["repeat_purchases"] + jitter,
            group["profit_per_purchase"],
            s=4,
            alpha=0.5,
            label=value_type,
        )
    ax.axhline(model.value_matrix_.profit_threshold_, color="grey", linestyle=":")
    ax.axvline(model.value_matrix_.repeat_threshold_ - 0.5, color="grey", linestyle=":")
    return finish(
        fig, ax, "repeat purchases", "profit per purchase (currency)", legend={"markerscale": 4}
    )


def plot_nine_grid(labels: pd.DataFrame) -> Figure:
    tiers = ["low", "mid", "high"]
    growth = ["declining", "stable", "growing"]
    counts = pd.crosstab(labels["value_tier"], labels["growth_tier"]).reindex(
        index=tiers, columns=growth, fill_value=0
    )
    fig, ax = subplots(figsize=(6, 5))
    ax.imshow(counts.to_numpy(), origin="lower", cmap="Greens")
    for i in range(3):
        for j in range(3):
            ax.text(j, i, str(counts.to_numpy()[i, j]), ha="center", va="center")
    ax.set_xticks(range(3), labels=growth)
    ax.set_yticks(range(3), labels=tiers)
    return finish(fig, ax, "growth", "value")


def plot_value_index(index: pd.Series, model: ValueIndex) -> Figure:
    """The weights of the value index and the training customers' index values."""
    fig, (left, right) = subplots(1, 2, figsize=(10, 4))
    weights = model.weights
    left.barh(list(weights)[::-1], list(weights.values())[::-1])
    left.set_xlabel("AHP weight")
    left.set_title(f"CR {model.consistency_ratio_:.3f}")
    right.hist(index.dropna().to_numpy(dtype=float), bins=40, range=(0, 100))
    return finish(fig, right, "value index (0-100)", "customers")
