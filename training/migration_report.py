"""``cvm report migration``: how customers moved between segments from one date to another,
and the customer equity that movement implies (:mod:`models.migration`); also the heat map
and the label-migration table the retrain comparison logs (champion → challenger labels).

The labels are those ``cvm score`` gives: the champion segmentation (with the champion CLV
model's P(alive), which the lifecycle stage reads) applied to the transactions as of each
date. One period is the time between the two dates. A customer whose ``churn_date`` in the
customer table is on or before a date is :data:`~models.migration.GONE` at that date.

The reward of a state is the mean profit per customer earned in the period (between the
dates) by the customers in that state at the first date: amount − cost; purchases without a
cost at the margin of those with one; without a cost column, the revenue (× ``margin`` when
given, which then replaces the costs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.customer_view import segment_frame
from models.exceptions import CVMError
from models.features import end_of_day, summarize
from models.migration import GONE, NEW, CustomerMigration, per_period_rate, state_rewards
from models.segments.schemes import SCHEME_COLUMNS

# ``--by`` choice → the segmentation scheme whose labels are the states ("cluster": the
# behaviour clusters' stable ids).
MIGRATION_SCHEMES: dict[str, str] = {
    "rfm": "rfm",
    "value_matrix": "value_matrix",
    "lifecycle": "lifecycle",
    "nine_grid": "nine_grid",
    "cluster": "behaviour",
}


@dataclass
class MigrationReport:
    """One migration between two dates, with its equity projection."""

    by: str
    start: pd.Timestamp
    end: pd.Timestamp
    period_days: int
    annual_discount_rate: float
    discount_rate: float  # per period
    periods: int
    model: CustomerMigration
    reward: pd.Series  # per customer per period, by state
    reward_basis: str
    equity: pd.Series  # per customer, by starting state
    customers_now: pd.Series  # by state at ``end``
    base_equity: float
    distribution: pd.DataFrame  # expected customers by state after t periods from ``end``
    cluster_names: dict[str, str]

    def equity_table(self) -> pd.DataFrame:
        """By state: customers at the end date, the reward per period, the equity per
        customer and in total."""
        table = pd.DataFrame(
            {
                "customers_now": self.customers_now.astype(int),
                "reward_per_period": self.reward,
                "equity_per_customer": self.equity,
            }
        )
        table["equity"] = table["customers_now"] * table["equity_per_customer"]
        table.index.name = "state"
        return table


def state_order(segmentation: Any, by: str, seen: set[str]) -> list[str]:
    """The states of ``by``: the scheme's labels in the fitted model's order, then labels seen
    in the data beyond them (e.g. ``other`` with a partial RFM table), sorted."""
    known = [str(label) for label in segmentation.segment_sizes_[MIGRATION_SCHEMES[by]]]
    return [*known, *sorted(seen - set(known) - {GONE})]


def labels_at(
    models: dict[str, Any],
    transactions: pd.DataFrame,
    customers: pd.DataFrame | None,
    date: pd.Timestamp,
    by: str,
) -> pd.Series:
    """Each customer's ``by`` label as of ``date`` (text; customers with a purchase by then),
    :data:`GONE` for those whose ``churn_date`` has passed."""
    summary = summarize(transactions, date)
    column = SCHEME_COLUMNS[MIGRATION_SCHEMES[by]]
    labels = segment_frame(models, summary)[column].astype(str)
    labels.index = summary.index
    if customers is not None and "churn_date" in customers.columns:
        churned = pd.to_datetime(customers["churn_date"], errors="coerce")
        gone = customers.loc[churned.notna() & (churned <= end_of_day(date)), "customer_id"]
        labels = labels.astype(object)
        labels[labels.index.isin(gone.astype(str))] = GONE
    return labels


def period_profit(
    transactions: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    margin: float | None = None,
) -> tuple[pd.Series, str]:
    """Profit per customer from the day after ``start`` to ``end`` (inclusive), and how it
    was measured (see the module text)."""
    stamps = pd.to_datetime(transactions["timestamp"])
    window = transactions[(stamps > end_of_day(start)) & (stamps <= end_of_day(end))]
    ids = window["customer_id"].astype(str)
    amount = window["amount"].astype(float)
    if margin is not None:
        return (amount * margin).groupby(ids).sum(), f"revenue x margin {margin:g}"
    if "cost" not in window.columns or window["cost"].notna().sum() == 0:
        return amount.groupby(ids).sum(), "revenue (no costs in the data: --margin sets one)"
    cost = window["cost"].astype(float)
    known = cost.notna()
    rate = 1.0 - cost[known].sum() / amount[known].sum() if amount[known].sum() else 1.0
    profit = (amount - cost).where(known, amount * rate)
    basis = "profit (amount - cost)"
    if not known.all():
        basis += f"; {int((~known).sum()):,} purchases without a cost at margin {rate:.3f}"
    return profit.groupby(ids).sum(), basis


def check_order(start: Any, end: Any) -> None:
    """Both dates given, the first before the second."""
    if start is None or end is None:
        raise CVMError("cvm report migration needs --from DATE and --to DATE (YYYY-MM-DD)")
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if end <= start:
        raise CVMError(
            f"--to {end.date()} is not after --from {start.date()}: give the earlier date as --from"
        )


def check_in_data(
    start: Any, end: Any, transactions: pd.DataFrame, data_end: Any, source: Any
) -> None:
    """Both dates within the data: from its first purchase to ``data_end`` (the last
    purchase, or ``--as-of``); ``source``: the transactions file, named in the message."""
    check_order(start, end)
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    first = pd.to_datetime(transactions["timestamp"]).min().normalize()
    last = pd.Timestamp(data_end).normalize()
    if start < first:
        raise CVMError(
            f"--from {start.date()} is before the first purchase in {source} "
            f"({first.date()}): no customer has a label then; choose a date from "
            f"{first.date()} on"
        )
    if end > last:
        raise CVMError(
            f"--to {end.date()} is after the end of the data in {source} ({last.date()}): "
            "the customers would look idle through days with no data; choose a date up to "
            f"{last.date()}"
        )


def migration_report(
    models: dict[str, Any],
    transactions: pd.DataFrame,
    customers: pd.DataFrame | None,
    start: pd.Timestamp,
    end: pd.Timestamp,
    by: str,
    *,
    periods: int = 4,
    annual_discount_rate: float = 0.10,
    margin: float | None = None,
) -> MigrationReport:
    """The migration from ``start`` to ``end`` by the ``by`` labels of the champion models,
    and the equity over ``periods`` periods of ``end − start`` days."""
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    before = labels_at(models, transactions, customers, start, by)
    after = labels_at(models, transactions, customers, end, by)
    states = state_order(models["segmentation"], by, set(before) | set(after))
    model = CustomerMigration(states=states).fit(before, after)
    profit, basis = period_profit(transactions, start, end, margin)
    reward = state_rewards(before, profit, model.states_)
    period_days = int((end - start).days)
    rate = per_period_rate(annual_discount_rate, period_days)
    customers_now = after.value_counts().reindex(list(model.states_), fill_value=0)
    names: dict[str, str] = {}
    if by == "cluster":
        clusters = models["segmentation"].clusters_
        names = {str(k): str(v) for k, v in clusters.names_.items()}
    return MigrationReport(
        by=by,
        start=start,
        end=end,
        period_days=period_days,
        annual_discount_rate=annual_discount_rate,
        discount_rate=rate,
        periods=periods,
        model=model,
        reward=reward,
        reward_basis=basis,
        equity=model.equity(reward, periods, rate),
        customers_now=customers_now,
        base_equity=model.base_equity(customers_now, reward, periods, rate),
        distribution=model.distribution(customers_now, periods),
        cluster_names=names,
    )


def _percent_table(matrix: pd.DataFrame) -> str:
    return matrix.map(lambda v: f"{100 * v:.1f}%").to_string()


def _total(counts: pd.DataFrame) -> int:
    return int(counts.to_numpy().sum())


def format_report(report: MigrationReport) -> str:
    """The report as text: the matrix (shares and counts), the equity by state, the base's
    equity and the expected distribution."""
    m = report.model
    start, end = report.start.date(), report.end.date()
    segments = [s for s in m.states_ if s != GONE]
    c = m.counts_
    labelled, left = _total(c.loc[segments]), _total(c.loc[segments, [GONE]])
    new, new_gone = _total(c.loc[[NEW]]), _total(c.loc[[NEW], [GONE]])
    already = _total(c.loc[[GONE]])
    lines = [
        f"Customer migration by {report.by}: {start} -> {end} (one period = "
        f"{report.period_days} days)",
        f"{labelled:,} customers in a segment at {start}"
        + (f" ({already:,} already gone)" if already else "")
        + f": {100 * m.kept_share_:.1f}% kept their label, {left:,} gone by {end}; "
        f"{new:,} new customers by {end}"
        + (f" ({new_gone:,} of them gone again)" if new_gone else ""),
    ]
    if report.cluster_names:
        lines.append(
            "clusters: " + "; ".join(f"{k} = {v}" for k, v in report.cluster_names.items())
        )
    lines += [
        "",
        f"Transition probabilities (rows: label at {start}; columns: label at {end}):",
        _percent_table(m.matrix_),
    ]
    if m.unobserved_:
        lines.append(
            f"no customer was in {', '.join(map(str, m.unobserved_))} at {start}: those rows assume "
            "customers stay"
        )
    lines += ["", "Customers (rows: from; (new) = not yet a customer):", m.counts_.to_string()]
    lines += [
        "",
        f"Equity over {report.periods} periods after this one (discount "
        f"{100 * report.discount_rate:.2f}% per period = {100 * report.annual_discount_rate:g}% "
        f"a year; reward per period = mean {report.reward_basis} of the state's customers "
        f"from {start} to {end}):",
        report.equity_table().to_string(
            formatters={
                "customers_now": "{:,}".format,
                "reward_per_period": "{:,.2f}".format,
                "equity_per_customer": "{:,.2f}".format,
                "equity": "{:,.2f}".format,
            }
        ),
        f"customer base equity (customers at {end} x equity per customer): "
        f"{report.base_equity:,.2f}",
        "",
        f"Expected customers by state after t periods from {end}:",
        report.distribution.to_string(float_format=lambda v: f"{v:,.1f}"),
    ]
    return "\n".join(lines)


def plot_transitions(
    model: CustomerMigration, path: str | Path, title: str, rows: str, columns: str
) -> Path:
    """A heat map of the transition probabilities (each cell: the share of the row's
    customers, in percent; each row label: its customers), saved as PNG. Rows no customer
    started in are grey."""
    matrix = model.matrix_
    n = len(matrix)
    held = model.counts_.loc[list(matrix.index)].sum(axis=1)
    shares = matrix.to_numpy(dtype=float).copy()
    shares[held.to_numpy() == 0] = np.nan  # no customers: no observed row
    size = max(5.0, 0.6 * n + 2.5)
    fig = Figure(figsize=(size + 1.0, size))
    ax = fig.subplots()
    cmap = matplotlib.colormaps["Blues"].with_extremes(bad="#dddddd")
    image = ax.imshow(np.ma.masked_invalid(shares), cmap=cmap, vmin=0.0, vmax=1.0)
    ax.set_xticks(range(n), [str(c) for c in matrix.columns], rotation=45, ha="right")
    ax.set_yticks(range(n), [f"{r} ({int(k):,})" for r, k in zip(matrix.index, held, strict=True)])
    for i in range(n):
        for j in range(n):
            value = shares[i, j]
            if np.isfinite(value) and value > 0:
                ax.text(
                    j,
                    i,
                    f"{100 * value:.0f}" if value >= 0.005 else "<1",
                    ha="center",
                    va="center",
                    fontsize=7 if n > 8 else 9,
                    color="white" if value > 0.6 else "black",
                )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the row's customers")
    ax.set_title(title)
    ax.set_xlabel(columns)
    ax.set_ylabel(f"{rows} (customers)")
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def check_csv(path: str | Path) -> Path:
    """The ``--csv`` file name, refused unless it ends in .csv."""
    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise CVMError(f"--csv {path}: use a file name ending in .csv")
    return path


def write_tables(report: MigrationReport, path: str | Path) -> tuple[Path, Path]:
    """The transitions in long form (``from_state``, ``to_state``, ``customers``,
    ``probability``) to ``path``, and the equity table beside it (``<name>_equity.csv``)."""
    path = check_csv(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    report.model.transitions().to_csv(path, index=False)
    equity = path.with_name(f"{path.stem}_equity.csv")
    report.equity_table().reset_index().to_csv(equity, index=False)
    return path, equity


def label_migrations(
    champions: dict[str, Any], challengers: dict[str, Any], summary: pd.DataFrame
) -> dict[str, CustomerMigration]:
    """For each ``--by`` scheme, the migration from the champion's labels to the
    challenger's on the same customers (``summary``, as of one date), each side labelling
    with its own segmentation and CLV models (as ``cvm score`` would)."""
    old = segment_frame(champions, summary)
    new = segment_frame(challengers, summary)
    out = {}
    for by, scheme in MIGRATION_SCHEMES.items():
        column = SCHEME_COLUMNS[scheme]
        before = pd.Series(old[column].astype(str).to_numpy(), index=summary.index)
        after = pd.Series(new[column].astype(str).to_numpy(), index=summary.index)
        seen = set(before) | set(after)
        states = list(
            dict.fromkeys(
                state_order(champions["segmentation"], by, seen)
                + state_order(challengers["segmentation"], by, seen)
            )
        )
        out[by] = CustomerMigration(states=states).fit(before, after)
    return out


__all__ = [
    "MIGRATION_SCHEMES",
    "MigrationReport",
    "check_csv",
    "check_in_data",
    "check_order",
    "format_report",
    "label_migrations",
    "labels_at",
    "migration_report",
    "period_profit",
    "plot_transitions",
    "state_order",
    "write_tables",
]
