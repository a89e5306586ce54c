"""Reports over the user's data: the churn KPI table by period and its chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from models.churn.kpi import COUNT_COLUMNS, churn_table, period_boundaries
from models.churn.segment_kpi import churn_by_segment
from training.inputs import Inputs


def churn_report(
    inputs: Inputs,
    *,
    start: pd.Timestamp | None = None,
    freq: str = "MS",
    segment: str | None = None,
    active_days: int = 365,
    margin: float | None = None,
    by: str | None = None,
    models: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Churn rate and churn loss per period (and segment) from ``start`` (default: 12 months
    before ``inputs.as_of``) to ``inputs.as_of``, with the change from the period before.

    ``segment``: a customer-table column; ``by``: a segment scheme of ``models`` (the
    champion segmentation and CLV models), each customer's label as of each period's start
    (:func:`models.churn.segment_kpi.churn_by_segment`)."""
    end = inputs.as_of
    begin = start if start is not None else end - pd.DateOffset(months=12)
    if by is not None:
        return churn_by_segment(
            models or {},
            inputs.transactions,
            period_boundaries(begin, end, freq),
            by=by,
            customers=inputs.customers,
            active_days=active_days,
            margin=margin,
        )
    return churn_table(
        begin,
        end,
        freq=freq,
        transactions=inputs.transactions,
        customers=inputs.customers,
        segment=segment,
        active_days=active_days,
        margin=margin,
    )


def _count(value: object) -> str:
    return f"{int(value):,}"  # type: ignore[call-overload]


def _rate(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.4f}"


def _percent(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:+.1f}%"


def _money(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:,.2f}"


def format_churn_table(table: pd.DataFrame) -> str:
    """The churn table as text: counts as integers, rates as fractions (4 decimals), the
    change in percent of the previous rate ("n/a" where that rate was 0 or there is none),
    money to the cent."""
    formatters: dict[str, Any] = {}
    for column in table.columns:
        if column in COUNT_COLUMNS:
            formatters[column] = _count
        elif column == "churn_rate_change_pct":
            formatters[column] = _percent
        elif column in ("lost_revenue", "churn_loss"):
            formatters[column] = _money
        elif pd.api.types.is_float_dtype(table[column].dtype):
            formatters[column] = _rate
    shown = table.assign(
        period_start=table["period_start"].dt.date, period_end=table["period_end"].dt.date
    )
    return shown.to_string(index=False, formatters=formatters, na_rep="n/a")


def plot_churn_rates(table: pd.DataFrame, path: str | Path) -> Path:
    """A line chart of the churn rate (%) per period, one line per segment, saved as PNG."""
    from training.evaluate import finish  # late: plotting is only needed for this chart

    fig = Figure(figsize=(8, 4))
    ax = fig.subplots()
    for name, group in table.groupby("segment"):
        ax.plot(group["period_start"], 100 * group["churn_rate"], "o-", label=str(name))
    fig.autofmt_xdate()
    finish(fig, ax, ylabel="churn rate (%)", legend=True).savefig(path)
    return Path(path)


__all__ = ["churn_report", "format_churn_table", "plot_churn_rates"]
