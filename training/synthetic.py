"""Seeded synthetic customer data whose generating truth is known.

The generator is fully vectorised with numpy (no Python loop over customers or
transactions), so 100,000 customers take about a second and 1,000,000 customers a few
seconds more.

Model (time unit of the BG/NBD parameters: one week = 7 days)
-------------------------------------------------------------
* **Acquisition.** Customer *i* makes a first purchase ("birth") at a time uniform over
  ``[as_of - history_days, as_of - history_days + acquisition_days]`` (days, with a random
  time of day). Observation ends at the end of the ``as_of`` day; the process is simulated
  further, to the end of day ``as_of + horizon_days``, so the future is known too.
* **Repeat purchases: BG/NBD** (Fader, Hardie & Lee 2005). ``lambda_i ~ Gamma(shape r,
  rate alpha)`` repeat purchases per week while alive, ``p_i ~ Beta(a, b)``. After each
  *repeat* purchase the customer drops out with probability ``p_i``; the number of repeat
  purchases before dropout is ``J_i ~ Geometric(p_i)`` on ``{1, 2, ...}``. Simulated as
  ``N_i ~ Poisson(lambda_i * weeks from birth to end of simulation)`` event times uniform
  over that span, of which the first ``min(N_i, J_i)`` are kept (drawn directly in sorted
  order from exponential spacings, so the discarded ones are never drawn).
* **Spend: Gamma-Gamma.** ``nu_i ~ Gamma(shape q, rate gamma)``; every transaction
  (the first one included) has base spend ``z ~ Gamma(shape p, rate nu_i)``, so
  ``E[z | nu_i] = p / nu_i`` (currency units), times the customer's channel multiplier.
* **Channels.** Each customer uses 1, 2 or 3 of ``store``, ``online``, ``catalog``
  (probabilities 0.55 / 0.35 / 0.10, the set drawn at random). Each transaction's channel
  is uniform among the customer's channels. Spend multiplier 1.0 / 1.85 / 2.4 by number of
  channels (customers who use more channels spend more), so single-channel customers follow
  the pure Gamma-Gamma process.
* **Margin and value type.** Margin class ``high`` (margin uniform in [0.25, 0.45]) or
  ``low`` (uniform in [-0.05, 0.05]), 50/50. Cost of a transaction is
  ``amount * (1 - margin_i) * (1 + N(0, 0.02))`` in currency units, rounded to cents.
  Frequency class ``high`` when the realised repeat purchases in the observation window are
  at least ``value_type_repeat_threshold`` (= 2). Value type: Gold (high frequency, high
  margin), Meteor (low, high), Stream (high, low), Burden (low, low).
* **Problems and complaints.** A share ``problem_rate`` (default 20 %) of customers has a
  problem at a time uniform over their observed active life ``[birth, min(dropout,
  end of as_of)]``. Its handling is ``did_not_complain`` / ``unresolved`` / ``resolved`` /
  ``resolved_quickly`` with probabilities 0.40 / 0.20 / 0.25 / 0.15 and repurchase rates
  9 % / 19 % / 54 % / 82 %. With probability ``1 - repurchase rate`` the customer stops
  buying right after the problem (every later purchase, observed or future, removed;
  ``churn_reason == "complaint"``).
* **Other attributes** (``region``, ``age``, ``acquisition_channel``) are independent noise
  features for churn models; the churn signal is in the purchase history and complaints.

Timestamps are whole seconds (``datetime64[ns]``); amounts and costs are rounded to cents.

Example::

    transactions, customers, truth = generate(100_000, seed=1)
    write("data/synth", transactions, customers, truth, fmt="parquet")
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.exceptions import InvalidInputError

__all__ = [
    "CUSTOMER_KINDS",
    "OFFERS",
    "SyntheticTruth",
    "campaign_effects",
    "campaign_kind_and_success",
    "generate",
    "generate_campaigns",
    "read",
    "read_campaigns",
    "simulate_bgnbd_summary",
    "write",
]

SECONDS_PER_DAY = 86_400
TIME_UNIT_DAYS = 7
SECONDS_PER_WEEK = TIME_UNIT_DAYS * SECONDS_PER_DAY

CHANNELS = ("store", "online", "catalog")
CHANNEL_COUNT_PROBABILITIES = (0.55, 0.35, 0.10)
CHANNEL_MULTIPLIERS = {"1": 1.0, "2": 1.85, "3": 2.4}

MARGIN_RANGES = {"high": (0.25, 0.45), "low": (-0.05, 0.05)}
HIGH_MARGIN_SHARE = 0.5
COST_NOISE_SD = 0.02
VALUE_TYPE_REPEAT_THRESHOLD = 2
VALUE_TYPES = ("Gold", "Meteor", "Stream", "Burden")
CHURN_REASONS = ("none", "dropout", "complaint")

PROBLEM_RATE = 0.20
COMPLAINT_HANDLINGS = ("did_not_complain", "unresolved", "resolved", "resolved_quickly")
COMPLAINT_HANDLING_PROBABILITIES = (0.40, 0.20, 0.25, 0.15)
COMPLAINT_REPURCHASE = {
    "did_not_complain": 0.09,
    "unresolved": 0.19,
    "resolved": 0.54,
    "resolved_quickly": 0.82,
}
RESOLUTION_DAYS = {"resolved_quickly": (1, 3), "resolved": (10, 40)}

REGIONS = ("north", "south", "east", "west")
AGE_RANGE = (18, 80)
ACQUISITION_CHANNELS = ("search", "social", "referral", "store")
ACQUISITION_CHANNEL_PROBABILITIES = (0.35, 0.25, 0.15, 0.25)

_FORMATS = ("csv", "parquet")
_TIMESTAMP_COLUMNS = {
    "transactions": ["timestamp"],
    "customers": ["signup_date", "complaint_date", "resolution_date"],
    "truth_customers": ["birth_time", "problem_time", "dropout_time", "death_time"],
}


@dataclass
class SyntheticTruth:
    """The generating truth of one synthetic data set.

    ``params`` is JSON-serialisable: BG/NBD ``{"r", "alpha", "a", "b"}`` (rates per week),
    Gamma-Gamma ``{"p", "q", "gamma"}`` (currency units), ``time_unit_days`` (7), ``as_of``
    (``"YYYY-MM-DD"``), ``horizon_days``, ``channel_multipliers`` (keys ``"1"``, ``"2"``,
    ``"3"``: number of channels), ``complaint_repurchase`` and the other constants used.

    ``customers`` has one row per customer with the latent values and realised outcomes:

    * ``lambda_`` (repeat purchases per week while alive), ``p_`` (dropout probability after
      each repeat purchase), ``nu_`` (Gamma-Gamma rate, 1/currency unit),
      ``true_mean_spend`` (``p / nu_ * channel_multiplier``, currency units per purchase);
    * ``n_channels``, ``channels`` (``"|"``-joined), ``channel_multiplier``, ``margin``
      (fraction of the amount), ``margin_class``, ``frequency_class``, ``value_type``;
    * ``birth_time`` (first purchase), ``T_weeks`` (weeks from birth to the end of the
      observation), ``dropout_time`` (BG/NBD death, NaT when not before the end of the
      simulation), ``death_time`` (when the customer actually stopped: complaint stop or
      dropout, NaT if alive at the end of the simulation), ``alive_at_as_of``;
    * ``repeat_purchases_observed`` (repeat transactions up to the end of ``as_of``),
      ``future_purchases`` and ``future_revenue`` (transactions and their amounts in the
      ``horizon_days`` days after ``as_of``);
    * ``problem``, ``problem_time``, ``complaint_handling`` (``"none"`` when no problem),
      ``stopped_after_problem``, ``churn_reason`` (``"complaint"``, ``"dropout"`` or
      ``"none"``; ``"contact"`` for customers a campaign drove away).

    ``campaigns`` is ``None`` unless :func:`generate_campaigns` ran: then the per-customer
    campaign truth, one row per campaign row and offer (see :func:`generate_campaigns`), and
    ``params["campaigns"]`` the campaign design and true average effects.
    """

    params: dict[str, Any]
    customers: pd.DataFrame = field(repr=False)
    campaigns: pd.DataFrame | None = field(default=None, repr=False)


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not np.isfinite(value) or value <= 0:
            raise InvalidInputError(f"{name} must be a positive number, got {value!r}", field=name)


def _labels(names: tuple[str, ...] | list[str], codes: np.ndarray) -> pd.Index:
    """String labels ``names[codes]`` as a pandas ``str`` array (fast for millions of rows)."""
    return pd.Index(list(names), dtype="str").take(codes)


def _timestamps(start: pd.Timestamp, seconds: np.ndarray) -> np.ndarray:
    """Whole seconds after ``start`` (int64, -1 meaning missing) as ``datetime64[ns]``."""
    ns = start.value + seconds.astype(np.int64) * 1_000_000_000
    out = ns.view("datetime64[ns]").copy()
    out[seconds < 0] = np.datetime64("NaT")
    return out


@dataclass(frozen=True)
class _Clock:
    """The time axis: ``start`` is second 0; ends are exclusive, in seconds after it."""

    start: pd.Timestamp
    obs_end: int
    sim_end: int


@dataclass(frozen=True)
class _Latent:
    """Latent per-customer values (arrays of length n)."""

    birth_f: np.ndarray  # first purchase, seconds after the clock start (float)
    birth: np.ndarray  # the same, whole seconds (int64)
    lam: np.ndarray  # repeat purchases per week while alive
    p_drop: np.ndarray  # dropout probability after each repeat purchase
    nu: np.ndarray  # Gamma-Gamma rate, 1/currency unit


@dataclass(frozen=True)
class _Channels:
    """Per-customer channel use (arrays of length n)."""

    n_channels: np.ndarray  # 1, 2 or 3
    perm: np.ndarray  # (n, 3) channel codes; the first n_channels are used
    multiplier: np.ndarray  # spend multiplier by number of channels


@dataclass(frozen=True)
class _Repeats:
    """Kept BG/NBD repeat-purchase events before problems, sorted by (customer, time)."""

    cust: np.ndarray  # customer index of each event
    time: np.ndarray  # whole seconds after the clock start (int64)
    rank: np.ndarray  # 0-based rank of the event among its customer's repeats
    dies: np.ndarray  # per customer: drops out before the end of the simulation
    dropout: np.ndarray  # per customer: dropout second, -1 if none


@dataclass(frozen=True)
class _Problems:
    """Per-customer problems and their handling (arrays of length n)."""

    problem: np.ndarray  # bool
    handling_code: np.ndarray  # index into COMPLAINT_HANDLINGS (meaningful if problem)
    problem_time: np.ndarray  # whole seconds after the clock start, -1 without problem
    stopped: np.ndarray  # bool: stopped buying right after the problem
    resolution_draw: np.ndarray  # days to resolution (used only when resolved)


@dataclass(frozen=True)
class _Purchases:
    """All kept purchases (first + repeats, observed + future) in (customer, time) order."""

    cust: np.ndarray  # customer index
    time: np.ndarray  # whole seconds after the clock start (int64)
    channel: np.ndarray  # index into CHANNELS
    amount: np.ndarray  # currency units, rounded to cents
    observed: np.ndarray  # bool: before the end of the observation


@dataclass(frozen=True)
class _Outcomes:
    """Realised per-customer truth derived from the purchases (arrays of length n)."""

    x_obs: np.ndarray  # repeat purchases observed
    future_purchases: np.ndarray  # purchases after as_of, within the horizon
    future_revenue: np.ndarray  # their amount, currency units
    death: np.ndarray  # second the customer stopped, -1 if alive at the end of simulation
    alive_at_as_of: np.ndarray  # bool
    churn_reason: np.ndarray  # index into CHURN_REASONS
    freq_high: np.ndarray  # bool: frequency class high
    value_type: np.ndarray  # index into VALUE_TYPES


def generate(
    n_customers: int = 5000,
    seed: int = 0,
    as_of: str | pd.Timestamp = "2025-12-31",
    *,
    horizon_days: int = 365,
    acquisition_days: int = 365,
    history_days: int = 730,
    r: float = 0.75,
    alpha: float = 8.0,
    a: float = 0.8,
    b: float = 2.5,
    p: float = 6.0,
    q: float = 4.0,
    gamma: float = 60.0,
    problem_rate: float = PROBLEM_RATE,
) -> tuple[pd.DataFrame, pd.DataFrame, SyntheticTruth]:
    """Generate ``(transactions, customers, truth)`` for ``n_customers`` customers.

    Args:
        n_customers: number of customers (>= 1).
        seed: seed of ``numpy.random.default_rng``; same arguments give identical frames.
        as_of: last observed day (date-like, time of day ignored); observation ends at the
            end of this day.
        horizon_days: days simulated after ``as_of`` for the truth (future purchases).
        acquisition_days: length in days of the window of first purchases.
        history_days: days before ``as_of`` at which the acquisition window starts
            (``acquisition_days <= history_days``).
        r, alpha: BG/NBD purchase-rate heterogeneity, ``lambda ~ Gamma(shape r, rate alpha)``
            in repeat purchases per week.
        a, b: BG/NBD dropout heterogeneity, ``p ~ Beta(a, b)``.
        p, q, gamma: Gamma-Gamma spend, ``nu ~ Gamma(shape q, rate gamma)`` and spend per
            purchase ``~ Gamma(shape p, rate nu)`` in currency units.
        problem_rate: share of customers with a problem (0 disables complaints).

    Returns:
        ``transactions``: ``customer_id``, ``timestamp``, ``amount``, ``cost``, ``channel``,
        purchases up to the end of ``as_of``, sorted by customer and time.
        ``customers``: ``customer_id``, ``signup_date`` (date of first purchase), ``region``,
        ``age`` (years), ``acquisition_channel``, ``complaints`` (1 if complained),
        ``complaint_resolved`` (0/1, NaN without complaint), ``resolution_days`` (days, NaN
        unless resolved).
        ``truth``: :class:`SyntheticTruth`.
    """
    model = {"r": r, "alpha": alpha, "a": a, "b": b, "p": p, "q": q, "gamma": gamma}
    _check_arguments(n_customers, model, horizon_days, acquisition_days, history_days, problem_rate)
    as_of_day = _as_of_day(as_of)
    n = int(n_customers)
    # The order of the steps below is the order of the random draws: keep it, or the same
    # seed no longer gives the same data.
    rng = np.random.default_rng(seed)
    clock = _clock(as_of_day, history_days, horizon_days)
    latent = _draw_latent(rng, n, acquisition_days, r=r, alpha=alpha, a=a, b=b, q=q, gamma=gamma)
    channels = _draw_channels(rng, n)
    high_margin, margin = _draw_margins(rng, n)
    repeats = _simulate_repeats(rng, latent, clock.sim_end)
    problems = _draw_problems(rng, latent.birth_f, repeats, clock.obs_end, problem_rate)
    tx_cust, tx_time = _purchase_times(latent.birth, repeats, problems)
    tx_channel = _draw_transaction_channels(rng, tx_cust, channels)
    amount = _draw_spend(rng, tx_cust, latent.nu, channels.multiplier, p)
    purchases = _Purchases(tx_cust, tx_time, tx_channel, amount, tx_time < clock.obs_end)
    outcomes = _realised_outcomes(n, purchases, repeats, problems, high_margin, clock.obs_end)

    id_index = _customer_ids(n)
    transactions = _transactions_frame(rng, id_index, purchases, margin, clock.start)
    customers = _customers_frame(rng, id_index, latent.birth, problems, clock.start)
    truth_customers = _truth_frame(
        id_index, latent, channels, high_margin, margin, repeats, problems, outcomes, clock, p
    )
    params = _params(
        as_of_day, clock, n, seed, model, horizon_days, acquisition_days, history_days, problem_rate
    )
    return transactions, customers, SyntheticTruth(params=params, customers=truth_customers)


def _check_arguments(
    n_customers: int,
    model: dict[str, float],
    horizon_days: int,
    acquisition_days: int,
    history_days: int,
    problem_rate: float,
) -> None:
    """Raise :class:`InvalidInputError` for arguments of :func:`generate` out of range
    (``model``: the BG/NBD and Gamma-Gamma parameters, all positive)."""
    if isinstance(n_customers, bool) or not isinstance(n_customers, int | np.integer):
        raise InvalidInputError("n_customers must be an integer", field="n_customers")
    if n_customers < 1:
        raise InvalidInputError("n_customers must be >= 1", field="n_customers")
    _check_positive(**model, acquisition_days=acquisition_days)
    if horizon_days < 0:
        raise InvalidInputError("horizon_days must be >= 0", field="horizon_days")
    if acquisition_days > history_days:
        raise InvalidInputError(
            "acquisition_days must not exceed history_days (births after as_of)",
            field="acquisition_days",
        )
    if not 0.0 <= problem_rate <= 1.0:
        raise InvalidInputError("problem_rate must be in [0, 1]", field="problem_rate")


def _as_of_day(as_of: str | pd.Timestamp) -> pd.Timestamp:
    """The ``as_of`` date at midnight, timezone-naive (wall time kept if it had a zone)."""
    try:
        as_of_day = pd.Timestamp(as_of).normalize()
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"as_of is not a date: {as_of!r}", field="as_of") from exc
    if as_of_day.tz is not None:
        as_of_day = as_of_day.tz_localize(None)
    return as_of_day


def _clock(as_of_day: pd.Timestamp, history_days: int, horizon_days: int) -> _Clock:
    """Time origin ``history_days`` before ``as_of``; observation and simulation ends in
    seconds after it (exclusive: end of the ``as_of`` day, then ``horizon_days`` more)."""
    obs_end = (history_days + 1) * SECONDS_PER_DAY
    sim_end = obs_end + horizon_days * SECONDS_PER_DAY
    return _Clock(as_of_day - pd.Timedelta(days=history_days), obs_end, sim_end)


def _draw_latent(
    rng: np.random.Generator,
    n: int,
    acquisition_days: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    q: float,
    gamma: float,
) -> _Latent:
    """Draw, per customer, the birth (first purchase, seconds uniform over the acquisition
    window), ``lambda ~ Gamma(r, rate alpha)`` (repeat purchases per week), ``p ~ Beta(a, b)``
    (dropout probability per repeat purchase) and ``nu ~ Gamma(q, rate gamma)`` (1/currency)."""
    birth_f = rng.uniform(0.0, acquisition_days * SECONDS_PER_DAY, n)
    birth = np.floor(birth_f).astype(np.int64)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p_drop = rng.beta(a, b, n)
    nu = rng.gamma(q, 1.0 / gamma, n)
    return _Latent(birth_f, birth, lam, p_drop, nu)


def _draw_channels(rng: np.random.Generator, n: int) -> _Channels:
    """Draw each customer's number of channels (1-3, CHANNEL_COUNT_PROBABILITIES) and a random
    order of the channels (the first ``n_channels`` are used); the spend multiplier follows
    from the number (CHANNEL_MULTIPLIERS, dimensionless)."""
    n_channels = rng.choice(3, size=n, p=CHANNEL_COUNT_PROBABILITIES) + 1
    perm = np.argsort(rng.random((n, 3)), axis=1)
    multipliers = np.array([CHANNEL_MULTIPLIERS[str(k)] for k in (1, 2, 3)])
    return _Channels(n_channels, perm, multipliers[n_channels - 1])


def _draw_margins(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw each customer's margin class (high with HIGH_MARGIN_SHARE) and margin (fraction of
    the amount, uniform in the class's MARGIN_RANGES). Returns ``(high_margin, margin)``."""
    high_margin = rng.random(n) < HIGH_MARGIN_SHARE
    lo_h, hi_h = MARGIN_RANGES["high"]
    lo_l, hi_l = MARGIN_RANGES["low"]
    u_margin = rng.random(n)
    margin = np.where(high_margin, lo_h + (hi_h - lo_h) * u_margin, lo_l + (hi_l - lo_l) * u_margin)
    return high_margin, margin


def _simulate_repeats(rng: np.random.Generator, latent: _Latent, sim_end: int) -> _Repeats:
    """Draw the BG/NBD repeat purchases from birth to ``sim_end`` (seconds): ``N ~ Poisson(
    lambda * weeks)`` events, ``J ~ Geometric(p)`` repeats until dropout, the first
    ``min(N, J)`` event times kept (whole seconds) and the dropout time when ``J <= N``."""
    n = latent.birth_f.size
    span = sim_end - latent.birth_f  # seconds from birth to the end of the simulation
    n_events = rng.poisson(latent.lam * span / SECONDS_PER_WEEK)  # if never dropping out
    n_drop = rng.geometric(np.clip(latent.p_drop, 1e-12, 1.0))  # repeats until dropout, >= 1
    dies = n_events >= n_drop
    n_kept = np.minimum(n_events, n_drop)
    # The first k of N sorted uniforms on [0, 1] are S_j / (S_k + G), S_j the cumulative
    # sums of k standard exponentials and G ~ Gamma(N + 1 - k): this gives the kept event
    # times already sorted, without drawing or sorting the N - k discarded ones.
    ev_cust = np.repeat(np.arange(n), n_kept)
    ev_first = np.cumsum(n_kept) - n_kept
    csum = np.cumsum(rng.standard_exponential(ev_cust.size))
    before = np.concatenate(([0.0], csum))[ev_first]  # cumulative sum before each customer
    s_j = csum - before[ev_cust]
    s_k = np.concatenate(([0.0], csum))[ev_first + n_kept] - before
    denominator = s_k + rng.gamma(n_events - n_kept + 1.0)
    ev_time = np.floor(latent.birth_f[ev_cust] + s_j / denominator[ev_cust] * span[ev_cust])
    ev_time = np.minimum(ev_time.astype(np.int64), sim_end - 1)
    ev_rank = np.arange(ev_cust.size) - ev_first[ev_cust]
    dropout = np.full(n, -1, dtype=np.int64)
    dropout[dies] = ev_time[ev_first[dies] + n_kept[dies] - 1]
    return _Repeats(ev_cust, ev_time, ev_rank, dies, dropout)


def _draw_problems(
    rng: np.random.Generator,
    birth_f: np.ndarray,
    repeats: _Repeats,
    obs_end: int,
    problem_rate: float,
) -> _Problems:
    """Draw, per customer: a problem (probability ``problem_rate``), its handling code
    (COMPLAINT_HANDLING_PROBABILITIES), its time (whole seconds, uniform over the observed
    active life), a stop after it (probability 1 - COMPLAINT_REPURCHASE) and the days to
    resolution (RESOLUTION_DAYS: both ranges drawn for everyone, the quick one first)."""
    n = birth_f.size
    problem = rng.random(n) < problem_rate
    handling_code = rng.choice(4, size=n, p=COMPLAINT_HANDLING_PROBABILITIES)
    active_end = np.where(repeats.dies, np.minimum(repeats.dropout, obs_end), obs_end)
    problem_f = birth_f + rng.random(n) * (active_end - birth_f)
    problem_time = np.where(problem, np.floor(problem_f).astype(np.int64), -1)
    repurchase = np.array([COMPLAINT_REPURCHASE[h] for h in COMPLAINT_HANDLINGS])
    stopped = problem & (rng.random(n) >= repurchase[handling_code])
    resolution_draw = np.where(
        handling_code == 3,
        rng.integers(*RESOLUTION_DAYS["resolved_quickly"], size=n, endpoint=True),
        rng.integers(*RESOLUTION_DAYS["resolved"], size=n, endpoint=True),
    )
    return _Problems(problem, handling_code, problem_time, stopped, resolution_draw)


def _purchase_times(
    birth: np.ndarray, repeats: _Repeats, problems: _Problems
) -> tuple[np.ndarray, np.ndarray]:
    """No draws: the first purchase plus the repeats not cut off by a complaint stop, as
    ``(customer index, time in whole seconds)`` in (customer, time) order."""
    n = birth.size
    keep = ~(  # a prefix of each customer's repeats
        problems.stopped[repeats.cust] & (repeats.time > problems.problem_time[repeats.cust])
    )
    rep_cust = repeats.cust[keep]
    tx_count = np.bincount(rep_cust, minlength=n) + 1
    tx_first = np.cumsum(tx_count) - tx_count
    tx_cust = np.repeat(np.arange(n), tx_count)
    tx_time = np.empty(int(tx_count.sum()), dtype=np.int64)
    tx_time[tx_first] = birth
    tx_time[tx_first[rep_cust] + 1 + repeats.rank[keep]] = repeats.time[keep]
    return tx_cust, tx_time


def _draw_transaction_channels(
    rng: np.random.Generator, tx_cust: np.ndarray, channels: _Channels
) -> np.ndarray:
    """Draw each transaction's channel (index into CHANNELS), uniform among its customer's."""
    pick = np.floor(rng.random(tx_cust.size) * channels.n_channels[tx_cust]).astype(np.int64)
    return channels.perm[tx_cust, pick]


def _draw_spend(
    rng: np.random.Generator,
    tx_cust: np.ndarray,
    nu: np.ndarray,
    multiplier: np.ndarray,
    p: float,
) -> np.ndarray:
    """Draw each transaction's amount: ``Gamma(p, rate nu)`` times the customer's channel
    multiplier, in currency units rounded to cents (at least 0.01)."""
    base_spend = rng.gamma(p, 1.0 / nu[tx_cust])
    return np.maximum(np.round(base_spend * multiplier[tx_cust], 2), 0.01)


def _realised_outcomes(
    n: int,
    purchases: _Purchases,
    repeats: _Repeats,
    problems: _Problems,
    high_margin: np.ndarray,
    obs_end: int,
) -> _Outcomes:
    """No draws: observed repeat counts, future purchases and revenue (currency units), the
    death time (seconds, -1 if none), churn reason, frequency class and value type."""
    tx_cust, amount = purchases.cust, purchases.amount
    x_obs = np.bincount(tx_cust[purchases.observed], minlength=n) - 1
    future = ~purchases.observed
    future_purchases = np.bincount(tx_cust[future], minlength=n)
    future_revenue = np.round(np.bincount(tx_cust[future], weights=amount[future], minlength=n), 2)
    death = np.where(problems.stopped, problems.problem_time, repeats.dropout)
    alive_at_as_of = (death < 0) | (death >= obs_end)
    churn_reason = np.where(problems.stopped, 2, np.where(repeats.dies, 1, 0))
    freq_high = x_obs >= VALUE_TYPE_REPEAT_THRESHOLD
    # codes of VALUE_TYPES: Gold 0, Meteor 1, Stream 2, Burden 3
    value_type = (~high_margin).astype(np.int64) * 2 + (~freq_high).astype(np.int64)
    return _Outcomes(
        x_obs,
        future_purchases,
        future_revenue,
        death,
        alive_at_as_of,
        churn_reason,
        freq_high,
        value_type,
    )


def _customer_ids(n: int) -> pd.Index:
    """Customer ids ``C1`` .. ``Cn``, zero-padded to the width of ``n``."""
    width = len(str(n))
    ids = np.strings.add(
        "C", np.strings.zfill(np.arange(1, n + 1).astype(np.dtypes.StringDType()), width)
    )
    return pd.Index(ids.astype(object), dtype="str")


def _transactions_frame(
    rng: np.random.Generator,
    id_index: pd.Index,
    purchases: _Purchases,
    margin: np.ndarray,
    start: pd.Timestamp,
) -> pd.DataFrame:
    """Draw the cost noise (``1 + N(0, COST_NOISE_SD)`` per observed transaction) and build the
    observed transactions: cost ``amount * (1 - margin) * noise`` in currency units (cents)."""
    observed = purchases.observed
    obs_cust = purchases.cust[observed]
    obs_amount = purchases.amount[observed]
    noise = 1.0 + rng.normal(0.0, COST_NOISE_SD, obs_cust.size)
    cost = np.round(obs_amount * (1.0 - margin[obs_cust]) * noise, 2)
    return pd.DataFrame(
        {
            "customer_id": id_index.take(obs_cust),
            "timestamp": _timestamps(start, purchases.time[observed]),
            "amount": obs_amount,
            "cost": cost,
            "channel": _labels(CHANNELS, purchases.channel[observed]),
        }
    )


def _customers_frame(
    rng: np.random.Generator,
    id_index: pd.Index,
    birth: np.ndarray,
    problems: _Problems,
    start: pd.Timestamp,
) -> pd.DataFrame:
    """Draw the noise attributes (region, age in whole years, acquisition channel, in that
    order) and build the customer table with complaints and resolution (days and dates)."""
    n = birth.size
    complained = problems.problem & (problems.handling_code > 0)
    resolved = problems.problem & (problems.handling_code >= 2)
    customers = pd.DataFrame(
        {
            "customer_id": id_index,
            "signup_date": pd.DatetimeIndex(_timestamps(start, birth)).normalize(),
            "region": _labels(REGIONS, rng.integers(0, len(REGIONS), n)),
            "age": rng.integers(AGE_RANGE[0], AGE_RANGE[1], size=n, endpoint=True),
            "acquisition_channel": _labels(
                ACQUISITION_CHANNELS,
                rng.choice(len(ACQUISITION_CHANNELS), n, p=ACQUISITION_CHANNEL_PROBABILITIES),
            ),
            "complaints": complained.astype(np.int64),
            "complaint_resolved": np.where(complained, resolved.astype(float), np.nan),
            "resolution_days": np.where(resolved, problems.resolution_draw.astype(float), np.nan),
        }
    )
    # When the complaint was made and resolved: lets a time split drop complaints made after
    # its feature cutoff (otherwise the snapshot would leak the future into churn features).
    complaint_day = pd.DatetimeIndex(
        _timestamps(start, np.where(complained, problems.problem_time, 0))
    ).normalize()
    customers["complaint_date"] = complaint_day.where(complained)
    customers["resolution_date"] = (
        complaint_day
        + pd.to_timedelta(np.nan_to_num(customers["resolution_days"].to_numpy()), unit="D")
    ).where(resolved)
    return customers


def _truth_frame(
    id_index: pd.Index,
    latent: _Latent,
    channels: _Channels,
    high_margin: np.ndarray,
    margin: np.ndarray,
    repeats: _Repeats,
    problems: _Problems,
    outcomes: _Outcomes,
    clock: _Clock,
    p: float,
) -> pd.DataFrame:
    """No draws: ``SyntheticTruth.customers``, one row per customer (see its docstring)."""
    start = clock.start
    # the customer's channel set as a bit mask (1..7) and its label, e.g. "store|catalog"
    used = np.arange(3)[None, :] < channels.n_channels[:, None]
    channel_mask = np.where(used, 1 << channels.perm, 0).sum(axis=1)
    mask_labels = ["|".join(c for j, c in enumerate(CHANNELS) if m >> j & 1) for m in range(8)]
    handling_label = np.where(problems.problem, problems.handling_code + 1, 0)
    return pd.DataFrame(
        {
            "customer_id": id_index,
            "lambda_": latent.lam,
            "p_": latent.p_drop,
            "nu_": latent.nu,
            "true_mean_spend": p / latent.nu * channels.multiplier,
            "n_channels": channels.n_channels.astype(np.int64),
            "channels": _labels(mask_labels, channel_mask),
            "channel_multiplier": channels.multiplier,
            "margin": margin,
            "margin_class": _labels(("low", "high"), high_margin.astype(np.int64)),
            "frequency_class": _labels(("low", "high"), outcomes.freq_high.astype(np.int64)),
            "value_type": _labels(VALUE_TYPES, outcomes.value_type),
            "birth_time": _timestamps(start, latent.birth),
            "T_weeks": (clock.obs_end - latent.birth) / SECONDS_PER_WEEK,
            "dropout_time": _timestamps(start, repeats.dropout),
            "death_time": _timestamps(start, outcomes.death),
            "alive_at_as_of": outcomes.alive_at_as_of,
            "repeat_purchases_observed": outcomes.x_obs.astype(np.int64),
            "future_purchases": outcomes.future_purchases.astype(np.int64),
            "future_revenue": outcomes.future_revenue,
            "problem": problems.problem,
            "problem_time": _timestamps(start, problems.problem_time),
            "complaint_handling": _labels(("none", *COMPLAINT_HANDLINGS), handling_label),
            "stopped_after_problem": problems.stopped,
            "churn_reason": _labels(CHURN_REASONS, outcomes.churn_reason),
        }
    )


def _params(
    as_of_day: pd.Timestamp,
    clock: _Clock,
    n: int,
    seed: Any,
    model: dict[str, float],
    horizon_days: int,
    acquisition_days: int,
    history_days: int,
    problem_rate: float,
) -> dict[str, Any]:
    """No draws: the JSON-serialisable ``SyntheticTruth.params`` (see its docstring)."""
    return {
        "bgnbd": {k: float(model[k]) for k in ("r", "alpha", "a", "b")},
        "gamma_gamma": {k: float(model[k]) for k in ("p", "q", "gamma")},
        "time_unit_days": TIME_UNIT_DAYS,
        "as_of": as_of_day.strftime("%Y-%m-%d"),
        "horizon_days": int(horizon_days),
        "acquisition_days": int(acquisition_days),
        "history_days": int(history_days),
        "observation_end": (clock.start + pd.Timedelta(seconds=clock.obs_end)).isoformat(),
        "simulation_end": (clock.start + pd.Timedelta(seconds=clock.sim_end)).isoformat(),
        "n_customers": n,
        "seed": int(seed) if isinstance(seed, int | np.integer) else repr(seed),
        "channels": list(CHANNELS),
        "channel_count_probabilities": list(CHANNEL_COUNT_PROBABILITIES),
        "channel_multipliers": dict(CHANNEL_MULTIPLIERS),
        "margin_ranges": {k: list(v) for k, v in MARGIN_RANGES.items()},
        "high_margin_share": HIGH_MARGIN_SHARE,
        "cost_noise_sd": COST_NOISE_SD,
        "value_type_repeat_threshold": VALUE_TYPE_REPEAT_THRESHOLD,
        "value_types": {
            "Gold": "high frequency, high margin",
            "Meteor": "low frequency, high margin",
            "Stream": "high frequency, low margin",
            "Burden": "low frequency, low margin",
        },
        "problem_rate": float(problem_rate),
        "complaint_handling_probabilities": dict(
            zip(COMPLAINT_HANDLINGS, COMPLAINT_HANDLING_PROBABILITIES, strict=True)
        ),
        "complaint_repurchase": dict(COMPLAINT_REPURCHASE),
        "resolution_days": {k: list(v) for k, v in RESOLUTION_DAYS.items()},
        "regions": list(REGIONS),
        "age_range": list(AGE_RANGE),
        "acquisition_channels": dict(
            zip(ACQUISITION_CHANNELS, ACQUISITION_CHANNEL_PROBABILITIES, strict=True)
        ),
    }


def _write_frame(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)


def write(
    out_dir: str | Path,
    transactions: pd.DataFrame,
    customers: pd.DataFrame,
    truth: SyntheticTruth,
    fmt: str = "csv",
    *,
    campaigns: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """Write a generated data set to ``out_dir`` (created if missing).

    Files: ``transactions.<fmt>``, ``customers.<fmt>``, ``truth.json`` (``truth.params``)
    and ``truth_customers.<fmt>``; ``fmt`` is ``"csv"`` or ``"parquet"``. Returns the paths
    keyed ``"transactions"``, ``"customers"``, ``"truth"``, ``"truth_customers"``. With
    ``campaigns`` (from :func:`generate_campaigns`) also ``campaigns.<fmt>`` and, when
    ``truth.campaigns`` is set, ``campaign_truth.<fmt>`` (keys ``"campaigns"``,
    ``"campaign_truth"``).
    """
    if fmt not in _FORMATS:
        raise InvalidInputError(f"fmt must be one of {_FORMATS}, got {fmt!r}", field="fmt")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "transactions": out / f"transactions.{fmt}",
        "customers": out / f"customers.{fmt}",
        "truth": out / "truth.json",
        "truth_customers": out / f"truth_customers.{fmt}",
    }
    _write_frame(transactions, paths["transactions"], fmt)
    _write_frame(customers, paths["customers"], fmt)
    _write_frame(truth.customers, paths["truth_customers"], fmt)
    if campaigns is not None:
        paths["campaigns"] = out / f"campaigns.{fmt}"
        _write_frame(campaigns, paths["campaigns"], fmt)
    if campaigns is not None and truth.campaigns is not None:
        paths["campaign_truth"] = out / f"campaign_truth.{fmt}"
        _write_frame(truth.campaigns, paths["campaign_truth"], fmt)
    paths["truth"].write_text(json.dumps(truth.params, indent=2) + "\n", encoding="utf-8")
    return paths


def _read_frame(path: Path, fmt: str, timestamp_columns: list[str]) -> pd.DataFrame:
    if fmt == "parquet":
        return pd.read_parquet(path)
    frame = pd.read_csv(path, dtype={"customer_id": "str"}, keep_default_na=False, na_values=[""])
    for column in timestamp_columns:
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ns]")
    return frame


def read(
    out_dir: str | Path, fmt: str = "csv"
) -> tuple[pd.DataFrame, pd.DataFrame, SyntheticTruth]:
    """Read back what :func:`write` wrote: ``(transactions, customers, truth)``."""
    if fmt not in _FORMATS:
        raise InvalidInputError(f"fmt must be one of {_FORMATS}, got {fmt!r}", field="fmt")
    src = Path(out_dir)
    frames = {
        name: _read_frame(src / f"{name}.{fmt}", fmt, columns)
        for name, columns in _TIMESTAMP_COLUMNS.items()
    }
    params = json.loads((src / "truth.json").read_text(encoding="utf-8"))
    campaign_truth = src / f"campaign_truth.{fmt}"
    return (
        frames["transactions"],
        frames["customers"],
        SyntheticTruth(
            params=params,
            customers=frames["truth_customers"],
            campaigns=_read_frame(campaign_truth, fmt, ["sent_at"])
            if campaign_truth.exists()
            else None,
        ),
    )


def read_campaigns(out_dir: str | Path, fmt: str = "csv") -> pd.DataFrame | None:
    """The ``campaigns.<fmt>`` :func:`write` wrote, or None when there is none."""
    path = Path(out_dir) / f"campaigns.{fmt}"
    return _read_frame(path, fmt, ["sent_at"]) if path.exists() else None


def simulate_bgnbd_summary(
    n_customers: int,
    *,
    r: float = 0.75,
    alpha: float = 8.0,
    a: float = 0.8,
    b: float = 2.5,
    min_age_days: int = 365,
    max_age_days: int = 730,
    seed: int = 0,
) -> pd.DataFrame:
    """Per-customer (frequency, recency, T) straight from a BG/NBD process, without
    materialising transactions: the fast path for benchmarks and recovery tests at 10 M
    customers.

    Ages T are whole days, uniform on [min_age_days, max_age_days]; recency is the day of
    the last repeat purchase (whole days, as :func:`models.features.summarize` gives).
    Parameters are per week, like :func:`generate`'s. Returns columns ``frequency``,
    ``recency`` and ``T`` in days, plus the customer's ``lambda_`` and ``p_``.
    """
    _check_positive(r=r, alpha=alpha, a=a, b=b)
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1.0 / alpha, n_customers)
    p = rng.beta(a, b, n_customers)
    age_days = rng.integers(min_age_days, max_age_days + 1, n_customers)
    weeks = age_days / 7.0
    n_events = rng.poisson(lam * weeks)
    # Number of repeat purchases before dropping out, on {1, 2, ...}.
    survive = rng.geometric(p)
    x = np.minimum(n_events, survive)
    # The x-th of n uniform event times on [0, T] is T·Beta(x, n − x + 1).
    repeat = x > 0
    last = np.zeros(n_customers)
    last[repeat] = rng.beta(x[repeat], n_events[repeat] - x[repeat] + 1)
    recency_days = np.floor(last * age_days)
    return pd.DataFrame(
        {
            "frequency": x.astype(float),
            "recency": np.where(repeat, recency_days, 0.0),
            "T": age_days.astype(float),
            "lambda_": lam,
            "p_": p,
        }
    )


# --------------------------------------------------------------------------------------------
# Campaigns with known uplift
# --------------------------------------------------------------------------------------------

CUSTOMER_KINDS = ("persuadable", "sure_thing", "lost_cause", "sleeping_dog")
# offer id -> (cost per contact in currency units, strength: multiplier of the success
# probability of persuadables); a costlier offer is stronger
OFFERS: dict[str, tuple[float, float]] = {
    "reminder": (2.0, 0.6),
    "discount": (10.0, 1.0),
    "voucher": (25.0, 1.5),
}
CAMPAIGN_DAYS_BEFORE_AS_OF = (200, 100)  # send days of the campaigns, days before as_of
CAMPAIGN_WINDOW_DAYS = 60
CONTROL_SHARE = 0.25
SLEEPING_DOG_LOSS = 0.5  # chance that contact drives a would-be-retained sleeping dog away
EXTRA_PURCHASES = 0.5  # mean extra purchases (Poisson) of a saved persuadable, after the first
# kinds from the observable state on the day before the send day
RECENT_DAYS = 120  # "recent": last purchase at most this many days before
FREQUENT_PURCHASES = 3  # "frequent": at least this many purchase days
LOST_DAYS = 300  # "lost cause": no purchase for more than this many days
SENSITIVE_AGE = 45  # recent frequent customers this old or older are sleeping dogs
SUCCESS_MAX = 0.9


def campaign_kind_and_success(
    days_since_last: np.ndarray, n_purchases: np.ndarray, age: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The kind of each customer (index into :data:`CUSTOMER_KINDS`) and the base success
    probability of a persuadable (before the offer's strength), from what is observable on
    the day before the send day: days since the last purchase, purchase days, age.

    * ``lost_cause``: no purchase for more than :data:`LOST_DAYS` days; no offer changes them;
    * ``sleeping_dog``: recent (at most :data:`RECENT_DAYS` days) and frequent (at least
      :data:`FREQUENT_PURCHASES` purchase days) customers aged :data:`SENSITIVE_AGE` or more;
    * ``sure_thing``: the other recent frequent customers; no offer changes them;
    * ``persuadable``: everyone else. Base success ``0.10 + 0.30 (1 − days/300) + 0.04
      min(purchase days − 1, 3)``: the more recent and frequent, the easier to save.
    """
    dsl = np.asarray(days_since_last, dtype=float)
    npur = np.asarray(n_purchases, dtype=float)
    recent_frequent = (dsl <= RECENT_DAYS) & (npur >= FREQUENT_PURCHASES)
    kind = np.where(
        dsl > LOST_DAYS,
        2,
        np.where(recent_frequent, np.where(np.asarray(age) >= SENSITIVE_AGE, 3, 1), 0),
    )
    base = 0.10 + 0.30 * (1.0 - np.clip(dsl, 0, LOST_DAYS) / LOST_DAYS)
    base = base + 0.04 * np.minimum(np.maximum(npur - 1, 0), 3)
    return kind.astype(np.int64), np.where(kind == 0, base, 0.0)


def generate_campaigns(
    transactions: pd.DataFrame,
    customers: pd.DataFrame,
    truth: SyntheticTruth,
    seed: int = 0,
    *,
    days_before_as_of: tuple[int, ...] = CAMPAIGN_DAYS_BEFORE_AS_OF,
    window_days: int = CAMPAIGN_WINDOW_DAYS,
    control_share: float = CONTROL_SHARE,
    offers: dict[str, tuple[float, float]] | None = None,
    planned: pd.DataFrame | None = None,
    planned_id: str = "plan",
    planned_control_share: float = 0.2,
) -> tuple[pd.DataFrame, pd.DataFrame, SyntheticTruth]:
    """Randomised retention campaigns with known per-customer uplift, played into the
    transactions of a :func:`generate` data set.

    ``planned``: a contact list (``customer_id``, ``offer``, as ``cvm plan`` writes it) sent
    instead of the last campaign, on its day, as campaign ``planned_id``: a random
    ``planned_control_share`` of the listed customers is held out as the control group, the
    others get their planned offer. The earlier campaigns are drawn exactly as without it, so
    a plan made from the history before that day can be played into the same world.

    ``seed`` seeds a child of :func:`generate`'s random stream (``SeedSequence(seed,
    spawn_key=(19,))``), so ``generate`` itself draws exactly as without campaigns.

    Design
        One campaign per entry of ``days_before_as_of`` (``camp1`` sent 200 days before
        ``as_of``, ``camp2`` 100 days before, by default), each with a disjoint random share
        of the customers who bought before the send day (all of them, split evenly).
        Within a campaign each customer is assigned at random: ``control`` with probability
        ``control_share``, else one of the ``offers`` (default :data:`OFFERS`: ``reminder``
        cost 2, ``discount`` cost 10, ``voucher`` cost 25 per contact, strengths 0.6 / 1.0 /
        1.5). The campaigns file's ``cost`` is the offer's cost (0 for control).

    Kinds and effects (:func:`campaign_kind_and_success`, from the state on the day before
    the send day: recency, purchase days, age)
        Let ``p0`` be the customer's true chance of a purchase in the response window
        ``(sent_at, sent_at + window_days]`` without contact: 0 if the customer has stopped
        buying (BG/NBD dropout or complaint stop before the send time), else
        ``1 − exp(−lambda · w)`` with ``w`` the window in weeks (cut at a complaint stop
        inside it). The realised control outcome is whether the customer's own purchase
        stream has a purchase in the window.

        * persuadable, offer k: a customer who would not have bought is saved with
          probability ``s_k = min(0.9, strength_k · base success)``: the transactions gain
          ``1 + Poisson(0.5)`` purchases at uniform times in the window (spend and cost as
          the customer's other purchases). True uplift ``(1 − p0) · s_k``.
        * sleeping dog (any offer): a customer who would have bought is driven away with
          probability 0.5: every purchase after ``sent_at`` is removed. True uplift
          ``−0.5 · p0``.
        * sure things and lost causes: nothing changes; true uplift 0.

        True incremental spend (window, currency units): persuadable ``(1 − p0) s_k · 1.5 ·
        true_mean_spend``; sleeping dog ``−0.5 · (1 − exp(−mu p)) / p · true_mean_spend``,
        the expected spend of the window's BG/NBD purchases (``mu = lambda · w``, ``p`` the
        dropout probability); times ``margin`` for the incremental margin.

    Returns ``(transactions, campaigns, truth)``:

    * ``transactions``: the input with the campaigns' effects, same columns and order rules;
    * ``campaigns``: ``customer_id``, ``campaign_id``, ``sent_at`` (the send day at 09:00),
      ``treatment`` (offer id or ``control``), ``cost``, ``channel`` (``email``), sorted by
      campaign and customer;
    * ``truth``: a copy of ``truth`` whose ``customers`` follow the changed transactions
      (``repeat_purchases_observed``, ``frequency_class``, ``value_type``; a driven-away
      customer gets ``death_time = sent_at``, ``alive_at_as_of`` False, no future purchases
      and ``churn_reason`` ``"contact"``; a saved customer's ``death_time`` is at least
      the last added purchase), whose ``campaigns`` is the per-customer truth (one row per
      campaign row and offer: ``customer_id``, ``campaign_id``, ``sent_at``, ``treatment``
      (assigned), ``offer``, ``kind``, ``p_control`` (``p0``), ``true_uplift`` (retention
      probability), ``true_incremental_spend``, ``true_incremental_margin``; see
      :func:`campaign_effects` for the per-campaign averages) and whose ``params`` gain
      ``"campaigns"``: the design above, the offers, and ``effects`` (per campaign and
      offer: the mean true uplift and incremental spend over the campaign's customers, the
      effect a randomised comparison of treated and control estimates).
    """
    offers = dict(OFFERS if offers is None else offers)
    if not offers:
        raise InvalidInputError("give at least one offer", field="offers")
    if not 0.0 < control_share < 1.0:
        raise InvalidInputError("control_share must be in (0, 1)", field="control_share")
    if window_days < 1 or any(d <= window_days for d in days_before_as_of):
        raise InvalidInputError(
            "each campaign must be sent more than window_days before as_of",
            field="days_before_as_of",
        )
    if planned is not None and not 0.0 <= planned_control_share < 1.0:
        raise InvalidInputError(
            "planned_control_share must be in [0, 1)", field="planned_control_share"
        )
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(19,)))
    as_of_day = pd.Timestamp(truth.params["as_of"])
    gg_p = float(truth.params["gamma_gamma"]["p"])
    tc = truth.customers.set_index("customer_id")
    ids = tc.index
    age = customers.set_index("customer_id")["age"].reindex(ids).to_numpy(dtype=float)
    offer_ids = list(offers)
    cost_of = np.array([offers[o][0] for o in offer_ids], dtype=float)
    strength = np.array([offers[o][1] for o in offer_ids], dtype=float)

    tx = transactions.reset_index(drop=True)
    tx_code = ids.get_indexer(pd.Index(tx["customer_id"].astype("str")))
    tx_time = tx["timestamp"].to_numpy(dtype="datetime64[ns]")
    # campaigns split the customers bought before the first send day at random
    n = len(ids)
    send_days = [as_of_day - pd.Timedelta(days=int(d)) for d in sorted(days_before_as_of)[::-1]]
    first_day = pd.to_datetime(tc["birth_time"]).dt.normalize().to_numpy()
    eligible = np.flatnonzero(first_day < np.datetime64(send_days[0]))
    group = np.full(n, -1)
    group[eligible] = rng.permutation(len(eligible)) % len(send_days)
    arm_draw = rng.random(n)
    arm = np.where(
        arm_draw < control_share,
        -1,
        np.minimum(
            ((arm_draw - control_share) / (1 - control_share) * len(offer_ids)).astype(int),
            len(offer_ids) - 1,
        ),
    )
    u_effect = rng.random(n)  # the common random number of the customer's reaction

    lam = tc["lambda_"].to_numpy(dtype=float)
    p_drop = tc["p_"].to_numpy(dtype=float)
    mean_spend = tc["true_mean_spend"].to_numpy(dtype=float)
    margin = tc["margin"].to_numpy(dtype=float)
    death = tc["death_time"].to_numpy(dtype="datetime64[ns]").copy()
    stopped = tc["stopped_after_problem"].to_numpy(dtype=bool)
    problem_time = tc["problem_time"].to_numpy(dtype="datetime64[ns]")

    campaign_ids = [f"camp{j + 1}" for j in range(len(send_days))]
    arms = [arm] * len(send_days)
    if planned is not None:
        group[group == len(send_days) - 1] = -1
        members_planned, arms[-1], planned_position = _planned_arms(
            planned, ids, offer_ids, first_day, send_days[-1], planned_control_share, seed
        )
        campaign_ids[-1] = str(planned_id)
    added: list[pd.DataFrame] = []
    remove = np.zeros(len(tx), dtype=bool)
    done = 0  # added purchases already in tx
    rows: list[pd.DataFrame] = []
    truth_rows: list[pd.DataFrame] = []
    driven_away = np.zeros(n, dtype=bool)
    sent_of = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    last_added = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    window = np.timedelta64(int(window_days) * SECONDS_PER_DAY, "s")
    for j, day in enumerate(send_days):
        members = np.flatnonzero(group == j)
        if planned is not None and j == len(send_days) - 1:
            members = members_planned
        arm = arms[j]
        campaign_id = campaign_ids[j]
        if j:  # the state as the earlier campaigns left it (a customer may be in several)
            tx = pd.concat([tx[~remove], *added[done:]], ignore_index=True)
            tx_code = ids.get_indexer(pd.Index(tx["customer_id"].astype("str")))
            tx_time = tx["timestamp"].to_numpy(dtype="datetime64[ns]")
            remove = np.zeros(len(tx), dtype=bool)
            done = len(added)
        sent = np.datetime64(day + pd.Timedelta(hours=9), "ns")
        feature_day = np.datetime64(day - pd.Timedelta(days=1), "D")
        # observable state on the day before the send day
        before = (tx_time < np.datetime64(day, "ns")) & (tx_code >= 0)
        days = tx_time[before].astype("datetime64[D]")
        frame = pd.DataFrame({"c": tx_code[before], "d": days}).drop_duplicates()
        per = frame.groupby("c")["d"].agg(["max", "size"])
        last = per["max"].reindex(members).to_numpy(dtype="datetime64[D]")
        dsl = (feature_day - last).astype(float)
        npur = per["size"].reindex(members).to_numpy(dtype=float)
        kind, base = campaign_kind_and_success(dsl, npur, age[members])
        # the base outcome, from the customer's own purchase stream
        after = (tx_time > sent) & (tx_time <= sent + window) & (tx_code >= 0)
        retained0 = np.zeros(n, dtype=bool)
        retained0[tx_code[after]] = True
        y0 = retained0[members]
        # true chance of a purchase in the window without contact
        alive = np.isnat(death[members]) | (death[members] > sent)
        cut = stopped[members] & (problem_time[members] > sent)
        w_end = np.where(cut, np.minimum(problem_time[members], sent + window), sent + window)
        weeks = (w_end - sent).astype("timedelta64[s]").astype(float) / SECONDS_PER_WEEK
        mu = lam[members] * weeks
        p0 = np.where(alive, 1.0 - np.exp(-mu), 0.0)
        pm = np.clip(p_drop[members], 1e-12, 1.0)
        window_purchases = np.where(alive, -np.expm1(-mu * pm) / pm, 0.0)
        success = np.minimum(SUCCESS_MAX, strength[None, :] * base[:, None])  # (m, offers)
        persuadable = (kind == 0)[:, None]
        dog = (kind == 3)[:, None]
        uplift = np.where(
            persuadable,
            (1 - p0)[:, None] * success,
            np.where(dog, -SLEEPING_DOG_LOSS * p0[:, None], 0.0),
        )
        spend_conv = (1.0 + EXTRA_PURCHASES) * mean_spend[members]
        inc_spend = np.where(
            persuadable,
            (1 - p0)[:, None] * success * spend_conv[:, None],
            np.where(
                dog,
                -SLEEPING_DOG_LOSS * (window_purchases * mean_spend[members])[:, None],
                0.0,
            ),
        )
        assigned = arm[members]
        treated = assigned >= 0
        # realised reactions of the treated
        my_success = np.where(treated, success[np.arange(len(members)), np.maximum(assigned, 0)], 0)
        saved = treated & (kind == 0) & ~y0 & (u_effect[members] < my_success)
        lost = treated & (kind == 3) & y0 & (u_effect[members] < SLEEPING_DOG_LOSS)
        lost_ids = members[lost]
        driven_away[lost_ids] = True
        death[lost_ids] = sent
        sent_of[members] = sent
        is_lost = np.zeros(n, dtype=bool)
        is_lost[lost_ids] = True
        remove |= (tx_code >= 0) & is_lost[np.maximum(tx_code, 0)] & (tx_time > sent)
        saved_ids = members[saved]
        driven_away[saved_ids] = False  # won back by a later campaign
        if saved_ids.size:
            count = 1 + rng.poisson(EXTRA_PURCHASES, saved_ids.size)
            who = np.repeat(saved_ids, count)
            offset = np.floor(rng.random(who.size) * (int(window_days) * SECONDS_PER_DAY - 1))
            when = sent + (1 + offset.astype(np.int64)).astype("timedelta64[s]")
            amount = _campaign_amounts(rng, tc, who, gg_p)
            noise = 1.0 + rng.normal(0.0, COST_NOISE_SD, who.size)
            channel_sets = tc["channels"].to_numpy(dtype=object)[who]
            pick = rng.random(who.size)
            channel = [
                s.split("|")[int(u * len(s.split("|")))]
                for s, u in zip(channel_sets, pick, strict=True)
            ]
            added.append(
                pd.DataFrame(
                    {
                        "customer_id": ids.take(who),
                        "timestamp": when.astype("datetime64[ns]"),
                        "amount": amount,
                        "cost": np.round(amount * (1.0 - margin[who]) * noise, 2),
                        "channel": pd.array(channel, dtype="str"),
                    }
                )
            )
            ends = pd.Series(when).groupby(who).max()
            last_added[ends.index.to_numpy()] = ends.to_numpy(dtype="datetime64[ns]")
        treatment = np.where(
            treated, np.array(offer_ids, dtype=object)[np.maximum(assigned, 0)], "control"
        )
        sent_rows = pd.DataFrame(
            {
                "customer_id": ids.take(members),
                "campaign_id": campaign_id,
                "sent_at": np.full(len(members), sent),
                "treatment": pd.array(treatment, dtype="str"),
                "cost": np.where(treated, cost_of[np.maximum(assigned, 0)], 0.0),
                "channel": "email",
            }
        )
        if planned is not None:  # the offer each planned customer was meant to get
            is_plan = j == len(send_days) - 1
            sent_rows["planned_offer"] = pd.array(
                np.array(offer_ids, dtype=object)[planned_position[members]]
                if is_plan
                else np.full(len(members), None, dtype=object),
                dtype="str",
            )
        rows.append(sent_rows)
        k = len(offer_ids)
        truth_rows.append(
            pd.DataFrame(
                {
                    "customer_id": ids.take(np.repeat(members, k)),
                    "campaign_id": campaign_id,
                    "sent_at": np.full(len(members) * k, sent),
                    "treatment": pd.array(np.repeat(treatment, k), dtype="str"),
                    "offer": pd.array(np.tile(offer_ids, len(members)), dtype="str"),
                    "kind": _labels(CUSTOMER_KINDS, np.repeat(kind, k)),
                    "p_control": np.repeat(p0, k),
                    "true_uplift": uplift.ravel(),
                    "true_incremental_spend": inc_spend.ravel(),
                    "true_incremental_margin": (inc_spend * margin[members][:, None]).ravel(),
                }
            )
        )

    new_tx = pd.concat([tx[~remove], *added[done:]], ignore_index=True)
    new_tx = new_tx.sort_values(["customer_id", "timestamp"], kind="stable").reset_index(drop=True)
    campaigns = pd.concat(rows, ignore_index=True).sort_values(
        ["campaign_id", "customer_id"], kind="stable", ignore_index=True
    )
    per_offer = pd.concat(truth_rows, ignore_index=True).sort_values(
        ["campaign_id", "customer_id"], kind="stable", ignore_index=True
    )
    new_truth = _campaign_truth_customers(tc, new_tx, driven_away, sent_of, last_added)
    params = json.loads(json.dumps(truth.params))
    params["campaigns"] = {
        "seed": int(seed),
        "campaigns": {
            campaign_ids[j]: {"sent_at": str(pd.Timestamp(d) + pd.Timedelta(hours=9))}
            for j, d in enumerate(send_days)
        },
        "window_days": int(window_days),
        "control_share": float(control_share),
        "offers": {o: {"cost": offers[o][0], "strength": offers[o][1]} for o in offer_ids},
        "kinds": list(CUSTOMER_KINDS),
        "sleeping_dog_loss": SLEEPING_DOG_LOSS,
        "extra_purchases": EXTRA_PURCHASES,
        "kind_rules": {
            "recent_days": RECENT_DAYS,
            "frequent_purchases": FREQUENT_PURCHASES,
            "lost_days": LOST_DAYS,
            "sensitive_age": SENSITIVE_AGE,
        },
        "effects": _effects_dict(per_offer),
    }
    out_truth = SyntheticTruth(params=params, customers=new_truth, campaigns=per_offer)
    return new_tx, campaigns, out_truth


def _planned_arms(
    planned: pd.DataFrame,
    ids: pd.Index,
    offer_ids: list[str],
    first_day: np.ndarray,
    day: pd.Timestamp,
    control_share: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(customer codes, arm per customer code, planned offer per customer code) of a planned
    campaign: the arm is the listed offer, or control (-1) for a random ``control_share`` of
    the listed customers; the planned offer is the listed one either way (-1: not listed).

    ``planned`` is a contact list (``customer_id``, ``offer``: ``cvm plan --out``) or a send
    whose control group is already drawn (``customer_id``, ``treatment``, ``planned_offer``:
    ``cvm plan --campaign-out``; its control rows are kept as they are)."""
    drawn = "treatment" in planned.columns and "planned_offer" in planned.columns
    needed = ("customer_id", "treatment", "planned_offer") if drawn else ("customer_id", "offer")
    missing = [c for c in needed if c not in planned.columns]
    if missing:
        raise InvalidInputError(
            f"the plan needs the columns customer_id and offer (a contact list) or "
            f"customer_id, treatment and planned_offer (a campaigns file); missing: "
            f"{', '.join(missing)}",
            field="planned",
        )
    customer = planned["customer_id"].astype("str")
    offer = planned["planned_offer" if drawn else "offer"].astype("str")
    repeated = customer[customer.duplicated()]
    if len(repeated):
        raise InvalidInputError(
            f"the plan lists {len(repeated)} customer(s) twice, e.g. {repeated.iloc[0]!r}",
            field="customer_id",
        )
    code = ids.get_indexer(pd.Index(customer))
    if (code < 0).any():
        unknown = customer[code < 0]
        raise InvalidInputError(
            f"{len(unknown)} planned customer(s) are not in the data set, e.g. {unknown.iloc[0]!r}",
            field="customer_id",
        )
    late = first_day[code] >= np.datetime64(day)
    if late.any():
        raise InvalidInputError(
            f"{int(late.sum())} planned customer(s) bought nothing before the send day "
            f"{day.date()}, e.g. {customer[late].iloc[0]!r}",
            field="customer_id",
        )
    position = pd.Index(offer_ids).get_indexer(pd.Index(offer))
    if (position < 0).any():
        raise InvalidInputError(
            f"unknown offer {offer[position < 0].iloc[0]!r} in the plan; the simulated offers "
            f"are {', '.join(offer_ids)}",
            field="offer",
        )
    if drawn:
        treatment = planned["treatment"].astype("str").str.strip().str.lower()
        sent = planned["treatment"].astype("str").str.strip()
        control = (treatment == "control").to_numpy()
        wrong = ~control & (sent != offer).to_numpy()
        if wrong.any():
            raise InvalidInputError(
                f"{int(wrong.sum())} planned row(s) send an offer other than their planned "
                f"offer, e.g. customer {customer[wrong].iloc[0]!r}",
                field="treatment",
            )
    else:
        held_out = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(19, 1)))
        control = held_out.random(len(code)) < control_share
    arm = np.full(len(ids), -1)
    arm[code] = np.where(control, -1, position)
    listed = np.full(len(ids), -1)
    listed[code] = position
    return np.sort(code), arm, listed


def _campaign_amounts(
    rng: np.random.Generator, tc: pd.DataFrame, who: np.ndarray, p: float
) -> np.ndarray:
    """Amounts of added purchases: ``Gamma(p, rate nu)`` times the channel multiplier, cents."""
    nu = tc["nu_"].to_numpy(dtype=float)[who]
    multiplier = tc["channel_multiplier"].to_numpy(dtype=float)[who]
    return np.maximum(np.round(rng.gamma(p, 1.0 / nu) * multiplier, 2), 0.01)


def _campaign_truth_customers(
    tc: pd.DataFrame,
    transactions: pd.DataFrame,
    driven_away: np.ndarray,
    sent_of: np.ndarray,
    last_added: np.ndarray,
) -> pd.DataFrame:
    """``SyntheticTruth.customers`` after the campaigns (see :func:`generate_campaigns`)."""
    out = tc.reset_index()
    counts = transactions["customer_id"].value_counts().reindex(tc.index, fill_value=0)
    x_obs = counts.to_numpy(dtype=np.int64) - 1
    out["repeat_purchases_observed"] = x_obs
    freq_high = x_obs >= VALUE_TYPE_REPEAT_THRESHOLD
    high_margin = (out["margin_class"] == "high").to_numpy()
    out["frequency_class"] = _labels(("low", "high"), freq_high.astype(np.int64))
    code = (~high_margin).astype(np.int64) * 2 + (~freq_high).astype(np.int64)
    out["value_type"] = _labels(VALUE_TYPES, code)
    death = out["death_time"].to_numpy(dtype="datetime64[ns]").copy()
    saved = ~np.isnat(last_added) & ~np.isnat(death)
    death[saved] = np.maximum(death[saved], last_added[saved])
    death[driven_away] = sent_of[driven_away]
    out["death_time"] = death
    out.loc[driven_away, "alive_at_as_of"] = False
    out.loc[driven_away, "future_purchases"] = 0
    out.loc[driven_away, "future_revenue"] = 0.0
    out["churn_reason"] = out["churn_reason"].mask(driven_away, "contact")
    return out


def _effects_dict(per_offer: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    effects: dict[str, dict[str, dict[str, float]]] = {}
    grouped = per_offer.groupby(["campaign_id", "offer"], sort=True)
    table = grouped.agg(
        true_uplift=("true_uplift", "mean"),
        true_incremental_spend=("true_incremental_spend", "mean"),
        true_incremental_margin=("true_incremental_margin", "mean"),
        n_customers=("true_uplift", "size"),
    )
    for row in table.reset_index().to_dict("records"):
        effects.setdefault(str(row["campaign_id"]), {})[str(row["offer"])] = {
            "true_uplift": float(row["true_uplift"]),
            "true_incremental_spend": float(row["true_incremental_spend"]),
            "true_incremental_margin": float(row["true_incremental_margin"]),
            "n_customers": int(row["n_customers"]),
        }
    return effects


def campaign_effects(truth: SyntheticTruth) -> pd.DataFrame:
    """Per campaign and offer, the true average effect over the campaign's customers:
    ``campaign_id``, ``offer``, ``true_uplift`` (retention probability), ``true_incremental_
    spend`` and ``true_incremental_margin`` (currency units per customer), ``n_customers``."""
    effects = truth.params.get("campaigns", {}).get("effects", {})
    return pd.DataFrame(
        [
            {"campaign_id": c, "offer": o, **values}
            for c, per in effects.items()
            for o, values in per.items()
        ]
    )
