"""Reports over the user's data: the churn KPI table by period and its chart."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from models.churn.kpi import churn_table
from training.inputs import Inputs


def churn_report(
    inputs: Inputs,
    *,
    start: pd.Timestamp | None = None,
    freq: str = "MS",
    segment: str | None = None,
    active_days: int = 365,
    margin: float | None = None,
) -> pd.DataFrame:
    """Churn rate and churn loss per period (and segment) from ``start`` (default: 12 months
    before ``inputs.as_of``) to ``inputs.as_of``, with the change from the period before."""
    end = inputs.as_of
    return churn_table(
        start if start is not None else end - pd.DateOffset(months=12),
        end,
        freq=freq,
        transactions=inputs.transactions,
        customers=inputs.customers,
        segment=segment,
        active_days=active_days,
        margin=margin,
    )


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


__all__ = ["churn_report", "plot_churn_rates"]
