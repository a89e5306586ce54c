"""CLV training: model choice on a calibration/holdout split, then the final fit.

Non-contractual data: BG/NBD and Pareto/NBD are both fitted on the calibration period
(purchases up to ``as_of − holdout``), scored on the holdout (per-customer error and the
error of the total), and the better one (``choose_by``, default per-customer MAE) is refitted
on the whole history. Contractual data (a customer table with ``churned``/``churn_date`` and
``signup_date``) uses the sBG retention model instead.

Discrete-opportunity data (each customer transacts or not in each period): BG/BB per period
(:class:`models.clv.periodic.DiscreteCLV`) joins the candidates when a ``period`` is given or
the purchases keep to one (:func:`models.clv.periodic.detect_period`), and is the only one
with ``purchase_model="bgbb"``. It is judged on the same holdout purchases as the others: its
expected transacting periods in the holdout's days × purchases per period.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.clv import PURCHASE_MODELS, CLVModel
from models.clv.contractual import ContractualCLV, has_contract_data
from models.clv.periodic import DiscreteCLV, detect_period, with_period_columns
from models.exceptions import InvalidInputError
from models.features import summarize
from training import evaluate


@dataclass
class CLVTraining:
    model: Any
    holdout_model: Any = None  # the chosen model as fitted on the calibration period
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def purchase_days_between(
    transactions: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
) -> pd.Series:
    """Distinct purchase days per customer in ``(start, end]``."""
    stamps = pd.to_datetime(transactions["timestamp"])
    window = (stamps > start) & (stamps <= end)
    days = pd.DataFrame(
        {
            "customer_id": transactions.loc[window, "customer_id"].astype(str),
            "day": stamps[window].dt.normalize(),
        }
    )
    return days.drop_duplicates().groupby("customer_id").size()


def cumulative_tracking(
    transactions: pd.DataFrame,
    calibration_end: pd.Timestamp,
    as_of: pd.Timestamp,
    models: dict[str, Any],
    time_unit_days: float,
) -> pd.DataFrame:
    """Cumulative repeat purchases per day of the calibration cohort: actual and per model.

    The cohort is the customers who bought on or before ``calibration_end``. The prediction
    for day d is Σ over customers of E[X(d − first purchase)], the expected repeat purchases
    of a new customer (``models``: fitted purchase models, time in ``time_unit_days``),
    summed as a convolution over first-purchase days.
    """
    stamps = pd.to_datetime(transactions["timestamp"])
    days = stamps.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)
    customer, _ = pd.factorize(transactions["customer_id"].astype(str))
    start = int(days.min())
    span = int(days.max()) - start + 1
    # Distinct purchase days per customer, sorted by customer then day.
    pairs = np.sort(customer.astype(np.int64) * span + (days - start))
    pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]]
    who, day = pairs // span, pairs % span
    first_row = np.r_[True, who[1:] != who[:-1]]
    first = np.maximum.accumulate(np.where(first_row, np.arange(len(day)), 0))
    first_day = day[first]
    end_day = int(np.datetime64(as_of.normalize().date(), "D").astype(np.int64)) - start
    cohort_end = int(np.datetime64(calibration_end.normalize().date(), "D").astype(np.int64))
    cohort = first_day <= cohort_end - start
    cohort_start = int(first_day[cohort].min()) if cohort.any() else 0
    n_days = max(end_day - cohort_start + 1, 0)
    repeat = cohort & ~first_row & (day <= end_day)
    actual = np.bincount(day[repeat] - cohort_start, minlength=n_days)[:n_days].cumsum()
    births = np.bincount(day[first_row & cohort] - cohort_start, minlength=n_days)[:n_days]
    calendar = pd.date_range(
        pd.Timestamp(np.datetime64(start + cohort_start, "D")), periods=n_days, freq="D"
    )
    out = pd.DataFrame({"day": calendar, "actual": actual.astype(float)})
    ages = np.arange(n_days, dtype=float)
    for name, model in models.items():
        per_age = model.expected_purchases_new(ages / time_unit_days)
        out[name] = np.convolve(births.astype(float), per_age)[:n_days]
    out["holdout"] = out["day"] > calibration_end
    return out


# The internal holdout when none is asked for: a third of the history, 4 weeks to 180 days.
DEFAULT_HOLDOUT_DAYS = 180
MIN_HOLDOUT_DAYS = 28
HOLDOUT_SHARE = 1 / 3


def holdout_window(
    first_purchase: pd.Timestamp, as_of: pd.Timestamp, requested: int | None
) -> tuple[int, str | None]:
    """The CLV evaluation holdout in days, and a warning when the calibration period before
    it is short (under twice the holdout, or under 90 days): the model choice then rests on
    little history.

    ``requested`` None adapts the holdout to the span of the data: a third of it, between
    4 weeks and 180 days (a data set of nine months gets three months of holdout and six of
    calibration, not three and six the other way round).
    """
    span = max(int((as_of - first_purchase) / pd.Timedelta(days=1)), 1)
    if requested is None:
        days = int(min(DEFAULT_HOLDOUT_DAYS, max(MIN_HOLDOUT_DAYS, span * HOLDOUT_SHARE)))
    else:
        days = int(requested)
    calibration = span - days
    if calibration >= max(2 * days, 90):
        return days, None
    return days, (
        f"CLV: the calibration period before the {days}-day holdout is short "
        f"({max(calibration, 0)} days of history): the model choice rests on little data; "
        "use a shorter --holdout-days or more history"
    )


def choice_scores(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """How well each candidate forecast the holdout, per customer and in total (lower is
    better): its per-customer MAE over the best MAE, plus its error on the holdout's total
    purchases as a fraction (each 1 % of total error weighs as much as 1 % more MAE). A
    model that wins per customer by a hair but misses the total by a fifth does not win.
    A candidate whose forecast is not a number (a fit that broke down) scores infinity."""
    finite = [r["clv_holdout_mae"] for r in results.values() if np.isfinite(r["clv_holdout_mae"])]
    best = min(finite) if finite else 1.0
    out = {}
    for name, r in results.items():
        score = (
            r["clv_holdout_mae"] / max(best, 1e-12) + abs(r["clv_holdout_total_error_pct"]) / 100
        )
        out[name] = float(score) if np.isfinite(score) else math.inf
    return out


def _why(chosen: str, results: dict[str, dict[str, float]], choose_by: str) -> str:
    def said(name: str) -> str:
        r = results[name]
        return (
            f"{name} MAE {r['clv_holdout_mae']:.3f}, total error "
            f"{r['clv_holdout_total_error_pct']:+.1f}%"
        )

    others = [said(n) for n in results if n != chosen]
    rule = (
        "per-customer MAE relative to the best plus the error of the total"
        if choose_by == "combined"
        else choose_by
    )
    return f"{said(chosen)}" + (f" against {'; '.join(others)}" if others else "") + f" ({rule})"


def train_clv(
    transactions: pd.DataFrame,
    customers: pd.DataFrame | None,
    summary: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    holdout_days: int,
    horizon_days: int,
    discount_rate: float,
    margin: float | None,
    time_unit_days: float,
    purchase_model: str = "auto",
    choose_by: str = "combined",
    step: Callable[[str], None] = print,
    evaluation_transactions: pd.DataFrame | None = None,
    period: str | None = None,
    detect_period_: bool = True,
) -> CLVTraining:
    """Fit, evaluate and choose the CLV model; returns the fitted model and what to log.

    ``evaluation_transactions``: purchases of other customers (a separate sample, as the
    Spark engine draws it) on whose holdout the candidates are judged; by default the same
    customers' holdout.

    ``choose_by``: ``combined`` (default, :func:`choice_scores`: per-customer and aggregate
    error together) or one holdout metric, e.g. ``clv_holdout_mae``. The reason for the
    choice is logged (``clv_choice_reason``) with every candidate's errors.

    Each candidate purchase model is fitted once on the calibration period; the spend model
    only for the chosen one; the final fit on the whole history starts from the chosen
    calibration fit's parameters.

    ``period`` (``week``, ``month``, ``quarter``, ``year``): BG/BB per period is a candidate
    (with ``purchase_model`` ``auto``) or the model (``bgbb``). Without it, ``auto`` adds
    BG/BB when the purchases keep to a period (``detect_period_``; the Spark engine turns it
    off), and ``bgbb`` uses the period they keep to, or asks for one.
    """
    kwargs: dict[str, Any] = {
        "time_unit_days": time_unit_days,
        "horizon_days": horizon_days,
        "discount_rate": discount_rate,
        "margin": margin,
    }
    period, period_source = _bgbb_period(
        transactions, as_of, purchase_model, period, detect_period_, step
    )
    if purchase_model != "bgbb" and customers is not None and has_contract_data(customers):
        return _train_contractual(customers, summary, as_of, kwargs, step)

    out = CLVTraining(model=None)
    candidates = _candidates(purchase_model, period)
    discrete_kwargs = {k: v for k, v in kwargs.items() if k != "time_unit_days"}
    calibration_end = as_of - pd.Timedelta(days=holdout_days)
    calibration = summarize(transactions, calibration_end)
    scores: dict[str, float] = {}
    results: dict[str, dict[str, float]] = {}
    fitted: dict[str, Any] = {}
    holdout_model: CLVModel | None = None
    holdout_kwargs = {**kwargs, "horizon_days": holdout_days}
    judged_tx = transactions if evaluation_transactions is None else evaluation_transactions
    judged = (
        calibration if evaluation_transactions is None else summarize(judged_tx, calibration_end)
    )
    if len(calibration) >= 20 and (calibration["frequency"] > 0).sum() >= 10 and len(judged):
        actual = (
            purchase_days_between(judged_tx, calibration_end, as_of)
            .reindex(judged.index)
            .fillna(0)
            .to_numpy(dtype=float)
        )
        x, t_x, t = CLVModel(**holdout_kwargs)._rft(calibration)
        judged_rft = CLVModel(**holdout_kwargs)._rft(judged)
        predictions: dict[str, np.ndarray] = {}
        for name in list(candidates):
            if name == "bgbb":
                assert period is not None
                discrete = _fit_discrete_holdout(
                    period, calibration, transactions, calibration_end, discrete_kwargs, step
                )
                if discrete is None:  # too short a calibration: left out (forced: kept)
                    candidates[:] = [c for c in candidates if c != name] or candidates
                    continue
                fitted[name] = discrete
                predictions[name] = discrete.forecast_purchases(
                    holdout_days, with_period_columns(discrete, judged, judged_tx, calibration_end)
                )
            else:
                fitted[name] = PURCHASE_MODELS[name]().fit(x, t_x, t)
                predictions[name] = fitted[name].expected_purchases(
                    holdout_days / time_unit_days, *judged_rft
                )
            result = evaluate.clv_holdout_metrics(predictions[name], actual)
            for key, value in result.items():
                out.metrics[key.replace("clv_", f"clv_{name}_", 1)] = value
            results[name] = result
            step(
                f"CLV {name} on the {holdout_days}-day holdout: MAE {result['clv_holdout_mae']:.3f}, "
                f"total error {result['clv_holdout_total_error_pct']:+.1f}%"
            )
        if results:
            scores = (
                choice_scores(results)
                if choose_by == "combined"
                else {
                    n: float(r[choose_by]) if np.isfinite(r[choose_by]) else math.inf
                    for n, r in results.items()
                }
            )
            broken = [n for n, v in scores.items() if not np.isfinite(v)]
            if broken:
                step(
                    "CLV: left out of the choice, its holdout forecast is not a number: "
                    + ", ".join(MODEL_NAMES.get(n, n) for n in broken)
                )
            for name, score in scores.items():
                out.metrics[f"clv_{name}_choice_score"] = score
            out.figures["clv_holdout_by_frequency.png"] = evaluate.plot_holdout_by_frequency(
                judged["frequency"].to_numpy(), predictions, actual
            )
            curves = {
                name: _InTimeUnits(m, time_unit_days) if isinstance(m, DiscreteCLV) else m
                for name, m in fitted.items()
            }
            tracking = cumulative_tracking(
                judged_tx, calibration_end, as_of, curves, time_unit_days
            )
            out.figures["clv_cumulative_repeat_purchases.png"] = evaluate.plot_cumulative_tracking(
                tracking
            )
            out.tables["clv_cumulative_tracking"] = tracking
    else:
        step(
            "CLV: too little history before the holdout to compare models; using "
            + MODEL_NAMES[candidates[0]]
        )
    chosen = min(scores, key=lambda k: scores[k]) if scores else candidates[0]
    for key in list(out.metrics):  # the chosen model's holdout metrics under the plain names
        if key.startswith(f"clv_{chosen}_"):
            out.metrics[key.replace(f"clv_{chosen}_", "clv_", 1)] = out.metrics[key]
    model: CLVModel | DiscreteCLV
    if chosen == "bgbb":
        assert period is not None
        discrete_holdout = fitted.get("bgbb") if scores else None
        model = DiscreteCLV(period=period, **discrete_kwargs).fit(
            with_period_columns(DiscreteCLV(period), summary, transactions, as_of),
            start_from=discrete_holdout,
        )
        out.holdout_model = discrete_holdout
        purchase_fit = model.bgbb_
        out.params["clv_horizon_periods"] = model.horizon_periods
    else:
        if scores:
            holdout_model = CLVModel(purchase_model=chosen, **holdout_kwargs).fit(
                calibration, purchases=fitted[chosen]
            )
        model = CLVModel(purchase_model=chosen, **kwargs).fit(summary, start_from=holdout_model)
        out.holdout_model = holdout_model
        purchase_fit = model.purchase_model_
    out.model = model
    reason = (
        _why(chosen, results, choose_by)
        if results
        else "too little history before the holdout to compare models"
    )
    out.params = {
        **out.params,
        "clv_model": chosen,
        "clv_choice_metric": choose_by,
        "clv_choice_reason": reason,
        "margin_source": model.margin_source_,
        **{f"clv_{k}": round(v, 6) for k, v in model.params().items()},
    }
    if period is not None:  # BG/BB was a candidate, or the model
        out.params["clv_period"] = period
        out.params["clv_period_days"] = round(DiscreteCLV(period).period_days, 4)
        out.params["clv_period_source"] = period_source
    out.metrics[f"clv_log_likelihood_{chosen}"] = purchase_fit.log_likelihood_
    out.metrics["clv_log_likelihood_gg"] = model.gamma_gamma_.log_likelihood_
    params = ", ".join(f"{k}={v:.3f}" for k, v in purchase_fit.params_.items())
    per = f" per {period}" if chosen == "bgbb" else ""
    step(f"CLV: chose {chosen}{per} ({params}): {reason}")
    return out


MODEL_NAMES = {"bgnbd": "BG/NBD", "paretonbd": "Pareto/NBD", "bgbb": "BG/BB"}
CLV_MODELS = (*PURCHASE_MODELS, "bgbb")


def _candidates(purchase_model: str, period: str | None) -> list[str]:
    """The models fitted before the holdout: the one asked for, or with ``auto`` both
    continuous-time models and BG/BB when it has a period."""
    if purchase_model == "auto":
        return list(PURCHASE_MODELS) + (["bgbb"] if period else [])
    return [purchase_model]


def _bgbb_period(
    transactions: pd.DataFrame,
    as_of: pd.Timestamp,
    purchase_model: str,
    period: str | None,
    detect: bool,
    step: Callable[[str], None],
) -> tuple[str | None, str]:
    """(the BG/BB period, where it came from: ``given`` or ``detected``), or (None, "")
    when BG/BB is not in the run. Clear errors for a period with a continuous-time model and
    for ``bgbb`` without a period the purchases keep to."""
    if purchase_model not in (*CLV_MODELS, "auto"):
        raise InvalidInputError(
            f"unknown CLV model {purchase_model!r}: use auto, {', '.join(CLV_MODELS)}",
            field="model",
        )
    if period is not None:
        DiscreteCLV(period).period_days  # noqa: B018 (an unknown period is a clear error)
        if purchase_model not in ("auto", "bgbb"):
            raise InvalidInputError(
                f"--period {period} is for --model bgbb (or auto, where BG/BB per {period} "
                f"joins the candidates); {purchase_model} is a continuous-time model",
                field="period",
            )
        return period, "given"
    if purchase_model == "bgbb" or (purchase_model == "auto" and detect):
        found, share = detect_period(transactions, as_of)
        if found is not None:
            step(
                f"CLV: {share:.0%} of the gaps between a customer's purchases are whole "
                f"{found}s: BG/BB per {found} is "
                + ("the model" if purchase_model == "bgbb" else "a candidate")
            )
            return found, "detected"
        if purchase_model == "bgbb":
            raise InvalidInputError(
                "--model bgbb needs --period week, month, quarter or year: the purchases keep "
                f"to none (at best {share:.0%} of the gaps between a customer's purchases are "
                "whole periods)",
                field="period",
            )
    return None, ""


def _fit_discrete_holdout(
    period: str,
    calibration: pd.DataFrame,
    transactions: pd.DataFrame,
    calibration_end: pd.Timestamp,
    kwargs: dict[str, Any],
    step: Callable[[str], None],
) -> DiscreteCLV | None:
    """BG/BB per ``period`` fitted on the calibration period, or None (said) when the
    calibration is too short for it."""
    model = DiscreteCLV(period=period, **kwargs)
    try:
        return model.fit(with_period_columns(model, calibration, transactions, calibration_end))
    except InvalidInputError as exc:
        step(f"CLV: BG/BB per {period} left out of the holdout comparison: {exc.message}")
        return None


class _InTimeUnits:
    """A :class:`DiscreteCLV`'s new-customer curve in the tracking plot's time unit."""

    def __init__(self, model: DiscreteCLV, time_unit_days: float):
        self.model, self.time_unit_days = model, time_unit_days

    def expected_purchases_new(self, t: Any) -> np.ndarray:
        return self.model.expected_purchases_new(np.asarray(t, dtype=float) * self.time_unit_days)


def _train_contractual(
    customers: pd.DataFrame,
    summary: pd.DataFrame,
    as_of: pd.Timestamp,
    kwargs: dict[str, Any],
    step: Callable[[str], None],
) -> CLVTraining:
    model = ContractualCLV(
        horizon_days=kwargs["horizon_days"],
        discount_rate=kwargs["discount_rate"],
        margin=kwargs["margin"],
    ).fit(summary, customers=customers, as_of=as_of)
    retention = model.retention_.retention_table(12)
    step(
        "CLV (contractual, sBG): "
        + ", ".join(f"{k}={v:.3f}" for k, v in model.retention_.params_.items())
    )
    return CLVTraining(
        model=model,
        metrics={"clv_log_likelihood_sbg": model.retention_.log_likelihood_},
        params={
            "clv_model": "sbg",
            "margin_source": model.margin_source_,
            "clv_period_days": model.period_days,
            **{f"clv_sbg_{k}": round(v, 6) for k, v in model.retention_.params_.items()},
        },
        figures={"clv_retention_curve.png": evaluate.plot_retention(retention)},
        tables={"clv_retention": retention},
    )
