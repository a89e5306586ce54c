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
    most ``tolerance`` in the ``better`` direction: in the metric's units, or with
    ``relative`` a fraction of the champion's value (0.05: 5 % of it)."""

    metric: str
    better: str  # "higher" or "lower"
    tolerance: float
    relative: bool = False


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
    # Holdout metrics shown with the gate's verdict but not gated.
    gate_notes: tuple[str, ...] = ()
    # Required families are trained by every ``cvm train`` and must be loaded for the service
    # to be ready; an optional one (uplift) exists only when its data was given (campaign
    # history), and is served when registered.
    required: bool = True


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            name="segmentation",
            registered_name="cvm-segmentation",
            metric_prefixes=("segment_",),
            card_metrics=("segment_behaviour", "n_customers"),
            key_metrics=("n_customers", "segment_behaviour_silhouette"),
            # Both sides at the champion's K (see training.compare.holdout_metrics), with the
            # agreement of the two labelings (adjusted Rand index) shown beside it.
            gate=(GateMetric("segment_silhouette", "higher", 0.05),),
            gate_notes=(
                "segment_n_clusters",
                "segment_n_clusters_model",
                "segment_label_agreement",
            ),
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
            # The MAE is in repeat purchases per customer, whose scale depends on the
            # business: the allowance is relative to the champion's.
            gate=(GateMetric("clv_holdout_mae", "lower", 0.05, relative=True),),
        ),
        Family(
            name="uplift",
            registered_name="cvm-uplift",
            metric_prefixes=("uplift_",),
            card_metrics=("uplift_",),
            key_metrics=("uplift_qini", "uplift_auuc", "uplift_n_contacts"),
            # The Qini coefficient is in retained customers per contact (typically 0.01 to
            # 0.05 for a retention offer): half a hundredth is about its noise on a holdout
            # of a few thousand contacts.
            gate=(GateMetric("uplift_qini", "higher", 0.005),),
            required=False,
        ),
    )
}

# The families every training produces and the service needs to be ready.
REQUIRED_FAMILIES: tuple[str, ...] = tuple(f.name for f in FAMILIES.values() if f.required)
# The families trained only from extra data (``uplift``: from campaign history).
OPTIONAL_FAMILIES: tuple[str, ...] = tuple(f.name for f in FAMILIES.values() if not f.required)

# Family → registered model name, e.g. ``{"churn": "cvm-churn", ...}``.
REGISTERED_NAMES: dict[str, str] = {f.name: f.registered_name for f in FAMILIES.values()}


def metrics_by_family(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    """A run's flat metrics split by the family each belongs to (by its prefixes)."""
    return {
        name: {k: v for k, v in metrics.items() if k.startswith(family.metric_prefixes)}
        for name, family in FAMILIES.items()
    }


def mixed_as_of(as_of: dict[str, str | None]) -> str | None:
    """A warning when the families' as-of dates differ (their models then describe a
    customer at different dates: e.g. a churn model trained on this month's data beside a CLV
    model from last month's); None when they agree."""
    dates = {family: day for family, day in as_of.items() if day}
    if len(set(dates.values())) < 2:
        return None
    listed = ", ".join(f"{family} {day}" for family, day in sorted(dates.items()))
    return (
        f"the served champions were trained on data as of different dates ({listed}): "
        "their answers for one customer come from different data; retrain and promote the "
        "others to serve one date"
    )


__all__ = [
    "ALIASES",
    "CHALLENGER",
    "CHAMPION",
    "FAMILIES",
    "REGISTERED_NAMES",
    "Family",
    "GateMetric",
    "OPTIONAL_FAMILIES",
    "REQUIRED_FAMILIES",
    "metrics_by_family",
    "mixed_as_of",
]
