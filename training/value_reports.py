"""Value reports over the user's data: churn by the product's own segments, the
concentration of profit and acquisition cohorts, for ``cvm report`` and for every training
run (:func:`training_reports`, logged with the run's metrics, tables and plots).

No MLflow here: the training pipeline hands what :func:`training_reports` returns to
:mod:`training.tracking`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.churn.kpi import TOTAL, trailing_boundaries
from models.churn.segment_kpi import SEGMENT_SCHEMES, churn_by_segment
from models.cohorts import cohort_matrix, cohort_table, pooled_retention
from models.concentration import concentration, customer_profit, lorenz_curve
from models.exceptions import CVMError, InvalidInputError
from models.segments.value import VALUE_TYPES

# Training logs churn by segment over the last two quarters (the last period, and the one
# before for the change): each period's customers are labelled by the models as of its start,
# so each period costs one scoring of every customer (CLI and API reports take any periods).
TRAINING_PERIODS = 2
TRAINING_PERIOD_MONTHS = 3
# Above this many customers, the training run's churn-by-segment table is measured on a
# random sample of them (the rates are then estimates; the counts and losses are the
# sample's): scoring every customer twice would add a tenth to training.
TRAINING_KPI_SAMPLE = 20_000
CONCENTRATION_MONTHS = 12  # profit over the last year
COHORT_MONTHS = 24  # cohorts acquired in the last two years
COHORT_RETENTION_MONTHS = (1, 3, 6, 12)  # months after acquisition logged as metrics
LORENZ_POINTS = 101  # every percent of customers


def window_start(as_of: pd.Timestamp, months: int) -> pd.Timestamp:
    """The first day of the ``months`` months that end on ``as_of``."""
    return (pd.Timestamp(as_of).normalize() - pd.DateOffset(months=months)) + pd.Timedelta(days=1)


# --- concentration ---------------------------------------------------------------------------


@dataclass
class ConcentrationReport:
    """Profit concentration over a window of purchases."""

    start: pd.Timestamp
    end: pd.Timestamp
    basis: str  # how profit was measured (models.concentration.customer_profit)
    customers: int
    shares: pd.DataFrame  # models.concentration.concentration
    curve: pd.DataFrame  # the Lorenz curve at every percent of customers
    loss_customers: int = 0  # customers whose profit is negative
    loss_total: float = 0.0  # their profit (negative, currency)

    @property
    def top20_profit_share(self) -> float:
        return float(self.shares.loc[self.shares["measure"] == "top_20pct", "value_share"].iloc[0])

    @property
    def gini(self) -> float:
        return float(self.shares.loc[self.shares["measure"] == "gini", "value_share"].iloc[0])


def concentration_report(
    transactions: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    start: pd.Timestamp | None = None,
    margin: float | None = None,
) -> ConcentrationReport:
    """How much of the profit from ``start`` (default: 12 months before ``as_of``) to
    ``as_of`` the top customers hold, over the customers who bought in that window."""
    begin = start if start is not None else window_start(as_of, CONCENTRATION_MONTHS)
    profit, basis = customer_profit(transactions, begin, as_of, margin)
    if profit.empty:
        raise InvalidInputError(
            f"no purchase between {begin.date()} and {pd.Timestamp(as_of).date()}", field="start"
        )
    return ConcentrationReport(
        start=pd.Timestamp(begin),
        end=pd.Timestamp(as_of),
        basis=basis,
        customers=len(profit),
        shares=concentration(profit["profit"]),
        curve=lorenz_curve(profit["profit"], points=LORENZ_POINTS),
        loss_customers=int((profit["profit"] < 0).sum()),
        loss_total=float(profit["profit"].clip(upper=0).sum()),
    )


def format_concentration(report: ConcentrationReport) -> str:
    """The shares as text: each top share of customers, how many customers that is, the share
    of profit they hold (percent) and the amount, then the Gini."""
    lines = [
        f"profit from {report.start.date()} to {report.end.date()} of {report.customers:,} "
        f"customers (profit: {report.basis})",
        f"{'customers':<12} {'how many':>12} {'profit share':>13} {'profit':>16}",
    ]
    for row in report.shares.to_dict("records"):
        if row["measure"] == "gini":
            continue
        who = f"top {100 * float(row['top_customer_share']):g} %"
        lines.append(
            f"{who:<12} {float(row['customers']):>12,.1f} "
            f"{100 * float(row['value_share']):>12.1f}% {float(row['value']):>16,.2f}"
        )
    lines.append(f"Gini coefficient: {report.gini:.4f} (0: every customer equal, 1: one holds all)")
    if report.loss_customers:
        lines.append(
            f"{report.loss_customers:,} customers made a loss ({report.loss_total:,.2f} in all): "
            "the top customers can hold more than 100 % of the profit"
        )
    return "\n".join(lines)


def lorenz_figure(report: ConcentrationReport) -> Figure:
    """The Lorenz curve of profit against the line of equality, the top 20 % marked."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    curve = report.curve
    ax.plot(100 * curve["customer_share"], 100 * curve["value_share"], label="Lorenz curve")
    ax.plot([0, 100], [0, 100], color="grey", linestyle=":", label="every customer equal")
    held = 100 * report.top20_profit_share
    ax.axvline(80, color="tab:red", linestyle="--", linewidth=1)
    ax.annotate(
        f"top 20 % hold {held:.1f} %",
        xy=(80, 100 - held),
        xytext=(20, 75),
        arrowprops={"arrowstyle": "->", "color": "tab:red"},
    )
    ax.set_title(f"Profit concentration (Gini {report.gini:.3f})")
    ax.set_xlabel("customers, smallest profit first (%)")
    ax.set_ylabel("share of profit (%)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


# --- cohorts ---------------------------------------------------------------------------------


def cohort_report(
    transactions: pd.DataFrame, as_of: pd.Timestamp, *, start: pd.Timestamp | None = None
) -> pd.DataFrame:
    """The cohort table (:func:`models.cohorts.cohort_table`) of the customers acquired from
    ``start`` (default: the :data:`COHORT_MONTHS` months that end on ``as_of``) to ``as_of``."""
    begin = start if start is not None else window_start(as_of, COHORT_MONTHS)
    return cohort_table(transactions, as_of, begin)


def format_cohorts(table: pd.DataFrame) -> str:
    """Retention by cohort (rows: acquisition month, with its customers) and months after
    acquisition (columns), in percent; blank where the month has not come yet."""
    matrix = cohort_matrix(table, "retention")
    sizes = table.groupby("cohort")["customers"].first()
    months = [f"m{k}" for k in matrix.columns]
    shown = (100 * matrix).map(lambda v: "" if pd.isna(v) else f"{v:.0f}%")
    shown.columns = months
    shown.insert(0, "customers", [f"{int(n):,}" for n in sizes.to_numpy()])
    revenue = cohort_matrix(table, "revenue_per_customer").map(
        lambda v: "" if pd.isna(v) else f"{v:,.2f}"
    )
    revenue.columns = months
    for frame in (shown, revenue):
        frame.index.name = None
    lines = [
        "retention: share of each cohort (first purchase in that month) buying k months later",
        shown.to_string(),
        "",
        "revenue per acquired customer, k months after acquisition (currency)",
        revenue.to_string(),
    ]
    if not table["complete"].all():
        lines.append("(the last month runs to the as-of date only)")
    return "\n".join(lines)


def cohort_figure(table: pd.DataFrame, *, numbers: bool = True) -> Figure:
    """Heat maps of retention (%) and revenue per acquired customer, by cohort (rows) and
    month after acquisition (columns). ``numbers``: each cell with its number and every row
    and column labelled (``cvm report cohorts``); without, at most a dozen labels per axis
    and fixed margins (the training run's plot: a quarter of the drawing time). The colours
    are scaled on the months after the first, which the acquisition month (retention 100 %)
    would otherwise wash out."""
    retention = 100 * cohort_matrix(table, "retention")
    revenue = cohort_matrix(table, "revenue_per_customer")
    rows, cols = retention.shape
    fig = Figure(
        figsize=(max(7.0, 0.45 * cols + 2.5), 2 * max(2.5, 0.28 * rows + 1.2))
        if numbers
        else (7.0, 6.0)
    )
    axes = fig.subplots(2, 1)
    row_step = 1 if numbers else max(1, math.ceil(rows / 12))
    col_step = 1 if numbers else max(1, math.ceil(cols / 12))
    for ax, matrix, title, cmap in (
        (axes[0], retention, "retention (%)", "Blues"),
        (axes[1], revenue, "revenue per acquired customer", "Greens"),
    ):
        values = matrix.to_numpy(dtype=float)
        later = values[:, 1:] if cols > 1 else values
        top = float(np.nanmax(later)) if np.isfinite(later).any() else 1.0
        image = ax.imshow(
            np.ma.masked_invalid(values), aspect="auto", cmap=cmap, vmin=0, vmax=top or 1.0
        )
        if numbers and rows * cols <= 600:  # numbers only where they stay legible
            for i in range(rows):
                for j in range(cols):
                    if np.isfinite(values[i, j]):
                        ax.text(j, i, f"{values[i, j]:.0f}", ha="center", va="center", fontsize=6)
        shown_cols = range(0, cols, col_step)
        shown_rows = range(0, rows, row_step)
        ax.set_xticks(shown_cols, labels=[str(matrix.columns[j]) for j in shown_cols], fontsize=7)
        ax.set_yticks(shown_rows, labels=[str(matrix.index[i]) for i in shown_rows], fontsize=7)
        ax.set_ylabel("cohort (first purchase)")
        ax.set_title(title)
        fig.colorbar(image, ax=ax)
    axes[1].set_xlabel("months after acquisition")
    if numbers:
        fig.tight_layout()
    else:
        fig.subplots_adjust(left=0.14, right=0.98, top=0.95, bottom=0.08, hspace=0.3)
    return fig


# --- cvm report concentration | cohorts --------------------------------------------------------


def write_report(
    kind: str,
    transactions: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    start: pd.Timestamp | None = None,
    margin: float | None = None,
    chart: str | None = None,
    csv: str | None = None,
) -> tuple[str, list[Path]]:
    """``cvm report concentration`` or ``cvm report cohorts``: (the text to print, the files
    written: the chart, PNG, and the table, CSV; default names ``<kind>_report.png|csv``)."""
    chart_path = Path(chart or f"{kind}_report.png")
    csv_path = Path(csv or f"{kind}_report.csv")
    if kind == "concentration":
        report = concentration_report(transactions, as_of, start=start, margin=margin)
        text, figure, table = format_concentration(report), lorenz_figure(report), report.curve
    elif kind == "cohorts":
        table = cohort_report(transactions, as_of, start=start)
        text, figure = format_cohorts(table), cohort_figure(table)
        table = table.assign(cohort=table["cohort"].dt.strftime("%Y-%m"))
    else:
        raise InvalidInputError(f"unknown report {kind!r}", field="kind")
    figure.savefig(chart_path)
    table.to_csv(csv_path, index=False)
    return text, [chart_path, csv_path]


# --- the training run --------------------------------------------------------------------------


@dataclass
class RunReports:
    """What :func:`training_reports` adds to a training run."""

    metrics: dict[str, float] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


def _sample_customers(
    transactions: pd.DataFrame, customers: pd.DataFrame | None, limit: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame | None, int]:
    """The purchases (and customer rows) of at most ``limit`` customers drawn at random, and
    how many customers there were."""
    codes, ids = pd.factorize(transactions["customer_id"].astype(str))
    if len(ids) <= limit:
        return transactions, customers, len(ids)
    chosen = np.zeros(len(ids), dtype=bool)
    chosen[np.random.default_rng(seed).choice(len(ids), limit, replace=False)] = True
    rows = None
    if customers is not None:
        rows = customers[customers["customer_id"].astype(str).isin(ids[chosen])]
    return transactions[chosen[codes]], rows, len(ids)


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if np.isfinite(v)}


def segment_churn_metrics(table: pd.DataFrame) -> dict[str, float]:
    """The last period's churn of every customer and of each value type."""
    last = table[table["period_start"] == table["period_start"].max()]
    total = last[last["segment"] == TOTAL].iloc[0]
    metrics = {
        "kpi_churn_rate_last_period": total["churn_rate"],
        "kpi_conventional_churn_rate_last_period": total["conventional_churn_rate"],
        "kpi_churn_rate_change_last_period": total["churn_rate_change"],
    }
    if "churn_loss" in last.columns:
        metrics["kpi_churn_loss_last_period"] = total["churn_loss"]
    by_type = last[last["scheme"] == "value_matrix"].set_index("segment")["churn_rate"]
    for value_type in VALUE_TYPES:
        if value_type in by_type.index:
            metrics[f"kpi_churn_rate_last_period_{value_type}"] = by_type[value_type]
    return _finite(metrics)


def training_reports(
    models: dict[str, Any],
    transactions: pd.DataFrame,
    customers: pd.DataFrame | None,
    as_of: pd.Timestamp,
    *,
    margin: float | None = None,
    step: Callable[[str], None] = print,
    random_state: int = 0,
) -> RunReports:
    """Churn by segment (every scheme of :data:`SEGMENT_SCHEMES`, the last
    :data:`TRAINING_PERIODS` quarters), profit concentration (the last year) and acquisition
    cohorts (the last two years) for a training run: tables ``churn_by_segment``,
    ``profit_concentration``, ``lorenz_curve`` and ``cohorts``, plots ``lorenz_curve.png`` and
    ``cohort_heatmap.png``, and a few metrics. ``models``: the fitted ``segmentation`` and
    ``clv`` models; ``margin``: the churn loss's (None: the CLV model's margin, when it has
    one). A report the data cannot give (e.g. no profit in the last year) is left out with a
    line on ``step``, never failing the training."""
    out = RunReports()
    loss_margin = margin if margin is not None else getattr(models.get("clv"), "margin_", None)
    try:
        sample, sample_customers, population = _sample_customers(
            transactions, customers, TRAINING_KPI_SAMPLE, random_state
        )
        dates = trailing_boundaries(as_of, TRAINING_PERIODS, TRAINING_PERIOD_MONTHS)
        table = churn_by_segment(
            models,
            sample,
            dates,
            by=list(SEGMENT_SCHEMES),
            customers=sample_customers,
            margin=None if loss_margin is None else float(loss_margin),
        )
        out.tables["churn_by_segment"] = table
        out.metrics.update(segment_churn_metrics(table))
        out.params["kpi_periods"] = f"{TRAINING_PERIODS} x {TRAINING_PERIOD_MONTHS} months"
        out.params["kpi_customers"] = (
            f"sample of {TRAINING_KPI_SAMPLE:,} of {population:,}"
            if population > TRAINING_KPI_SAMPLE
            else "all"
        )
        step(
            "churn by segment: last period's churn rate "
            f"{out.metrics.get('kpi_churn_rate_last_period', float('nan')):.4f}"
        )
    except CVMError as exc:
        step(f"churn by segment left out: {exc}")
    try:
        report = concentration_report(transactions, as_of, margin=margin)
        out.tables["profit_concentration"] = report.shares
        out.tables["lorenz_curve"] = report.curve
        out.figures["lorenz_curve.png"] = lorenz_figure(report)
        out.metrics["top20_profit_share"] = report.top20_profit_share
        out.metrics["profit_gini"] = report.gini
        step(
            f"profit concentration: the top 20 % hold {100 * report.top20_profit_share:.1f} % "
            f"(Gini {report.gini:.3f})"
        )
    except CVMError as exc:
        step(f"profit concentration left out: {exc}")
    try:
        cohorts = cohort_report(transactions, as_of)
        out.tables["cohorts"] = cohorts
        out.figures["cohort_heatmap.png"] = cohort_figure(cohorts, numbers=False)
        out.metrics.update(
            _finite(
                {
                    f"cohort_retention_month_{k}": pooled_retention(cohorts, k)
                    for k in COHORT_RETENTION_MONTHS
                }
            )
        )
        step(
            f"cohorts: {cohorts['cohort'].nunique()} acquisition months, month-1 retention "
            f"{pooled_retention(cohorts, 1):.3f}"
        )
    except CVMError as exc:
        step(f"cohorts left out: {exc}")
    return out


__all__ = [
    "ConcentrationReport",
    "RunReports",
    "cohort_figure",
    "cohort_report",
    "concentration_report",
    "format_cohorts",
    "format_concentration",
    "lorenz_figure",
    "training_reports",
    "write_report",
]
