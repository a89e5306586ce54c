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
        # the calibration limit is written from the run: see calibration_lines
    ],
    "uplift": [
        "Learnt from randomised campaign history only: the control group must have been "
        "chosen at random within each campaign. Without randomisation the estimated effects "
        "mix the offer with whom it was sent to.",
        "Effects hold for customers, offers and channels like those of the campaigns learnt "
        "from; an offer not in the history has no estimate.",
        "The outcome is retention within the response window (a purchase): spend and margin "
        "are not modelled, and contacts whose window had not ended by as-of are left out.",
        "Per-customer effects are noisy estimates: rank customers by them (see the Qini "
        "coefficient), and measure a campaign against its own control group.",
    ],
    "segmentation": [
        "RFM scores and value-matrix thresholds are relative to the training population.",
        "Behaviour clusters are matched to the previous champion's by centroid; a cluster "
        "without a match gets a new id.",
    ],
}


_METHODS = {
    "sigmoid": "sigmoid (Platt scaling) on out-of-fold scores of the training window",
    "isotonic": "isotonic regression on out-of-fold scores of the training window",
}


def calibration_lines(params: dict[str, Any], metrics: dict[str, float]) -> tuple[list[str], str]:
    """What the churn run did about calibration, from its params and metrics: the served
    model's method and the holdout check's verdict (card lines), and the limit that follows
    (never a fixed claim)."""
    method = str(params.get("churn_calibration") or "unknown")
    checked = str(params.get("churn_holdout_calibration") or method)
    ok = metrics.get("churn_calibration_ok")
    brier, raw = metrics.get("churn_brier"), metrics.get("churn_brier_uncalibrated")
    lines = [
        "- method of the served model: "
        + (
            _METHODS.get(method, method)
            if method != "none"
            else "none (the out-of-fold check found that calibration did not lower the "
            "Brier score, so the boosted scores are served as they are)"
        )
    ]
    if checked == "none" or ok is None:
        verdict = "not run: the model checked on the holdout had no calibration"
    else:
        word = "passed" if ok >= 0.5 else "failed"
        verdict = f"{word} ({checked}: calibrated Brier {brier:.4f} against {raw:.4f} raw)"
        if ok < 0.5:
            verdict += ": calibration made the holdout probabilities worse"
    lines.append(f"- holdout check: {verdict}")
    if method == "none":
        limit = (
            "Probabilities are not calibrated: they rank customers well (see ROC AUC) but may "
            "not match observed churn rates; compare them with the calibration plot before "
            "reading them as rates."
        )
    elif ok is not None and ok < 0.5:
        limit = (
            f"Probabilities are calibrated ({method}), but the calibration did not hold on the "
            "holdout: read them as rankings and check the calibration plot before using them "
            "as rates."
        )
    else:
        limit = (
            f"Probabilities are calibrated ({method}) on the training window and held on the "
            "holdout; re-check calibration after drift."
        )
    return lines, limit


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
        if (not k.startswith("clv_") or family == "clv")
        and (not k.startswith("uplift_") or family == "uplift")
        and (not k.startswith("value_index_") or family == "segmentation")
    ]
    lines += ["", "## Holdout metrics", "", "| metric | value |", "|---|---|"]
    lines += [
        f"| {k} | {v:.4f} |" if np.isfinite(v) else f"| {k} | n/a |" for k, v in metrics.items()
    ]
    limits = list(LIMITS[family])
    if family == "churn":
        calibration, limit = calibration_lines(params, result.metrics)
        lines += ["", "## Calibration", *calibration]
        limits.append(limit)
    if family == "uplift":
        lines += ["", "## Uplift", *uplift_lines(params, result.metrics)]
    if family == "clv" and params.get("clv_model") == "bgbb":
        lines += ["", "## BG/BB (discrete opportunities)", *bgbb_lines(params)]
        limits[0] = BGBB_LIMIT
    if family == "segmentation":
        lines += ["", "## Segment catalogue (customers at training time)"]
        for scheme, sizes in result.models["segmentation"].segment_sizes_.items():
            body = ", ".join(f"{label}: {size:,}" for label, size in sizes.items())
            lines.append(f"- **{scheme}**: {body}")
        lines += value_index_lines(result.models["segmentation"])
    lines += ["", "## Known limits"] + [f"- {text}" for text in limits]
    return "\n".join(lines) + "\n"


def value_index_lines(model: Any) -> list[str]:
    """The AHP value index: indicators with direction and weight, and its consistency."""
    index = getattr(model, "value_index_", None)
    if index is None:
        return []
    lines = [
        "",
        "## Value index (AHP)",
        f"- configuration: {index.name_}; served as `ahp_value_index` (0-100: 100 x the "
        "weighted mean of the customer's percentiles against the training customers)",
        f"- consistency: lambda_max {index.lambda_max_:.4f}, CI {index.consistency_index_:.4f}, "
        f"CR {index.consistency_ratio_:.4f} (accepted up to 0.1)",
        "",
        "| indicator | better when | weight |",
        "|---|---|---|",
    ]
    for column, label, direction, weight in zip(
        index.columns_, index.labels_, index.directions_, index.weights_, strict=True
    ):
        name = column if label == column else f"{column} ({label})"
        lines.append(f"| {name} | {direction} | {weight:.4f} |")
    if index.dropped_:
        lines.append(f"\nLeft out (optional, no data): {', '.join(index.dropped_)}.")
    if getattr(model.nine_grid_, "value_axis", None) == "ahp_value_index":
        lines.append("\nThe nine-grid's value tiers are cut on this index.")
    return lines


BGBB_LIMIT = (
    "BG/BB assumes one chance to transact per period, a steady individual probability of "
    "transacting while active and a single, permanent dropout: seasonality and campaigns "
    "are not modelled."
)


def bgbb_lines(params: dict[str, Any]) -> list[str]:
    """What a BG/BB CLV model counts, in which periods, and how a summary is read."""
    period = params.get("clv_period", "?")
    source = params.get("clv_period_source", "?")
    per = params.get("clv_purchases_per_period", "?")
    return [
        f"- period: {period} ({params.get('clv_period_days', '?')} days; {source}), counted "
        "back from as-of in equal lengths, so every period counted is complete; the period "
        "of a customer's first purchase is not an opportunity",
        f"- transaction probability ~ Beta(alpha {params.get('clv_bgbb_alpha', '?')}, beta "
        f"{params.get('clv_bgbb_beta', '?')}); dropout per period ~ Beta(gamma "
        f"{params.get('clv_bgbb_gamma', '?')}, delta {params.get('clv_bgbb_delta', '?')})",
        f"- purchases per purchasing period: {per} (1.0: strictly one purchase per period); "
        "expected_purchases = expected purchasing periods over the horizon × this",
        "- CLV: Σ over the horizon's periods of P(active and transacting) × discount × "
        "expected spend (Gamma-Gamma) × margin",
        "- input: the summary's frequency, recency and T (days) and, where known, "
        "period_frequency, period_recency and periods; a row without them is converted "
        "(periods = ⌊T / period⌋, period_recency exact, period_frequency = min(frequency, "
        "period_recency): exact with at most one purchase per period)",
    ]


def uplift_lines(params: dict[str, Any], metrics: dict[str, float]) -> list[str]:
    """What the uplift model predicts, from what, and how it did on the holdout."""
    offers = [o for o in str(params.get("uplift_offers", "")).split(",") if o]
    window = params.get("uplift_window_days", "?")
    qini = metrics.get("uplift_qini")
    lines = [
        "- predicts, per customer and offer, the increase in the probability of a purchase "
        f"within {window} days of the contact over no contact (``uplift_<offer>``; negative: "
        "the contact drives the customer away)",
        f"- offers: {', '.join(offers) or 'none'}; input: the churn features as of the day "
        "before the send (the columns of cvm-churn)",
        f"- learner: {params.get('uplift_learner', '?')} (chosen among "
        f"{params.get('uplift_learners_tried', '?')} by the Qini coefficient on a holdout)",
        f"- campaigns: {params.get('uplift_campaigns', '?')}, sent "
        f"{params.get('uplift_first_sent', '?')} to {params.get('uplift_last_sent', '?')}; "
        f"{int(metrics.get('uplift_n_contacts', 0)):,} contacts",
        f"- holdout: {params.get('uplift_holdout', '?')} "
        f"({int(metrics.get('uplift_n_holdout', 0)):,} contacts); Qini coefficient "
        + (f"{qini:.4f}" if qini is not None and np.isfinite(qini) else "n/a")
        + " (retained per contact above random targeting; the gate metric)",
    ]
    for offer in offers:
        value = metrics.get(f"uplift_qini_{offer}")
        observed = metrics.get(f"uplift_observed_{offer}")
        if value is not None:
            lines.append(
                f"  - {offer}: holdout Qini {value:.4f}"
                + (f", observed retention uplift {observed:+.4f}" if observed is not None else "")
            )
    return lines
