"""Reports over a posted batch of customers: churn KPIs by period and segment."""

from __future__ import annotations

import math
from datetime import date
from typing import Any, Literal

import pandas as pd
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from models.churn.kpi import COUNT_COLUMNS, churn_table, period_boundaries
from models.churn.segment_kpi import NO_HISTORY, churn_by_segment
from models.exceptions import InvalidInputError
from service.fast_scoring import NeedsReference
from service.fields import Day
from service.model_store import ModelStore
from service.routers.customers import scoring_route
from service.schemas import REQUEST_CONFIG, ScoreRequest
from service.scoring import RequestNotes, transaction_frame

router = APIRouter(prefix="/v1/reports", tags=["reports"])

# models.churn.segment_kpi.SEGMENT_SCHEMES as a type (a test holds the two equal)
SchemeName = Literal["value_matrix", "rfm", "lifecycle", "nine_grid", "cluster"]

# More periods than this are a mistake (daily periods over years), not a report: each period
# with a segment scheme costs one scoring of the batch.
MAX_PERIODS = 60


class ChurnReportRequest(ScoreRequest):
    """Customers with their purchases, and how to cut the time into periods."""

    by: SchemeName | None = Field(
        default=None,
        description="Segment scheme to break the rate down by. Each customer is in the segment "
        "the served models give their purchases up to the start of each period (a label taken "
        "at the end would leak the churn). Default: every customer together only.",
    )
    freq: str = Field(
        default="MS",
        min_length=1,
        max_length=10,
        description="Period boundaries: MS month starts, QS quarters, YS years, W weeks (a "
        "pandas frequency).",
    )
    start: Day | None = Field(
        default=None,
        description="The earliest first period boundary (YYYY-MM-DD); default: 12 months "
        "before as_of.",
    )
    active_days: int = Field(
        default=365,
        ge=1,
        le=3650,
        description="A customer counts as active within this many days after a purchase.",
    )
    margin: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="Profit margin: churn_loss = lost_revenue × margin (null: no churn_loss).",
    )

    model_config = ConfigDict(
        **REQUEST_CONFIG,
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2025-12-31",
                    "by": "value_matrix",
                    "freq": "QS",
                    "start": "2025-01-01",
                    "margin": 0.3,
                    "customers": [
                        {
                            "customer_id": "C0001",
                            "transactions": [
                                {"timestamp": "2024-11-15T10:00:00", "amount": 120.0, "cost": 80.0},
                                {"timestamp": "2025-05-02T18:30:00", "amount": 95.5},
                            ],
                        }
                    ],
                }
            ]
        },
    )


class ChurnPeriodOut(BaseModel):
    """One segment in one period."""

    segment: str = Field(
        description=f"A label of the scheme, 'all' for every customer, '{NO_HISTORY}' for "
        "customers with no purchase by the period's start."
    )
    period_start: date
    period_end: date
    customers_start: int = Field(description="Active at the period's start.")
    new_customers: int = Field(description="First purchase in the period.")
    reactivated_customers: int = Field(description="Bought before, lapsed, came back.")
    customers_end: int = Field(description="Active at the period's end.")
    lost_customers: int = Field(description="Active at the start, not at the end.")
    churn_rate: float | None = Field(
        description="lost / customers_end = [start − (end − new − reactivated)] / end "
        "(null: no customer at the end)."
    )
    conventional_churn_rate: float | None = Field(description="lost / customers_start.")
    churn_rate_change: float | None = Field(
        description="churn_rate − the segment's previous churn_rate (rate units)."
    )
    churn_rate_change_pct: float | None = Field(
        description="That change in percent of the previous rate (null: first period, or "
        "the previous rate was 0)."
    )
    lost_revenue: float = Field(
        description="The lost customers' revenue in the active_days before the period (currency)."
    )
    churn_loss: float | None = Field(description="lost_revenue × margin (null: no margin sent).")


class ChurnReportResponse(BaseModel):
    as_of: date = Field(description="The end of the last period.")
    by: str | None
    freq: str
    start: date = Field(description="The first period boundary.")
    active_days: int
    margin: float | None
    model_versions: dict[str, str] = Field(
        description="The segmentation and CLV versions that labelled the customers (empty "
        "without by)."
    )
    periods: list[ChurnPeriodOut] = Field(
        description="'all' first, then each segment; each segment's periods in order."
    )
    warnings: list[str] = Field(default_factory=list)


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The table's rows as the answer's ``periods``: counts as integers, rates and money as
    numbers or null."""
    counts = [c for c in table.columns if c in COUNT_COLUMNS]
    dates = ["period_start", "period_end"]
    numbers = [c for c in table.columns if c not in (*counts, *dates, "segment")]
    columns: dict[str, list[Any]] = {
        "segment": [str(v) for v in table["segment"].tolist()],
        **{c: [d.date() for d in pd.to_datetime(table[c])] for c in dates},
        **{c: [int(v) for v in table[c].to_numpy(dtype="int64")] for c in counts},
        **{c: [_number(v) for v in table[c].to_numpy(dtype=float)] for c in numbers},
    }
    rows = [{c: values[i] for c, values in columns.items()} for i in range(len(table))]
    for row in rows:
        row.setdefault("churn_loss", None)
    return rows


def _check_customers(body: ChurnReportRequest) -> None:
    """422 for customers a churn report cannot place in periods (a summary has no purchase
    dates) and for repeated customer ids."""
    summaries = [i for i, c in enumerate(body.customers) if c.transactions is None]
    if summaries:
        listed = ", ".join(f"{i} ({body.customers[i].customer_id})" for i in summaries[:5])
        more = f" and {len(summaries) - 5:,} more" if len(summaries) > 5 else ""
        raise InvalidInputError(
            f"{len(summaries):,} customer(s) sent a summary, not transactions: a churn report "
            f"needs each customer's purchase dates to place them in periods (customers "
            f"{listed}{more}); send their transactions, or leave them out",
            field=f"customers.{summaries[0]}.transactions",
            rows=summaries,
        )
    seen: dict[str, int] = {}
    for i, customer in enumerate(body.customers):
        if customer.customer_id in seen:
            raise InvalidInputError(
                f"customer_id '{customer.customer_id}' appears more than once (customers "
                f"{seen[customer.customer_id]} and {i})",
                field=f"customers.{i}.customer_id",
                rows=[seen[customer.customer_id], i],
            )
        seen[customer.customer_id] = i


@scoring_route(
    router,
    "/churn",
    ChurnReportRequest,  # type: ignore[arg-type]
    ChurnReportResponse,
    "Churn rate, conventional rate, change and loss by period (and segment) for a batch",
)
def churn_report(
    store: ModelStore, body: ChurnReportRequest, as_of: date, notes: RequestNotes
) -> dict[str, Any]:
    if not isinstance(body, ChurnReportRequest):  # read by the fast path, which knows no report
        raise NeedsReference
    _check_customers(body)
    end = pd.Timestamp(as_of)
    begin = pd.Timestamp(body.start) if body.start else end - pd.DateOffset(months=12)
    dates = period_boundaries(begin, end, body.freq, max_periods=MAX_PERIODS)
    tx = transaction_frame(list(enumerate(body.customers)), notes)
    versions: dict[str, str] = {}
    if body.by is None:
        table = churn_table(
            begin,
            end,
            freq=body.freq,
            transactions=tx,
            active_days=body.active_days,
            margin=body.margin,
        )
    else:
        loaded = store.snapshot()
        table = churn_by_segment(
            {family: loaded[family].estimator for family in ("segmentation", "clv")},
            tx,
            dates,
            by=body.by,
            active_days=body.active_days,
            margin=body.margin,
        )
        versions = {family: loaded[family].version for family in ("segmentation", "clv")}
    return {
        "as_of": as_of,
        "by": body.by,
        "freq": body.freq,
        "start": dates[0].date(),
        "active_days": body.active_days,
        "margin": body.margin,
        "model_versions": versions,
        "periods": _rows(table),
    }
