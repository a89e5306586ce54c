"""Holdout metrics and plots for the three model families (no MLflow here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn import metrics as skm


def churn_metrics(y_true: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC, Brier score, log loss, base rate and top-decile lift."""
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(probability, dtype=float)
    out = {
        "churn_base_rate": float(y.mean()),
        "churn_brier": float(skm.brier_score_loss(y, p)),
        "churn_log_loss": float(skm.log_loss(y, np.clip(p, 1e-12, 1 - 1e-12), labels=[0, 1])),
    }
    if 0 < y.sum() < len(y):
        out["churn_roc_auc"] = float(skm.roc_auc_score(y, p))
        out["churn_pr_auc"] = float(skm.average_precision_score(y, p))
        top = np.argsort(-p)[: max(1, len(p) // 10)]
        out["churn_top_decile_lift"] = float(y[top].mean() / max(y.mean(), 1e-12))
    return out


def clv_holdout_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Per-customer MAE / RMSE of holdout repeat purchases and the error of their total."""
    predicted = np.asarray(predicted, dtype=float)
    actual = np.asarray(actual, dtype=float)
    total_actual = float(actual.sum())
    return {
        "clv_holdout_mae": float(np.mean(np.abs(predicted - actual))),
        "clv_holdout_rmse": float(np.sqrt(np.mean((predicted - actual) ** 2))),
        "clv_holdout_total_predicted": float(predicted.sum()),
        "clv_holdout_total_actual": total_actual,
        "clv_holdout_total_error_pct": float(
            100 * (predicted.sum() - total_actual) / max(total_actual, 1e-12)
        ),
    }


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float]) -> tuple[Figure, Any]:
    """A figure and its axes, like ``pyplot.subplots`` but outside pyplot: nothing global
    keeps it open (headless; the figures are only ever written to files or runs)."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols)


def finish(
    fig: Figure,
    ax: Any,
    xlabel: str | None = None,
    ylabel: str | None = None,
    *,
    legend: bool | dict[str, Any] = False,
) -> Figure:
    """The end of every plot: axis labels, the legend (``legend``: True or its options),
    and the layout."""
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if legend:
        ax.legend(**(legend if isinstance(legend, dict) else {}))
    fig.tight_layout()
    return fig


def plot_holdout_by_frequency(
    frequency: np.ndarray, predicted: Mapping[str, np.ndarray], actual: np.ndarray
) -> Figure:
    """Mean actual vs predicted holdout purchases by calibration-period frequency (0..7+)."""
    bucket = np.minimum(np.asarray(frequency, dtype=int), 7)
    frame = pd.DataFrame({"bucket": bucket, "actual": actual, **predicted})
    means = frame.groupby("bucket").mean()
    fig, ax = subplots(figsize=(6, 4))
    ax.plot(means.index, means["actual"], "o-", color="black", label="actual")
    for name in predicted:
        ax.plot(means.index, means[name], "s--", label=name)
    return finish(
        fig,
        ax,
        "repeat purchases in calibration (7 = 7+)",
        "mean repeat purchases in holdout",
        legend=True,
    )


def plot_cumulative_tracking(tracking: pd.DataFrame) -> Figure:
    """Cumulative repeat purchases over time, actual vs each model; holdout shaded."""
    fig, ax = subplots(figsize=(7, 4))
    ax.plot(tracking["day"], tracking["actual"], color="black", label="actual")
    for name in tracking.columns:
        if name not in ("day", "actual", "holdout"):
            ax.plot(tracking["day"], tracking[name], "--", label=name)
    holdout = tracking.loc[tracking["holdout"], "day"]
    if len(holdout):
        ax.axvspan(holdout.iloc[0], holdout.iloc[-1], color="grey", alpha=0.15, label="holdout")
    fig.autofmt_xdate()
    return finish(fig, ax, ylabel="cumulative repeat purchases", legend=True)


def plot_retention(table: pd.DataFrame) -> Figure:
    """sBG survival and retention-rate curves by period."""
    fig, ax = subplots(figsize=(6, 4))
    ax.plot(table["period"], table["survival"], "o-", label="survival S(t)")
    ax.plot(table["period"], table["retention_rate"], "s--", label="retention rate r(t)")
    ax.set_ylim(0, 1)
    return finish(fig, ax, "period", legend=True)


def plot_clv_distribution(clv: np.ndarray) -> Figure:
    fig, ax = subplots(figsize=(6, 4))
    values = np.asarray(clv, dtype=float)
    values = values[np.isfinite(values)]
    ax.hist(values, bins=50)
    return finish(fig, ax, "CLV over the horizon (currency)", "customers")


def plot_calibration_and_gains(y_true: np.ndarray, probability: np.ndarray) -> Figure:
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(probability, dtype=float)
    fig, (left, right) = subplots(1, 2, figsize=(10, 4))
    bins = np.clip((p * 10).astype(int), 0, 9)
    frame = pd.DataFrame({"bin": bins, "p": p, "y": y}).groupby("bin").mean()
    left.plot([0, 1], [0, 1], ":", color="grey")
    left.plot(frame["p"], frame["y"], "o-")
    left.set_xlabel("predicted churn probability")
    left.set_ylabel("observed churn rate")
    left.set_title("calibration")
    order = np.argsort(-p)
    gains = np.cumsum(y[order]) / max(y.sum(), 1)
    share = np.arange(1, len(y) + 1) / len(y)
    right.plot(share, gains, label="model")
    right.plot([0, 1], [0, 1], ":", color="grey", label="random")
    right.set_title("cumulative gains")
    return finish(
        fig, right, "share of customers contacted", "share of churners reached", legend=True
    )
