"""Reports over the user's data: the churn KPI table by period and its chart."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

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
    import matplotlib  # late: plotting is only needed for this chart

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    try:
        for name, group in table.groupby("segment"):
            ax.plot(group["period_start"], 100 * group["churn_rate"], "o-", label=str(name))
        ax.set_ylabel("churn rate (%)")
        ax.legend()
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return Path(path)


__all__ = ["churn_report", "plot_churn_rates"]
