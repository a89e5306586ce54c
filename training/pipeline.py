"""Fit the model families on validated data and evaluate each on a time holdout: the three
required ones (segmentation, churn, CLV), and the uplift model when campaign history is given.

No MLflow here: :func:`train_all` returns fitted estimators, metrics and figures, and
:mod:`training.tracking` logs and registers them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.churn.risk import DEFAULT_QUANTILES, fit_bands
from models.clv import CLV_INPUT_COLUMNS, PURCHASE_MODELS
from models.clv.periodic import input_example, with_period_columns
from models.customer_value import with_value
from models.customer_view import CLV_SEGMENT_INPUTS, segmentation_input
from models.drift import reference_distribution
from models.exceptions import InvalidInputError
from models.features import SUMMARY_COLUMNS, end_of_day, summarize
from models.segments.value_index import resolve_value_index
from training import evaluate
from training.progress import Stage, stage_of
from training.train_churn import train_churn
from training.train_clv import holdout_window, train_clv
from training.train_segments import join_customer_columns, train_segments, value_index_columns
from training.train_uplift import UpliftTraining, train_uplift
from training.value_reports import RunReports, training_reports

Progress = Callable[[str], None]

# The segmentation pyfunc takes the whole summary plus P(alive) and the expected purchases
# from the CLV model; the CLV pyfunc takes models.clv.CLV_INPUT_COLUMNS.
SEGMENT_INPUT_COLUMNS = [*SUMMARY_COLUMNS, *CLV_SEGMENT_INPUTS]
# Customers whose churn scores place the risk-band cuts (quantiles: 200,000 place them to
# well under 0.01 of a probability; band sizes of a sample are scaled to all customers).
BAND_SAMPLE = 200_000


@dataclass
class TrainConfig:
    """Training settings (all durations in days)."""

    as_of: pd.Timestamp
    churn_horizon_days: int = 90
    # None: a third of the history, 4 weeks to 180 days (training.train_clv.holdout_window)
    clv_holdout_days: int | None = None
    clv_horizon_days: int = 365
    discount_rate: float = 0.10
    margin: float | None = None
    time_unit_days: float = 7.0
    # "auto" (chosen on the holdout), "bgnbd", "paretonbd" or "bgbb" (discrete opportunities)
    clv_model: str = "auto"
    # BG/BB's period (week, month, quarter, year); None: the one the purchases keep to, if any
    clv_period: str | None = None
    # with clv_model "auto" and no clv_period: add BG/BB when the purchases keep to a period
    clv_detect_period: bool = True
    churn_max_iter: int | None = None
    # Churn risk bands: "quantile" cuts of the scores (shares of customers) or fixed
    # "probability" thresholds (models/churn/risk.py)
    risk_bands: tuple[str, tuple[float, float]] = ("quantile", DEFAULT_QUANTILES)
    # Leave out customer-table columns that alone separate churners (models/churn/leakage.py)
    drop_leaky: bool = True
    random_state: int = 0
    # Uplift (with campaign history): a contact is retained by a purchase within this many
    # days after the send
    uplift_window_days: int = 60
    # The AHP value index (models/segments/value_index.py): None = the default for the
    # product's data, "bank" = the shipped bank template, a JSON file's path, or the
    # configuration itself (a dict)
    value_index: str | dict[str, Any] | None = None


@dataclass
class TrainResult:
    """What :func:`train_all` produces for tracking."""

    models: dict[str, Any]
    metrics: dict[str, float]
    params: dict[str, Any]
    input_examples: dict[str, pd.DataFrame]
    output_examples: dict[str, pd.DataFrame]
    figures: dict[str, Figure] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    # Models fitted without the latest holdout window (what retrain compares with the champion).
    holdout_models: dict[str, Any] = field(default_factory=dict)
    # Training distributions of each family's numeric inputs (drift monitoring).
    drift_references: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The uplift family's holdout contacts (features, treatment, retained): what retrain
    # measures the champion and the challenger on (None without campaign history).
    uplift_holdout: pd.DataFrame | None = None


def train_all(
    transactions: pd.DataFrame,
    customers: pd.DataFrame | None,
    config: TrainConfig,
    progress: Progress = print,
    previous: dict[str, Any] | Future | None = None,
    *,
    evaluation: tuple[pd.DataFrame, pd.DataFrame | None] | None = None,
    population: int | None = None,
    started: float | None = None,
    campaigns: pd.DataFrame | None = None,
) -> TrainResult:
    """Fit segmentation, churn and CLV models as of ``config.as_of`` with holdout metrics;
    with ``campaigns`` (a frame of :func:`training.campaigns.load_campaigns`) the uplift
    model too (:func:`training.train_uplift.train_uplift`, on the churn model's input
    columns).

    ``previous``: the current champion models by family (cluster ids are matched to the
    champion's segmentation so that they keep their meaning across retrains).

    For a sample of a larger customer base (the Spark engine): ``evaluation`` holds the
    (transactions, customers) of a separate sample on which the CLV and churn holdout
    metrics are measured, and ``population`` the number of customers the churn risk-band
    sizes are scaled to; ``started``: the ``time.perf_counter()`` the progress lines count
    from (default: now).
    """
    start = time.perf_counter() if started is None else started

    def step(message: str) -> None:
        progress(f"[{time.perf_counter() - start:6.1f}s] {message}")

    as_of = end_of_day(config.as_of)
    summary = summarize(transactions, as_of)
    if len(summary) < 20:
        raise InvalidInputError(f"only {len(summary)} customers with purchases: need at least 20")
    step(f"summarised {len(transactions):,} transactions into {len(summary):,} customers")
    # The value index's configuration and columns are checked before any model is fitted.
    value_index = resolve_value_index(config.value_index)
    value_columns = value_index_columns(value_index, SEGMENT_INPUT_COLUMNS, customers)
    metrics: dict[str, float] = {
        "n_customers": float(len(summary)),
        "n_transactions": float(len(transactions)),
    }
    figures: dict[str, Figure] = {}

    # CLV: model choice on a calibration/holdout split, then the final fit ----------------
    first_purchase = pd.Timestamp(transactions["timestamp"].min())
    holdout_days, short = holdout_window(first_purchase, as_of, config.clv_holdout_days)
    metrics["clv_calibration_short"] = float(short is not None)
    if short:
        step(short)
    # one line per candidate model on the holdout, one for the final fit
    clv_steps = (len(PURCHASE_MODELS) if config.clv_model == "auto" else 1) + 1
    clv_steps += config.clv_model == "auto" and config.clv_period is not None  # BG/BB too
    with stage_of(progress, "CLV: model choice and final fit", clv_steps) as stage:
        clv_training = train_clv(
            transactions,
            customers,
            summary,
            as_of,
            holdout_days=holdout_days,
            horizon_days=config.clv_horizon_days,
            discount_rate=config.discount_rate,
            margin=config.margin,
            time_unit_days=config.time_unit_days,
            purchase_model=config.clv_model,
            step=advancing(step, stage),
            evaluation_transactions=evaluation[0] if evaluation is not None else None,
            period=config.clv_period,
            detect_period_=config.clv_detect_period,
        )
    clv = clv_training.model
    metrics.update(clv_training.metrics)
    figures.update(clv_training.figures)
    # a BG/BB model reads each customer's periods too (models/clv/periodic.py)
    clv_summary = with_period_columns(clv, summary, transactions, as_of)
    clv_out = clv.predict(clv_summary)
    metrics["clv_mean"] = float(clv_out["clv"].mean())
    metrics["clv_total"] = float(clv_out["clv"].sum())
    # the value in three parts over the training customers (potential: clv_total)
    parts = with_value(clv_out[["clv", "margin"]].copy(), summary)
    metrics["value_historical_total"] = float(np.nansum(parts["historical_value"]))
    metrics["value_current_total"] = float(np.nansum(parts["current_value"]))
    figures["clv_distribution.png"] = evaluate.plot_clv_distribution(clv_out["clv"].to_numpy())

    # Segmentation: every scheme; lifecycle uses P(alive) from the CLV model -------------
    segment_table = join_customer_columns(
        segmentation_input(summary, clv_out),
        customers,
        value_columns,
        as_of,
    )
    champions = previous.result() if isinstance(previous, Future) else previous
    champion_segments = (champions or {}).get("segmentation")
    if champion_segments is not None:
        step("matching segment ids to the current champion's")
    with stage_of(progress, "segmentation"):
        segments = train_segments(
            segment_table,
            previous=champion_segments,
            margin=config.margin,
            value_index=value_index,
            horizon_days=config.clv_horizon_days,
        )
    metrics.update(segments.metrics)
    figures.update(segments.figures)
    # Only what the run keeps of the per-customer tables: the churn stage that follows is
    # the peak of memory, so the labels and the segmentation inputs are let go before it.
    seg_out = segments.labels.head(5)
    segments.labels = seg_out
    clv_out = clv_out.head(5)  # the output example
    clv_example = input_example(clv, clv_summary, CLV_INPUT_COLUMNS)
    if len(clv_example.columns) > len(CLV_INPUT_COLUMNS):
        clv_out = clv.predict(clv_example)
    del clv_summary
    segment_reference = reference_distribution(segment_table, SEGMENT_INPUT_COLUMNS)
    segment_example = segment_table.head(5)[[*SEGMENT_INPUT_COLUMNS, *value_columns]]
    del segment_table
    step(
        f"segmentation: RFM, value matrix, {segments.model.clusters_.n_clusters_} behaviour "
        f"clusters (silhouette {segments.model.clusters_.silhouette_:.2f}), lifecycle, nine-grid"
    )

    # Churn: fit on the window before, evaluate on the latest beside a baseline, refit -----
    churn_options: dict[str, Any] = {"random_state": config.random_state}
    if config.churn_max_iter is not None:
        churn_options["max_iter"] = config.churn_max_iter
    # one line after the holdout evaluation, one after the final fit
    with stage_of(progress, "churn: holdout evaluation and final fit", 2) as stage:
        churn_training = train_churn(
            transactions,
            customers,
            as_of,
            horizon_days=config.churn_horizon_days,
            options=churn_options,
            step=advancing(step, stage),
            drop_leaky=config.drop_leaky,
            summary=summary,
            evaluation=evaluation,
        )
    churn = churn_training.model
    metrics.update(churn_training.metrics)
    figures.update(churn_training.figures)
    features_now = churn_training.features_now.reindex(columns=list(churn.feature_names_in_))
    churn_p = churn.predict_proba(features_now.head(5))[:, 1]  # the output example
    # Risk bands: quantiles of the scores of the customers served (at most BAND_SAMPLE of them)
    band_rows = features_now
    if len(band_rows) > BAND_SAMPLE:
        band_rows = band_rows.sample(BAND_SAMPLE, random_state=config.random_state)
    basis, cuts = config.risk_bands
    scores = churn.predict_proba(band_rows)[:, 1]
    low, high = fit_bands(churn, scores, basis, cuts, population=population or len(features_now))
    for band, size in churn.risk_band_sizes_.items():
        metrics[f"churn_band_{band}_customers"] = float(size)
    step(
        f"churn risk bands: low < {low:.3f} <= medium < {high:.3f} <= high "
        f"({churn.risk_basis_}); "
        + ", ".join(f"{b} {n:,}" for b, n in churn.risk_band_sizes_.items())
    )
    h = config.churn_horizon_days

    examples = summary.head(5)
    numeric_churn = [
        c for c in features_now.columns if pd.api.types.is_numeric_dtype(features_now[c])
    ]
    drift_references = {
        "segmentation": segment_reference,
        "clv": reference_distribution(summary, CLV_INPUT_COLUMNS),
        "churn": reference_distribution(features_now, numeric_churn),
    }
    result = TrainResult(
        models={"segmentation": segments.model, "churn": churn, "clv": clv},
        metrics=metrics,
        params={
            "as_of": str(as_of.date()),
            "churn_horizon_days": h,
            "clv_holdout_days": holdout_days,
            "clv_horizon_days": config.clv_horizon_days,
            "discount_rate": config.discount_rate,
            "time_unit_days": config.time_unit_days,
            **clv_training.params,
            **churn_training.params,
            "churn_risk_thresholds": f"{low:.6g},{high:.6g}",
            "churn_risk_basis": f"{basis}:{cuts[0]:g},{cuts[1]:g}",
            **segments.params,
        },
        input_examples={
            "segmentation": segment_example,
            "clv": clv_example,
            "churn": features_now.head(5),
        },
        output_examples={
            "segmentation": seg_out.head(5),
            "clv": clv_out.head(5),
            "churn": pd.DataFrame({"churn_probability": churn_p[:5]}, index=examples.index),
        },
        figures=figures,
        tables={**segments.tables, **clv_training.tables, **churn_training.tables},
        texts=segments.texts,
        drift_references=drift_references,
        holdout_models={
            "churn": churn_training.holdout_model,
            "clv": clv_training.holdout_model,
            "segmentation": segments.model,
        },
    )
    with stage_of(progress, "reports: churn by segment, profit concentration, cohorts"):
        add_reports(
            result,
            training_reports(
                result.models,
                transactions,
                customers,
                as_of,
                margin=config.margin,
                step=step,
                random_state=config.random_state,
            ),
        )
    if campaigns is not None:
        with stage_of(progress, "uplift: learner choice on the holdout and final fit"):
            uplift = train_uplift(
                campaigns,
                transactions,
                customers,
                as_of,
                feature_names=list(churn.feature_names_in_),
                window_days=config.uplift_window_days,
                random_state=config.random_state,
                step=step,
            )
        add_uplift(result, uplift, features_now.head(5))
    return result


def add_uplift(result: TrainResult, uplift: UpliftTraining, example: pd.DataFrame) -> None:
    """The uplift family added to a run: its input example is the churn model's (the same
    customers, the same columns: one feature row serves both families)."""
    result.models["uplift"] = uplift.model
    result.holdout_models["uplift"] = uplift.holdout_model
    result.metrics.update(uplift.metrics)
    result.params.update(uplift.params)
    result.figures.update(uplift.figures)
    result.tables.update(uplift.tables)
    result.drift_references["uplift"] = uplift.reference
    columns = list(uplift.model.feature_names_in_)
    result.input_examples["uplift"] = example[columns]
    result.output_examples["uplift"] = uplift.model.predict_frame(example[columns])
    result.uplift_holdout = uplift.holdout


def add_reports(result: TrainResult, reports: RunReports) -> None:
    """The value reports (training/value_reports.py) added to a run."""
    result.metrics.update(reports.metrics)
    result.params.update(reports.params)
    result.tables.update(reports.tables)
    result.figures.update(reports.figures)


def advancing(step: Callable[[str], None], stage: Stage) -> Callable[[str], None]:
    """``step`` that also advances ``stage`` by one for each line (a stage whose sub-steps
    each end with a line)."""

    def say(message: str) -> None:
        step(message)
        stage.advance()

    return say


def metrics_summary(metrics: dict[str, float]) -> str:
    """The key metrics of each family (``models.families``), one line per family."""
    from models.families import FAMILIES

    lines = [
        f"trained on {metrics.get('n_customers', 0):,.0f} customers, "
        f"{metrics.get('n_transactions', 0):,.0f} transactions (--verbose: every metric)"
    ]
    for family in FAMILIES.values():
        shown = [
            f"{key} {_number(metrics[key])}"
            for key in family.key_metrics
            if key in metrics and key != "n_customers"
        ]
        if shown:
            lines.append(f"  {family.name}: " + ", ".join(shown))
    return "\n".join(lines)


def _number(value: float) -> str:
    if not np.isfinite(value):
        return str(value)
    if float(value).is_integer() and abs(value) >= 1:
        return f"{value:,.0f}"
    return f"{value:,.4f}" if abs(value) < 1e6 else f"{value:,.1f}"


def metrics_table(metrics: dict[str, float]) -> str:
    """The metrics as an aligned two-column text table."""
    width = max(len(k) for k in metrics)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  {'-' * 12}"]
    for key in sorted(metrics):
        value = metrics[key]
        text = f"{value:,.4f}" if np.isfinite(value) and abs(value) < 1e6 else f"{value:,.1f}"
        lines.append(f"{key:<{width}}  {text}")
    return "\n".join(lines)
