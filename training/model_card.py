"""A Markdown model card per registered model version: data window, metrics, segments, limits."""

from __future__ import annotations

from typing import Any

import numpy as np

from models.families import FAMILIES

LIMITS = {
    "clv": [
        "BG/NBD and Pareto/NBD assume purchases at a steady individual rate while the customer "
        "is alive and a single, permanent dropout: seasonality and campaigns are not modelled.",
        "Same-day purchases count as one (the CLV literature's convention).",
        "The 95 % CLV interval reflects parameter uncertainty only, not model misspecification.",
        "Without a cost column CLV is in revenue (margin 1.0) unless a margin is configured.",
    ],
    "churn": [
        "Labels come from a time split: churn means no purchase within the horizon, which "
        "for non-contractual customers is a proxy, not a cancellation.",
        "Customer-table attributes are a snapshot: attributes that changed after the "
        "feature cutoff (e.g. a later complaint) can leak into training. Columns that alone "
        "separate churners (out-of-fold AUC >= 0.95) are left out as probable leaks "
        "(churn_leaky_columns); subtler leaks are not detected.",
        "Probabilities are calibrated on the training window; re-check calibration after drift.",
    ],
    "segmentation": [
        "RFM scores and value-matrix thresholds are relative to the training population.",
        "Behaviour clusters are matched to the previous champion's by centroid; a cluster "
        "without a match gets a new id.",
    ],
}


def model_card(
    family: str, name: str, result: Any, data_fingerprint: str, commit: str | None
) -> str:
    """The card's Markdown text (the registry version number is on the version itself)."""
    params = result.params
    metrics = {
        k: v
        for k, v in sorted(result.metrics.items())
        if k.startswith(FAMILIES[family].card_metrics)
    }
    lines = [
        f"# Model card: {name}",
        "",
        "## Data",
        f"- as of: {params['as_of']}",
        f"- customers: {int(result.metrics.get('n_customers', 0)):,}; transactions: "
        f"{int(result.metrics.get('n_transactions', 0)):,}",
        f"- data fingerprint: `{data_fingerprint}`",
        f"- code version: `{commit or 'unknown'}`",
        "",
        "## Settings",
    ]
    lines += [
        f"- {k}: {v}"
        for k, v in sorted(params.items())
        if not k.startswith("clv_") or family == "clv"
    ]
    lines += ["", "## Holdout metrics", "", "| metric | value |", "|---|---|"]
    lines += [
        f"| {k} | {v:.4f} |" if np.isfinite(v) else f"| {k} | n/a |" for k, v in metrics.items()
    ]
    if family == "segmentation":
        lines += ["", "## Segment catalogue (customers at training time)"]
        for scheme, sizes in result.models["segmentation"].segment_sizes_.items():
            body = ", ".join(f"{label}: {size:,}" for label, size in sizes.items())
            lines.append(f"- **{scheme}**: {body}")
    lines += ["", "## Known limits"] + [f"- {text}" for text in LIMITS[family]]
    return "\n".join(lines) + "\n"
