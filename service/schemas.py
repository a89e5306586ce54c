"""Request and response bodies (pydantic), with units in the field descriptions."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.dataclasses import dataclass

from models.churn.risk import BAND_NAMES
from models.customer_view import AUDIENCE_COLUMNS
from service.fields import (
    AsOf,
    AttributeName,
    AttributeValue,
    Channels,
    Days,
    NonNegative,
    Number,
    PurchaseDays,
    Share,
    Text,
    Timestamp,
)

# The customer requests' settings: unknown fields refused; pydantic keeps parsed strings in a
# process-wide cache by default, so the customer ids of a large request would pin its freed
# memory (cache the field names only).
REQUEST_CONFIG = ConfigDict(extra="forbid", cache_strings="keys")


# A pydantic dataclass with slots, not a model: a request holds up to millions of these, and a
# model instance costs about 700 bytes (its __dict__ and fields-set), this about 150.
@dataclass(slots=True, config=ConfigDict(extra="forbid"))
class Transaction:
    """One purchase."""

    timestamp: Timestamp = Field(
        description="Time of the purchase (ISO 8601); same-day purchases are merged."
    )
    amount: NonNegative = Field(description="Revenue of the purchase (currency).")
    cost: Number | None = Field(default=None, description="Direct cost (currency).")
    channel: Text | None = Field(default=None, description="Sales channel, e.g. store, online.")


class Summary(BaseModel):
    """Per-customer summary features (as produced by training's feature function)."""

    model_config = ConfigDict(extra="forbid")

    frequency: PurchaseDays = Field(description="Repeat purchases: distinct purchase days − 1.")
    recency: Days = Field(description="Days from the first to the last purchase.")
    T: Days = Field(description="Days from the first purchase to as_of (customer age).")
    monetary_value: NonNegative = Field(
        description="Mean amount of the repeat purchase days (currency); 0 when frequency is 0."
    )
    total_revenue: NonNegative | None = Field(
        default=None,
        description="Revenue to date (currency); default monetary_value × (frequency + 1).",
    )
    margin_rate: Number | None = Field(
        default=None,
        description="Profit / revenue, e.g. 0.3: the customer's profit (value matrix, churn "
        "features, CLV when the models learned margins from costs) is revenue × this rate, as "
        "from purchases with costs.",
    )
    n_channels: Channels | None = Field(default=None, description="Distinct sales channels used.")
    activity_trend: Share | None = Field(
        default=None,
        description="(recent − earlier) / (recent + earlier) purchase days over the last two 90-day windows.",
    )
    spend_trend: Share | None = Field(default=None, description="The same for revenue.")
    revenue_12m: NonNegative | None = Field(
        default=None,
        description="Revenue in the 365 days up to as_of (currency): the basis of the current "
        "value. Default: total revenue when T < 365 (every purchase is that recent), 0 when "
        "T − recency ≥ 365 (none is), else unknown (the current value is then null).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Summary:
        if self.recency > self.T:
            raise ValueError(
                "recency (days from first to last purchase) cannot exceed T (days since first purchase)"
            )
        if self.frequency == 0 and self.recency > 0:
            raise ValueError("recency must be 0 when frequency is 0")
        if (
            self.revenue_12m is not None
            and self.total_revenue is not None
            and self.revenue_12m > self.total_revenue
        ):
            raise ValueError(
                f"revenue_12m ({self.revenue_12m}) cannot exceed total_revenue "
                f"({self.total_revenue})"
            )
        return self


class CustomerIn(BaseModel):
    """A customer to score: raw ``transactions`` or a ``summary``, plus optional attributes."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={  # exactly one of the two (checked by _one_source)
            "oneOf": [
                {
                    "required": ["transactions"],
                    "properties": {"transactions": {"type": "array"}, "summary": {"type": "null"}},
                },
                {
                    "required": ["summary"],
                    "properties": {"summary": {"type": "object"}, "transactions": {"type": "null"}},
                },
            ]
        },
    )

    customer_id: str = Field(min_length=1, max_length=200)
    transactions: list[Transaction] | None = Field(default=None, min_length=1, max_length=100_000)
    summary: Summary | None = None
    attributes: dict[AttributeName, AttributeValue] | None = Field(
        default=None,
        description="Customer-table attributes used by the churn model (e.g. region, age).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> CustomerIn:
        if (self.transactions is None) == (self.summary is None):
            raise ValueError("give exactly one of 'transactions' or 'summary'")
        return self


class ScoreRequest(BaseModel):
    """Customers to score; a single customer is a list of one."""

    as_of: AsOf | None = Field(
        default=None,
        description="Date the scores are as of; transactions after it are ignored. Default: "
        'today (UTC), with a warning when the latest purchase sent is long before it. "model": '
        "the served models' data date plus the days since they were trained (for data that "
        "ends when the training data ended).",
    )
    keep_duplicates: bool = Field(
        default=False,
        strict=True,
        description="Keep purchases identical to an earlier one of the same customer (same "
        "time, amount, cost and channel). Default: drop them, as training does (cvm "
        "--keep-duplicates keeps them there); the answer's warnings say what was dropped.",
    )
    customers: list[CustomerIn] = Field(min_length=1)

    model_config = ConfigDict(
        **REQUEST_CONFIG,
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2025-12-31",
                    "customers": [
                        {
                            "customer_id": "C0001",
                            "transactions": [
                                {
                                    "timestamp": "2025-01-15T10:00:00",
                                    "amount": 120.0,
                                    "cost": 80.0,
                                    "channel": "store",
                                },
                                {
                                    "timestamp": "2025-06-02T18:30:00",
                                    "amount": 95.5,
                                    "channel": "online",
                                },
                                {
                                    "timestamp": "2025-11-20T12:00:00",
                                    "amount": 130.0,
                                    "channel": "store",
                                },
                            ],
                            "attributes": {"region": "north", "age": 41},
                        },
                        {
                            "customer_id": "C0002",
                            "summary": {
                                "frequency": 4,
                                "recency": 200,
                                "T": 300,
                                "monetary_value": 55.0,
                            },
                        },
                    ],
                }
            ]
        },
    )


class LabelOut(BaseModel):
    label: str
    name: str
    description: str
    actions: list[str]


class RFMOut(LabelOut):
    r_score: int = Field(description="Recency score 1–5 (5 = most recent).")
    f_score: int = Field(description="Frequency score 1–5.")
    m_score: int = Field(description="Monetary score 1–5.")
    code: str = Field(description="The three scores, e.g. '545'.")


class ValueMatrixOut(LabelOut):
    basis: str = Field(
        description="profit (from costs, or the summary's margin_rate), assumed_margin (no "
        "cost data: the margin learned at training) or missing."
    )


class ClusterOut(LabelOut):
    traits: list[str] = Field(description="The behaviour traits the cluster's name is made of.")


class NineGridOut(LabelOut):
    strategy: str = Field(
        description="keep_investing, develop_deeper, adjust_and_optimise or planned_exit."
    )
    value_tier: str = Field(
        description="low, mid or high: the training thirds of the value index (ranks on "
        "total revenue and margin rate)."
    )
    growth_tier: str = Field(
        description="declining, stable or growing: the training thirds of the purchase "
        "trend, the purchases the CLV model expects over its horizon against the customer's "
        "own past rate."
    )


class SegmentsOut(BaseModel):
    """The customer's label in every segmentation scheme."""

    rfm: RFMOut
    value_matrix: ValueMatrixOut
    behaviour: ClusterOut = Field(description="Behaviour cluster; label is the stable cluster id.")
    lifecycle: LabelOut
    nine_grid: NineGridOut


AHP_VALUE_INDEX = Field(
    default=None,
    description="AHP-weighted value index, 0–100: 100 × the weighted mean of the customer's "
    "percentiles on the value indicators against the training customers (the indicators, "
    "weights and consistency ratio are in the segmentation model card); null for a model "
    "trained without it, or when no indicator is known.",
)


def _risk_bands() -> str:
    """The bands as text, and where their thresholds come from."""
    return (
        f"{', '.join(BAND_NAMES)}: cut at quantiles of the served model's scores on the "
        "customers it was trained for (by default the lowest half low, the top fifth high); "
        "the thresholds are in GET /v1/segments (churn_risk) and GET /v1/models"
    )


class ChurnOut(BaseModel):
    probability: float = Field(description="P(no purchase within horizon_days), 0–1.")
    risk_band: str = Field(description=f"{_risk_bands()}.")
    horizon_days: int


class CLVOut(BaseModel):
    expected_purchases: float = Field(
        description="Expected repeat purchases within horizon_days (count)."
    )
    probability_alive: float = Field(description="P(the customer is still active), 0–1.")
    expected_spend: float = Field(description="Expected spend per purchase (currency).")
    clv: float = Field(description="Discounted expected profit within horizon_days (currency).")
    clv_lower: float | None = Field(
        description="Lower end of the 95 % interval from parameter uncertainty (currency)."
    )
    clv_upper: float | None = Field(description="Upper end of the 95 % interval (currency).")
    margin: float = Field(description="Profit margin applied to spend.")
    horizon_days: int
    discount_rate: float = Field(description="Annual discount rate.")


class ValueOut(BaseModel):
    """The customer's value in three parts, all profit (currency): revenue × ``margin`` for
    the past, the CLV for the future."""

    historical: float = Field(
        description="Profit to date: total revenue × margin. From a summary: total_revenue, "
        "else monetary_value × (frequency + 1), × margin."
    )
    current: float | None = Field(
        description="Profit in the last 12 months (the 365 days up to as_of): their revenue "
        "× margin. From a summary: revenue_12m × margin; without revenue_12m, the total when "
        "T < 365, 0 when T − recency ≥ 365, else null (not known)."
    )
    potential: float = Field(
        description="The CLV: discounted expected profit within the CLV horizon_days."
    )
    margin: float = Field(
        description="The margin of historical and current: the customer's own (from costs, or "
        "the summary's margin_rate), else the one the CLV model applies (clv.margin)."
    )


class ActionOut(BaseModel):
    action: str
    reason: str
    source: str = Field(description="The playbook rule that chose the action.")


class CustomerScore(BaseModel):
    customer_id: str
    segments: SegmentsOut
    ahp_value_index: float | None = AHP_VALUE_INDEX
    churn: ChurnOut
    clv: CLVOut
    value: ValueOut = Field(description="Historical, current and potential value.")
    value_at_risk: float = Field(description="P(churn) × CLV (currency).")
    recommended_action: ActionOut
    notes: list[str] = Field(
        default_factory=list,
        description="Why labels of this customer that seem to disagree both hold (a recent "
        "buyer in a lapsing behaviour cluster, a high predicted value with a low past value "
        "tier, ...); empty when they agree.",
    )


class ScoreResponse(BaseModel):
    as_of: date
    model_versions: dict[str, str]
    customers: list[CustomerScore]
    warnings: list[str] = Field(
        default_factory=list,
        description="What the caller should know about this answer: as_of defaulted to today "
        "long after the latest purchase, repeated purchases dropped.",
    )


class DriftOut(BaseModel):
    rows: int = Field(description="Customers scored since this version was loaded.")
    min_rows: int = Field(
        default=500,
        description="Customers needed before PSI is reported (CVM_DRIFT_MIN_ROWS).",
    )
    status: str = Field(
        default="ok",
        description='"ok", or "not enough data yet: ..." while rows < min_rows (then psi is '
        "empty and retrain false).",
    )
    psi: dict[str, float] = Field(description="Population stability index per input feature.")
    threshold: float = Field(
        description="PSI above which the population has shifted enough to retrain (0.2)."
    )
    retrain: bool = Field(description="True when any feature's PSI is above the threshold.")


class AliasTarget(BaseModel):
    alias: str | None = Field(description="The alias (null: a pinned version).")
    version: str = Field(description="The version the alias or pin points to.")
    error: str = Field(description="Why that version is not served: its load error.")


class SignatureColumn(BaseModel):
    name: str
    type: str = Field(description="MLflow's column type: double, long, string, boolean, ...")
    required: bool


class ModelInfo(BaseModel):
    family: str
    name: str
    version: str
    alias: str | None = Field(
        description="The alias that points to this version; null when pinned or a fallback."
    )
    run_id: str | None
    metrics: dict[str, float]
    as_of: str | None
    data_fingerprint: str | None
    git_commit: str | None
    loaded_at: str
    drift: DriftOut | None = None
    fallback: bool = Field(
        default=False,
        description="True while this version serves in place of its alias target, which "
        "failed to load (see alias_target).",
    )
    alias_target: AliasTarget | None = Field(
        default=None,
        description="When a fallback: the version the alias points to and why it is not served.",
    )
    signature: list[SignatureColumn] | None = Field(
        default=None,
        description="The input columns of POST /v1/models/{name}/invocations for this version, "
        "in order (its MLflow signature; null when it has none). `cvm features` writes them "
        "for a transactions file.",
    )


class WorkerStatus(BaseModel):
    pid: int = Field(description="The worker's process id.")
    ready: bool
    versions: dict[str, str] = Field(description="The version served per family.")
    errors: dict[str, str] = Field(description="The worker's load errors, as in `errors`.")
    reloaded_at: float = Field(description="When its latest reload finished (Unix time).")
    signal: int = Field(
        description="The latest reload request of another worker that this reload answered "
        "(nanoseconds since the epoch; 0: none)."
    )


class ModelsResponse(BaseModel):
    ready: bool
    error: str | None
    errors: dict[str, str] = Field(
        default_factory=dict,
        description="Last load error per family; the previous version keeps serving.",
    )
    reload_interval_seconds: float
    models: list[ModelInfo]
    warnings: list[str] = Field(
        default_factory=list,
        description="What to know about the served set, e.g. versions trained on data as of "
        "different dates (after a partial promotion).",
    )
    workers: list[WorkerStatus] | None = Field(
        default=None,
        description="With several worker processes (cvm serve --workers N): what each one "
        "serves, as of its latest reload (null with one worker).",
    )


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] = []


class ErrorResponse(BaseModel):
    error: ErrorBody


class CustomerSegmentsOut(BaseModel):
    customer_id: str
    segments: SegmentsOut
    ahp_value_index: float | None = AHP_VALUE_INDEX


class SegmentsResponse(BaseModel):
    as_of: date
    model_version: str
    customers: list[CustomerSegmentsOut]
    warnings: list[str] = Field(
        default_factory=list,
        description="What the caller should know about this answer: as_of defaulted to today "
        "long after the latest purchase, repeated purchases dropped.",
    )


class CatalogueLabel(BaseModel):
    label: str | int
    name: str
    description: str
    actions: list[str]
    size: int = Field(description="Customers with this label at training time.")


class CatalogueScheme(BaseModel):
    description: str
    labels: list[CatalogueLabel]


class CatalogueResponse(BaseModel):
    model_version: str
    schemes: dict[str, CatalogueScheme]


class ChurnReason(BaseModel):
    feature: str
    label: str = Field(description="Readable name of the driver.")
    type: str = Field(
        description="Churn type: product, price, service, benefit, management, industry or natural."
    )
    direction: str = Field(description="Whether the feature's value raises or lowers the risk.")
    value: str = Field(description="The customer's value of the feature.")
    contribution: float = Field(description="Change in log-odds against the training median/mode.")


class ChurnDetailOut(BaseModel):
    customer_id: str
    probability: float = Field(description="P(no purchase within horizon_days), 0–1.")
    risk_band: str
    horizon_days: int
    churn_type: str | None = Field(
        description="The churn type of the strongest risk-raising driver; null when no driver "
        "raises the risk."
    )
    reasons: list[ChurnReason] = Field(description="Top 3 drivers, strongest first.")
    alerts: list[str] = Field(description="Early-warning rules the customer trips.")


class ChurnResponse(BaseModel):
    as_of: date
    model_version: str
    customers: list[ChurnDetailOut]
    warnings: list[str] = Field(
        default_factory=list,
        description="What the caller should know about this answer: as_of defaulted to today "
        "long after the latest purchase, repeated purchases dropped.",
    )


# The segmentation schemes and churn_risk (models.customer_view.AUDIENCE_COLUMNS).
AudienceScheme = Literal[tuple(AUDIENCE_COLUMNS)]  # type: ignore[valid-type]


class AudienceRequest(ScoreRequest):
    """The customers to choose from, and the label that defines the audience."""

    scheme: AudienceScheme = Field(  # type: ignore[valid-type]
        description="The segmentation scheme (see GET /v1/segments), or churn_risk "
        f"(labels {', '.join(BAND_NAMES)})."
    )
    label: str = Field(
        min_length=1,
        max_length=100,
        description="One label of the scheme, e.g. at_risk for rfm or Gold for value_matrix.",
    )

    model_config = ConfigDict(
        **REQUEST_CONFIG,
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2025-12-31",
                    "scheme": "churn_risk",
                    "label": "high",
                    "customers": [
                        {
                            "customer_id": "C0001",
                            "summary": {
                                "frequency": 4,
                                "recency": 200,
                                "T": 300,
                                "monetary_value": 55.0,
                            },
                        }
                    ],
                }
            ]
        },
    )


class AudienceMember(BaseModel):
    customer_id: str
    clv: float = Field(description="Discounted CLV over the model's horizon (currency).")
    churn_probability: float
    value_at_risk: float = Field(description="P(churn) × CLV (currency).")
    recommended_action: ActionOut


class AudienceResponse(BaseModel):
    as_of: date
    scheme: str
    label: str
    model_versions: dict[str, str]
    scored: int = Field(description="Customers in the request.")
    count: int = Field(description="Customers with the label (the audience).")
    customers: list[AudienceMember] = Field(description="The audience, highest CLV first.")
    warnings: list[str] = Field(
        default_factory=list,
        description="What the caller should know about this answer: as_of defaulted to today "
        "long after the latest purchase, repeated purchases dropped.",
    )
