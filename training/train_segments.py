"""Segmentation training: every scheme, ids matched to the champion's, sizes, profiles, plots."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from models.segments.bundle import CustomerSegments  # noqa: E402
from training.evaluate import finish  # noqa: E402


@dataclass
class SegmentTraining:
    model: CustomerSegments
    labels: pd.DataFrame
    metrics: dict[str, float] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)


def train_segments(
    table: pd.DataFrame,
    *,
    previous: CustomerSegments | None = None,
    margin: float | None = None,
    horizon_days: float = 365.0,
) -> SegmentTraining:
    """Fit all schemes on ``table`` (summary + the CLV model's probability_alive and
    expected_purchases over ``horizon_days``); match cluster ids to ``previous`` (the
    champion) when given."""
    reference = previous.clusters_.centroid_reference() if previous is not None else None
    model = CustomerSegments(
        cluster_reference=reference, margin=margin, horizon_days=horizon_days
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
    profiles = model.clusters_.profiles_.copy()
    return SegmentTraining(
        model=model,
        labels=labels,
        metrics=metrics,
        figures={
            "segments_silhouette.png": plot_silhouette(
                model.clusters_.silhouette_scores_, model.clusters_.n_clusters_
            ),
            "segments_rfm_heatmap.png": plot_rfm_heatmap(labels),
            "segments_value_matrix.png": plot_value_matrix(labels, model),
            "segments_nine_grid.png": plot_nine_grid(labels),
        },
        tables={"segment_cluster_profiles": profiles},
        texts={"segment_catalogue.json": json.dumps(model.catalogue(), indent=2, default=_plain)},
    )


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def plot_silhouette(scores: dict[int, float], chosen: int) -> Figure:
    fig, ax = plt.subplots(figsize=(6, 4))
    ks = sorted(scores)
    ax.plot(ks, [scores[k] for k in ks], "o-")
    ax.axvline(chosen, color="grey", linestyle=":", label=f"chosen K = {chosen}")
    return finish(fig, ax, "K (clusters)", "mean silhouette", legend=True)


def plot_rfm_heatmap(labels: pd.DataFrame) -> Figure:
    """Customers by R score × F score, annotated with counts and mean M score."""
    counts = pd.crosstab(labels["r_score"], labels["f_score"]).reindex(
        index=range(1, 6), columns=range(1, 6), fill_value=0
    )
    fig, ax = plt.subplots(figsize=(6, 5))
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
    fig, ax = plt.subplots(figsize=(6, 5))
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
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(counts.to_numpy(), origin="lower", cmap="Greens")
    for i in range(3):
        for j in range(3):
            ax.text(j, i, str(counts.to_numpy()[i, j]), ha="center", va="center")
    ax.set_xticks(range(3), labels=growth)
    ax.set_yticks(range(3), labels=tiers)
    return finish(fig, ax, "growth", "value")
