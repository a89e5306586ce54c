"""The model families and what the product knows about each: registered name, registry
aliases, the metrics that belong to it, the ones the service shows, and the promotion gate.

The one home of these facts: training (registration, model cards, the gate) and the service
(model store, ``/v1/models``, admin routes) import them from here.
"""

from __future__ import annotations

from dataclasses import dataclass

# Registry aliases: what the service serves by default, and a trained version under review.
CHAMPION = "champion"
CHALLENGER = "challenger"
ALIASES: tuple[str, ...] = (CHAMPION, CHALLENGER)


@dataclass(frozen=True)
class GateMetric:
    """One metric of the promotion gate: the challenger may be worse than the champion by at
    most ``tolerance`` (absolute, in the metric's units) in the ``better`` direction."""

    metric: str
    better: str  # "higher" or "lower"
    tolerance: float


@dataclass(frozen=True)
class Family:
    """One model family: ``name`` (``churn``), ``registered_name`` (``cvm-churn``)."""

    name: str
    registered_name: str
    # The run's metrics that belong to this family (prefixes; the gate groups by them).
    metric_prefixes: tuple[str, ...]
    # The metrics its model card lists (prefixes).
    card_metrics: tuple[str, ...]
    # The metrics ``/v1/models`` shows for a served version.
    key_metrics: tuple[str, ...]
    # Holdout metrics compared by the champion/challenger gate.
    gate: tuple[GateMetric, ...]


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            name="segmentation",
            registered_name="cvm-segmentation",
            metric_prefixes=("segment_",),
            card_metrics=("segment_behaviour", "n_customers"),
            key_metrics=("n_customers", "segment_behaviour_silhouette"),
            gate=(GateMetric("segment_silhouette", "higher", 0.05),),
        ),
        Family(
            name="churn",
            registered_name="cvm-churn",
            metric_prefixes=("churn_",),
            card_metrics=("churn_",),
            key_metrics=("churn_roc_auc", "churn_pr_auc", "churn_brier", "churn_base_rate"),
            gate=(
                GateMetric("churn_roc_auc", "higher", 0.01),
                GateMetric("churn_brier", "lower", 0.005),
            ),
        ),
        Family(
            name="clv",
            registered_name="cvm-clv",
            metric_prefixes=("clv_",),
            card_metrics=("clv_",),
            key_metrics=("clv_holdout_mae", "clv_holdout_total_error_pct", "clv_mean"),
            gate=(GateMetric("clv_holdout_mae", "lower", 0.02),),
        ),
    )
}

# Family → registered model name, e.g. ``{"churn": "cvm-churn", ...}``.
REGISTERED_NAMES: dict[str, str] = {f.name: f.registered_name for f in FAMILIES.values()}


def metrics_by_family(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    """A run's flat metrics split by the family each belongs to (by its prefixes)."""
    return {
        name: {k: v for k, v in metrics.items() if k.startswith(family.metric_prefixes)}
        for name, family in FAMILIES.items()
    }


__all__ = [
    "ALIASES",
    "CHALLENGER",
    "CHAMPION",
    "FAMILIES",
    "REGISTERED_NAMES",
    "Family",
    "GateMetric",
    "metrics_by_family",
]
