"""``cvm report campaign``: what a retention campaign earned, treated against control.

For one campaign, from the per-customer outcomes of ``training.campaigns.campaign_outcomes``
(retained within the response window, spend and margin after ``sent_at``):

- the retention rate of each arm (every offer, all offers together, control), with its 95 %
  Wilson score interval, and the mean spend with its t interval;
- the retention difference treated − control with the **Newcombe hybrid score interval**
  (Newcombe 1998, method 10: built from the two Wilson intervals; it keeps its coverage near
  0 and 1 and with small groups, where the Wald interval does not);
- the spend difference with the **Welch t interval** (unequal variances);
- incremental profit = (mean profit treated − mean profit control) × treated customers −
  the campaign's cost (profit: the margin of the spend, or spend × ``margin_rate``), its
  interval the Welch interval scaled the same way (the cost is known), and ROI = incremental
  profit / cost with the interval divided by the cost.

Which control group: in a randomised campaign every offer is compared with the whole control
group. In a *planned* campaign each customer's offer was chosen for them, and the control
group is drawn from every offer's customers; an offer's customers are then only comparable
with the control customers held out from that same offer. When every control row names that
offer (``planned_offer``), each offer's row is compared with its own held-out customers
(``control_group`` says which, ``control_customers`` how many); ``all offers`` is compared
with the whole control group, which is fair when every offer held out the same share.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from models.exceptions import InvalidInputError

CONTROL = "control"
ALL_OFFERS = "all offers"
ALL_CONTROL = "all control"
LEVEL = 0.95
RETENTION_METHOD = "Newcombe hybrid score (method 10, from Wilson intervals)"
SPEND_METHOD = "Welch t (unequal variances)"
OUTCOME_COLUMNS = ("campaign_id", "treatment", "retained", "spend")


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))


def wilson_interval(retained: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """The Wilson score interval of ``retained / n`` (NaN when ``n`` is 0)."""
    if n <= 0:
        return math.nan, math.nan
    z = _z(level)
    p = retained / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(centre - half, 0.0), min(centre + half, 1.0)


def newcombe_difference(
    k1: int, n1: int, k0: int, n0: int, level: float = LEVEL
) -> tuple[float, float, float]:
    """(p1 − p0, lower, upper): Newcombe's hybrid score interval of a difference of two
    independent proportions."""
    if n1 <= 0 or n0 <= 0:
        return math.nan, math.nan, math.nan
    p1, p0 = k1 / n1, k0 / n0
    l1, u1 = wilson_interval(k1, n1, level)
    l0, u0 = wilson_interval(k0, n0, level)
    d = p1 - p0
    lower = d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    upper = d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return d, lower, upper


def welch_difference(
    treated: Any, control: Any, level: float = LEVEL
) -> tuple[float, float, float]:
    """(mean treated − mean control, lower, upper): the Welch t interval (NaN bounds when a
    group has fewer than 2 customers or neither group varies)."""
    x1, x0 = np.asarray(treated, dtype=float), np.asarray(control, dtype=float)
    if len(x1) == 0 or len(x0) == 0:
        return math.nan, math.nan, math.nan
    d = float(x1.mean() - x0.mean())
    if len(x1) < 2 or len(x0) < 2:
        return d, math.nan, math.nan
    v1, v0 = x1.var(ddof=1) / len(x1), x0.var(ddof=1) / len(x0)
    se2 = v1 + v0
    if se2 <= 0:
        return d, d, d
    df = se2**2 / (v1**2 / (len(x1) - 1) + v0**2 / (len(x0) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * math.sqrt(se2)
    return d, d - half, d + half


def mean_interval(values: Any, level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, lower, upper): the t interval of a mean."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if len(x) < 2:
        return m, math.nan, math.nan
    half = (
        float(stats.t.ppf(0.5 + level / 2, len(x) - 1)) * float(x.std(ddof=1)) / math.sqrt(len(x))
    )
    return m, m - half, m + half


def _select(outcomes: pd.DataFrame, campaign_id: str | None) -> pd.DataFrame:
    missing = [c for c in OUTCOME_COLUMNS if c not in outcomes.columns]
    if missing:
        raise InvalidInputError(
            f"campaign outcomes lack the column(s) {', '.join(missing)}", field=missing[0]
        )
    if campaign_id is None:
        return outcomes
    ids = outcomes["campaign_id"].astype(str)
    chosen = outcomes[ids == str(campaign_id)]
    if chosen.empty:
        known = sorted(set(ids))
        shown = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
        raise InvalidInputError(
            f"campaign {campaign_id!r} is not in the campaigns file (campaigns: {shown})",
            field="campaign_id",
        )
    return chosen


def campaign_report(
    outcomes: pd.DataFrame,
    campaign_id: str | None = None,
    *,
    margin_rate: float | None = None,
    level: float = LEVEL,
) -> pd.DataFrame:
    """One row per arm (each offer, ``all offers`` when there are several, ``control``):
    customers, retention and spend with intervals, and for the treated arms the differences
    from control, incremental customers, cost, incremental profit and ROI with intervals.

    ``outcomes``: one row per customer of the campaign with ``campaign_id``, ``treatment``
    (``control`` or an offer id), ``retained`` (bool), ``spend``, and ``margin`` (profit of
    that spend) unless ``margin_rate`` is given; optional ``cost`` (the customer's cost) and
    ``planned_offer`` (see the module docstring: per-offer control groups)."""
    rows = _select(outcomes, campaign_id)
    treatment = rows["treatment"].astype(str)
    where = f"campaign {campaign_id!r}" if campaign_id is not None else "the campaign"
    if not (treatment == CONTROL).any():
        raise InvalidInputError(
            f"{where} has no control group (treatment 'control'): there is nothing to compare "
            "the offers with",
            field="treatment",
        )
    if margin_rate is not None:
        if not 0 <= margin_rate <= 1:
            raise InvalidInputError(
                f"margin rate must be from 0 to 1, got {margin_rate}", field="margin_rate"
            )
        profit = rows["spend"].to_numpy(dtype=float) * margin_rate
    elif "margin" in rows.columns:
        profit = rows["margin"].to_numpy(dtype=float)
    else:
        raise InvalidInputError(
            "the outcomes have no margin column: give a margin rate", field="margin_rate"
        )
    frame = pd.DataFrame(
        {
            "arm": treatment.to_numpy(),
            "retained": rows["retained"].to_numpy(dtype=bool),
            "spend": rows["spend"].to_numpy(dtype=float),
            "profit": np.nan_to_num(profit, nan=0.0),
            "cost": (
                rows["cost"].to_numpy(dtype=float)
                if "cost" in rows.columns
                else np.zeros(len(rows))
            ),
        }
    )
    frame["cost"] = frame["cost"].fillna(0.0)
    offers = sorted(a for a in frame["arm"].unique() if a != CONTROL)
    is_control = (frame["arm"] == CONTROL).to_numpy()
    control = frame[is_control]
    planned = _planned_controls(rows, is_control)
    out = []
    for offer in offers:
        group = frame[frame["arm"] == offer]
        if planned is None:
            out.append(_arm_row(offer, group, control, level, ALL_CONTROL))
            continue
        own = control[planned == offer]
        if own.empty:
            raise InvalidInputError(
                f"{where}: no control customer was held out from offer {offer!r} "
                "(planned_offer), so its effect cannot be measured; the control rows name "
                + ", ".join(sorted(set(planned.tolist()))),
                field="planned_offer",
            )
        out.append(_arm_row(offer, group, own, level, f"held out from {offer}"))
    if len(offers) > 1:
        out.append(_arm_row(ALL_OFFERS, frame[~is_control], control, level, ALL_CONTROL))
    out.append(_arm_row(CONTROL, control, None, level))
    return pd.DataFrame(out)


def _planned_controls(rows: pd.DataFrame, is_control: np.ndarray) -> np.ndarray | None:
    """The offer each control row was held out from, when every control row names one
    (``planned_offer``); else None (every offer is compared with the whole control group)."""
    if "planned_offer" not in rows.columns:
        return None
    named = rows["planned_offer"].to_numpy(dtype=object)[is_control]
    if len(named) == 0 or pd.isna(named).any():
        return None
    return named.astype(str)


def _arm_row(
    name: str,
    group: pd.DataFrame,
    control: pd.DataFrame | None,
    level: float,
    control_group: str = ALL_CONTROL,
) -> dict[str, Any]:
    n, k = len(group), int(group["retained"].sum())
    low, high = wilson_interval(k, n, level)
    spend, spend_low, spend_high = mean_interval(group["spend"], level)
    row: dict[str, Any] = {
        "arm": name,
        "customers": n,
        "retained": k,
        "retention_rate": k / n if n else math.nan,
        "retention_rate_low": low,
        "retention_rate_high": high,
        "mean_spend": spend,
        "mean_spend_low": spend_low,
        "mean_spend_high": spend_high,
    }
    if control is None:
        return row
    n0, k0 = len(control), int(control["retained"].sum())
    d, d_low, d_high = newcombe_difference(k, n, k0, n0, level)
    s, s_low, s_high = welch_difference(group["spend"], control["spend"], level)
    p, p_low, p_high = welch_difference(group["profit"], control["profit"], level)
    cost = float(group["cost"].sum())
    profit = [v * n - cost for v in (p, p_low, p_high)]
    roi = [v / cost if cost > 0 else math.nan for v in profit]
    row.update(
        control_group=control_group,
        control_customers=n0,
        retention_diff=d,
        retention_diff_low=d_low,
        retention_diff_high=d_high,
        incremental_customers=d * n,
        spend_diff=s,
        spend_diff_low=s_low,
        spend_diff_high=s_high,
        cost=cost,
        incremental_profit=profit[0],
        incremental_profit_low=profit[1],
        incremental_profit_high=profit[2],
        roi=roi[0],
        roi_low=roi[1],
        roi_high=roi[2],
    )
    return row


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None or pd.isna(value) else format(value, spec)


def _span(row: pd.Series, name: str, spec: str, scale: float = 1.0) -> str:
    value, low, high = (float(row.get(f"{name}{s}", math.nan)) for s in ("", "_low", "_high"))
    if math.isnan(value):
        return "n/a"
    text = _fmt(value * scale, spec)
    if math.isnan(low):
        return text
    return f"{text} [{_fmt(low * scale, spec)}, {_fmt(high * scale, spec)}]"


def _compared_with(row: pd.Series) -> str:
    group = row.get("control_group")
    if not isinstance(group, str):  # a table made before control groups were named
        group = ALL_CONTROL
    n = row.get("control_customers")
    return group if n is None or pd.isna(n) else f"{group} ({int(n):,})"


def format_report(table: pd.DataFrame, campaign_id: str | None = None) -> str:
    """The report as text: per arm, then the differences from control with 95 % intervals."""
    title = f"campaign {campaign_id}" if campaign_id is not None else "campaign"
    lines = [f"{title}: treated vs control (95 % intervals)"]
    shown = pd.DataFrame(
        {
            "arm": table["arm"],
            "customers": table["customers"].map(lambda v: f"{int(v):,}"),
            "retention %": [_span(r, "retention_rate", ".1f", 100) for _, r in table.iterrows()],
            "mean spend": [_span(r, "mean_spend", ",.2f") for _, r in table.iterrows()],
        }
    )
    lines.append(shown.to_string(index=False))
    treated = table[table["arm"] != CONTROL]
    if not treated.empty:
        diffs = pd.DataFrame(
            {
                "arm": treated["arm"],
                "compared with": [_compared_with(r) for _, r in treated.iterrows()],
                "retention diff (points)": [
                    _span(r, "retention_diff", "+.1f", 100) for _, r in treated.iterrows()
                ],
                "spend diff": [_span(r, "spend_diff", "+,.2f") for _, r in treated.iterrows()],
                "cost": treated["cost"].map(lambda v: f"{v:,.2f}"),
                "incremental profit": [
                    _span(r, "incremental_profit", "+,.2f") for _, r in treated.iterrows()
                ],
                "ROI": [_span(r, "roi", "+.2f") for _, r in treated.iterrows()],
            }
        )
        lines.append("")
        lines.append(diffs.to_string(index=False))
    lines.append("")
    lines.append(f"retention difference: {RETENTION_METHOD}; spend and profit: {SPEND_METHOD}")
    return "\n".join(lines)


def plot_campaign(table: pd.DataFrame, path: str | Path) -> Path:
    """Bars of the retention and spend differences from control per treated arm, with their
    95 % intervals as error bars, saved as PNG."""
    from training.evaluate import finish  # late: plotting is only needed for this chart

    treated = table[table["arm"] != CONTROL].reset_index(drop=True)
    fig = Figure(figsize=(9, 4))
    axes = fig.subplots(1, 2)
    panels = (
        ("retention_diff", 100.0, "retention vs control (points)"),
        ("spend_diff", 1.0, "mean spend vs control"),
    )
    x = np.arange(len(treated))
    for ax, (name, scale, label) in zip(axes, panels, strict=True):
        value = treated[name].to_numpy(dtype=float) * scale
        low = treated[f"{name}_low"].to_numpy(dtype=float) * scale
        high = treated[f"{name}_high"].to_numpy(dtype=float) * scale
        errors = np.nan_to_num(np.vstack([value - low, high - value]), nan=0.0)
        ax.bar(x, value, yerr=errors, capsize=4, color="tab:blue")
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(x, treated["arm"].tolist(), rotation=20)
        finish(fig, ax, ylabel=label)
    fig.savefig(path)
    return Path(path)


def _metric_name(arm: str, name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", f"{arm}_{name}".replace(" ", "_"))


def log_report(
    table: pd.DataFrame,
    chart: Path,
    params: dict[str, Any],
) -> str:
    """Log the report to an MLflow run of the configured experiment: the parameters, every
    number of the table as a metric (``<arm>_<column>``), the table (CSV) and the chart.
    Returns the run id."""
    import tempfile

    import mlflow

    from training import tracking

    tracking.setup()
    name = f"campaign report {params.get('campaign_id', '')}".strip()
    with mlflow.start_run(run_name=name) as run:
        mlflow.set_tag("cvm.report", "campaign")
        mlflow.log_params({k: v for k, v in params.items() if v is not None})
        metrics = {}
        for record in table.to_dict(orient="records"):
            for column, value in record.items():
                if isinstance(value, str) or value is None or pd.isna(value):
                    continue  # the arm and control-group names
                metrics[_metric_name(str(record["arm"]), str(column))] = float(value)
        mlflow.log_metrics(metrics)
        with tempfile.TemporaryDirectory() as folder:
            csv = Path(folder) / "campaign_report.csv"
            table.to_csv(csv, index=False)
            mlflow.log_artifact(str(csv), "campaign_report")
        mlflow.log_artifact(str(chart), "campaign_report")
        return str(run.info.run_id)


def report_from_files(
    campaigns_path: str | Path,
    transactions: pd.DataFrame,
    campaign_id: str,
    *,
    window_days: int = 60,
    margin_rate: float | None = None,
    as_of: Any = None,
) -> pd.DataFrame:
    """:func:`report_from_frames` of a campaigns file (read by
    :func:`training.campaigns.load_campaigns`)."""
    from training.campaigns import load_campaigns

    campaigns, _ = load_campaigns(campaigns_path)
    return report_from_frames(
        campaigns,
        transactions,
        campaign_id,
        window_days=window_days,
        margin_rate=margin_rate,
        as_of=as_of,
    )


def report_from_frames(
    campaigns: pd.DataFrame,
    transactions: pd.DataFrame,
    campaign_id: str,
    *,
    window_days: int = 60,
    margin_rate: float | None = None,
    as_of: Any = None,
) -> pd.DataFrame:
    """:func:`campaign_report` of one campaign of ``campaigns`` (a frame of
    :func:`training.campaigns.load_campaigns`), its outcomes from ``transactions``
    (``training.campaigns``).

    ``as_of``: the last day the transactions cover (default: the last purchase's). A
    campaign sent after it is an error (it has no outcomes yet); one whose response window
    ends after it is reported on the part of the window the data cover, and
    ``table.attrs["warnings"]`` says so."""
    from models.features import end_of_day
    from training.campaigns import campaign_outcomes

    ids = campaigns["campaign_id"].astype(str)
    _select(campaigns.assign(retained=False, spend=0.0), campaign_id)  # a clear error first
    chosen = campaigns[ids == str(campaign_id)]
    last = pd.Timestamp(as_of) if as_of is not None else None
    if last is None and len(transactions):
        last = pd.to_datetime(transactions["timestamp"]).max()
    warnings: list[str] = []
    if last is not None:
        covered = end_of_day(last)
        sent = pd.to_datetime(chosen["sent_at"])
        if sent.min() >= covered:
            raise InvalidInputError(
                f"campaign {campaign_id!r} was sent on {sent.min().date()}, after the last day "
                f"of the transactions ({covered.date()}): there are no outcomes to measure yet",
                field="campaign_id",
            )
        window_end = sent.max() + pd.Timedelta(days=int(window_days))
        if window_end > covered:
            warnings.append(
                f"the {window_days}-day response window of campaign {campaign_id!r} ends on "
                f"{window_end.date()}, after the last day of the transactions "
                f"({covered.date()}): retention and spend cover only part of the window and "
                "will rise as the rest arrives"
            )
    outcomes = campaign_outcomes(
        chosen, transactions, window_days=window_days, margin_rate=margin_rate
    )
    table = campaign_report(outcomes, campaign_id)
    table.attrs["warnings"] = warnings
    return table


__all__ = [
    "ALL_CONTROL",
    "ALL_OFFERS",
    "CONTROL",
    "RETENTION_METHOD",
    "SPEND_METHOD",
    "campaign_report",
    "format_report",
    "log_report",
    "mean_interval",
    "newcombe_difference",
    "plot_campaign",
    "report_from_files",
    "report_from_frames",
    "wilson_interval",
    "welch_difference",
]
