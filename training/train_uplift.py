"""Fit the uplift family (``cvm-uplift``) from randomised campaign history, with holdout
metrics: the Qini coefficient (the gate metric) and AUUC per offer, and Qini curve plots.

Rows: one per campaign contact whose response window ended by ``as_of``
(:func:`training.campaigns.uplift_training_frame`: the churn features as of the day before
the send, the outcome ``retained`` = a purchase in the window). Holdout: the latest
campaigns, by send time, until they hold at least :data:`HOLDOUT_SHARE` of the contacts
(never every campaign), like the other families' time holdouts; with a single campaign, a
random :data:`SINGLE_CAMPAIGN_HOLDOUT` of each arm. A twin fitted without the holdout is
measured on it (and is what ``cvm retrain`` compares with the champion); the served model
is refitted on every contact with the learner the twin chose.

No MLflow here (like :mod:`training.pipeline`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.drift import reference_distribution
from models.exceptions import InvalidInputError
from models.features import end_of_day
from models.uplift import CONTROL, UpliftModel, auuc, qini_coefficient, qini_curve
from models.uplift.learners import control_rows
from training import evaluate
from training.campaigns import DEFAULT_WINDOW_DAYS, feature_columns, uplift_training_frame

__all__ = [
    "HOLDOUT_SHARE",
    "MIN_ARM_CONTACTS",
    "UpliftTraining",
    "holdout_metrics",
    "train_uplift",
]

# The latest campaigns form the holdout until they hold this share of the contacts.
HOLDOUT_SHARE = 0.2
# With one campaign: this share of each arm, at random.
SINGLE_CAMPAIGN_HOLDOUT = 0.3
# An arm (the control group, an offer) with fewer contacts cannot be learnt from.
MIN_ARM_CONTACTS = 20
# Bootstrap refits of the served model, for the standard error of its estimates.
REPLICAS = 8
# What the retrain comparison needs of the holdout rows besides the features.
HOLDOUT_COLUMNS = ("campaign_id", "treatment", "retained")
# The spend model's learner: the T-learner (the X- and DR-learners' second stages cost twice
# the time and their pseudo-outcomes of a skewed spend are noisy; the spend model informs,
# it is not gated).
SPEND_LEARNERS = ("t",)


@dataclass
class UpliftTraining:
    """What :func:`train_uplift` produces for :func:`training.pipeline.train_all`."""

    model: UpliftModel
    holdout_model: UpliftModel
    metrics: dict[str, float]
    params: dict[str, Any]
    figures: dict[str, Figure] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    # The holdout contacts: the model's feature columns and HOLDOUT_COLUMNS
    holdout: pd.DataFrame | None = None
    reference: dict[str, Any] = field(default_factory=dict)


def train_uplift(
    campaigns: pd.DataFrame,
    transactions: pd.DataFrame,
    customers: pd.DataFrame | None,
    as_of: pd.Timestamp,
    *,
    feature_names: list[str] | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    random_state: int = 0,
    step: Callable[[str], None] = print,
) -> UpliftTraining:
    """The uplift model of retention for each offer in ``campaigns`` (a frame of
    :func:`training.campaigns.load_campaigns`) over control, as of ``as_of``.

    ``feature_names``: the input columns (default: every churn feature of the training
    frame); :func:`training.pipeline.train_all` passes the churn model's, so that one row
    serves both ``cvm-churn`` and ``cvm-uplift``."""
    cutoff = end_of_day(as_of)
    sent = pd.to_datetime(campaigns["sent_at"])
    complete = (sent + pd.Timedelta(days=int(window_days)) <= cutoff).to_numpy()
    if not complete.any():
        raise InvalidInputError(
            f"campaigns: none of the {len(campaigns):,} contacts has a complete "
            f"{window_days}-day response window by {cutoff.date()} (the latest sent_at is "
            f"{sent.max()}): the uplift model needs campaigns sent at least {window_days} "
            "days before --as-of",
            field="sent_at",
        )
    if not complete.all():
        step(
            f"uplift: {int((~complete).sum()):,} of {len(campaigns):,} campaign contacts left "
            f"out: their {window_days}-day response window ends after {cutoff.date()}"
        )
    used = _usable_arms(campaigns.loc[complete].reset_index(drop=True), step)
    history = transactions[pd.to_datetime(transactions["timestamp"]) <= cutoff]
    frame = uplift_training_frame(used, history, customers, window_days=window_days)
    available = feature_columns(frame)
    columns = (
        [c for c in feature_names if c in frame.columns] if feature_names is not None else available
    )
    if not columns:
        raise InvalidInputError("uplift: no feature columns to learn from", field="features")

    held, holdout_text = _holdout_rows(frame, random_state)
    X = frame[columns]
    arms = frame["treatment"].astype("str").to_numpy()
    y = frame["retained"].to_numpy(dtype=float)
    held_from = _held_out_from(frame)
    if held_from is not None:
        step(
            f"uplift: {int((held_from != '').sum()):,} control contacts of planned campaigns "
            "are compared only with the offer they were held out from (planned_offer)"
        )

    def part(rows: np.ndarray) -> np.ndarray | None:
        return None if held_from is None else held_from[rows]

    twin = UpliftModel(random_state=random_state).fit(
        X[~held], arms[~held], y[~held], control_for=part(~held)
    )
    extra = [c for c in ("spend", "planned_offer") if c in frame.columns]
    holdout = frame.loc[held, [*columns, *HOLDOUT_COLUMNS, *extra]].reset_index(drop=True)
    metrics = holdout_metrics(twin, holdout)
    step(
        f"uplift: learner {twin.learner_} chosen ("
        + ", ".join(f"{n} {s['qini']:.4f}" for n, s in twin.scores_.items())
        + f" Qini); holdout ({holdout_text}) Qini {metrics.get('uplift_qini', float('nan')):.4f}"
    )
    model = UpliftModel(learners=(twin.learner_,), random_state=random_state).fit(
        X, arms, y, control_for=held_from
    )
    model.fit_replicas(X, arms, y, control_for=held_from, replicas=REPLICAS)
    step(
        f"uplift: {REPLICAS} bootstrap refits for the standard error of each estimate (the "
        "planner's lower confidence bound)"
    )
    spend_metrics: dict[str, float] = {}
    if "spend" in frame.columns:  # the increase in spend in the window, beside retention
        spend = frame["spend"].to_numpy(dtype=float)
        twin.spend_model_ = UpliftModel(learners=SPEND_LEARNERS, random_state=random_state).fit(
            X[~held], arms[~held], spend[~held], control_for=part(~held)
        )
        spend_metrics = spend_holdout_metrics(twin.spend_model_, holdout)
        model.spend_model_ = UpliftModel(
            learners=(twin.spend_model_.learner_,), random_state=random_state
        ).fit(X, arms, spend, control_for=held_from)
        step(
            f"uplift of spend: learner {twin.spend_model_.learner_} chosen; holdout Qini "
            f"{spend_metrics.get('uplift_spend_qini', float('nan')):.2f} (currency per contact)"
        )
    metrics.update(spend_metrics)

    metrics.update(
        {
            "uplift_n_contacts": float(len(frame)),
            "uplift_n_holdout": float(held.sum()),
            "uplift_n_campaigns": float(frame["campaign_id"].nunique()),
            "uplift_n_offers": float(len(model.offers_)),
            "uplift_control_share": float(np.mean(arms == CONTROL)),
        }
    )
    for name, scores in twin.scores_.items():
        metrics[f"uplift_selection_qini_{name}"] = float(scores["qini"])
    # each offer against the control contacts it is compared with
    controls = control_rows(arms, CONTROL, list(model.offers_), held_from)
    for offer in model.offers_:
        metrics[f"uplift_observed_{offer}"] = float(
            y[arms == offer].mean() - y[controls[offer]].mean()
        )
    if "spend" in frame.columns:
        spent = frame["spend"].to_numpy(dtype=float)
        for offer in model.offers_:
            metrics[f"uplift_observed_spend_{offer}"] = float(
                spent[arms == offer].mean() - spent[controls[offer]].mean()
            )

    figures = {
        f"uplift_qini_{offer}.png": _plot_qini(twin, holdout, offer) for offer in twin.offers_
    }
    sent_used = pd.to_datetime(frame["sent_at"])
    params = {
        "uplift_learner": model.learner_,
        "uplift_learners_tried": ",".join(twin.learners),
        "uplift_offers": ",".join(model.offers_),
        "uplift_outcome": "retained, spend" if "spend" in frame.columns else "retained",
        "uplift_window_days": int(window_days),
        "uplift_campaigns": ",".join(sorted(frame["campaign_id"].astype("str").unique())),
        "uplift_first_sent": str(sent_used.min().date()),
        "uplift_last_sent": str(sent_used.max().date()),
        "uplift_holdout": holdout_text,
        "uplift_replicas": REPLICAS,
    }
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(frame[c])]
    return UpliftTraining(
        model=model,
        holdout_model=twin,
        metrics=metrics,
        params=params,
        figures=figures,
        tables={"uplift_holdout": _offer_table(twin, holdout)},
        holdout=holdout,
        reference=reference_distribution(frame, numeric),
    )


def _held_out_from(frame: pd.DataFrame) -> np.ndarray | None:
    """Per contact, the offer a control contact of a planned campaign was held out from
    (``planned_offer``), ``""`` for every other contact; None when no campaign is planned."""
    if "planned_offer" not in frame.columns:
        return None
    control = (frame["treatment"].astype("str") == CONTROL).to_numpy()
    named = frame["planned_offer"].astype("object").where(frame["planned_offer"].notna(), "")
    out = np.where(control, named.astype(str).to_numpy(), "")
    return out if (out != "").any() else None


def _usable_arms(campaigns: pd.DataFrame, step: Callable[[str], None]) -> pd.DataFrame:
    """The contacts of the control group and of each offer with at least
    :data:`MIN_ARM_CONTACTS` (the others are left out, said in a line); an error without a
    control group or any such offer."""
    counts = campaigns["treatment"].astype("str").value_counts()
    n_control = int(counts.get(CONTROL, 0))
    if n_control < MIN_ARM_CONTACTS:
        raise InvalidInputError(
            f"campaigns: the uplift model needs a randomised control group (treatment "
            f"'{CONTROL}') of at least {MIN_ARM_CONTACTS} contacts with a complete response "
            f"window; found {n_control}",
            field="treatment",
        )
    small = {str(k): int(v) for k, v in counts.items() if k != CONTROL and v < MIN_ARM_CONTACTS}
    if len(small) == len(counts) - 1:
        raise InvalidInputError(
            f"campaigns: no offer has {MIN_ARM_CONTACTS} contacts with a complete response "
            f"window to learn from (offers: {', '.join(f'{k} {v}' for k, v in small.items())})",
            field="treatment",
        )
    if small:
        step(
            f"uplift: offers with fewer than {MIN_ARM_CONTACTS} contacts left out: "
            + ", ".join(f"{k} ({v})" for k, v in sorted(small.items()))
        )
        keep = ~campaigns["treatment"].astype("str").isin(set(small)).to_numpy()
        campaigns = campaigns.loc[keep].reset_index(drop=True)
    return campaigns


def _holdout_rows(frame: pd.DataFrame, seed: int) -> tuple[np.ndarray, str]:
    """Rows held out (True) and how they were chosen (see the module docstring)."""
    last_sent = pd.to_datetime(frame["sent_at"]).groupby(frame["campaign_id"]).max()
    order = last_sent.sort_values(ascending=False, kind="stable").index.tolist()
    campaign = frame["campaign_id"].to_numpy()
    if len(order) > 1:
        chosen: list[str] = []
        held = np.zeros(len(frame), dtype=bool)
        for name in order[:-1]:
            chosen.append(str(name))
            held |= campaign == name
            if held.mean() >= HOLDOUT_SHARE:
                break
        return held, "latest campaigns: " + ", ".join(chosen)
    rng = np.random.default_rng(seed)
    arms = frame["treatment"].astype("str").to_numpy()
    held = np.zeros(len(frame), dtype=bool)
    for arm in np.unique(arms):
        rows = np.flatnonzero(arms == arm)
        held[rng.permutation(rows)[: int(round(SINGLE_CAMPAIGN_HOLDOUT * len(rows)))]] = True
    return held, f"a random {SINGLE_CAMPAIGN_HOLDOUT:.0%} of each arm of the one campaign"


def _offer_rows(
    model: UpliftModel, holdout: pd.DataFrame
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per offer the model knows and the holdout holds with control: (y, treated, effect)."""
    effects = model.predict(holdout[list(model.feature_names_in_)])
    arms = holdout["treatment"].astype("str").to_numpy()
    y = holdout["retained"].to_numpy(dtype=float)
    controls = control_rows(arms, model.control, list(model.offers_), _held_out_from(holdout))
    out = {}
    for k, offer in enumerate(model.offers_):
        rows = (arms == offer) | controls[offer]
        treated = arms[rows] == offer
        if treated.all() or not treated.any():
            continue
        out[offer] = (y[rows], treated, effects[rows, k])
    return out


def holdout_metrics(model: UpliftModel, holdout: pd.DataFrame) -> dict[str, float]:
    """The model's ranking of the holdout contacts (feature columns plus ``treatment`` and
    ``retained``): ``uplift_qini_<offer>`` and ``uplift_auuc_<offer>`` for each offer it knows
    that the holdout holds beside control, ``uplift_qini`` and ``uplift_auuc`` their means
    (none when no offer can be measured)."""
    out: dict[str, float] = {}
    qini, area = [], []
    for offer, (y, treated, effect) in _offer_rows(model, holdout).items():
        out[f"uplift_qini_{offer}"] = qini_coefficient(y, treated, effect)
        out[f"uplift_auuc_{offer}"] = auuc(y, treated, effect)
        qini.append(out[f"uplift_qini_{offer}"])
        area.append(out[f"uplift_auuc_{offer}"])
    if qini:
        out["uplift_qini"] = float(np.mean(qini))
        out["uplift_auuc"] = float(np.mean(area))
    return out


def spend_holdout_metrics(model: UpliftModel, holdout: pd.DataFrame) -> dict[str, float]:
    """The spend model's ranking of the holdout contacts (``spend`` the outcome):
    ``uplift_spend_qini_<offer>`` and their mean ``uplift_spend_qini`` (currency units per
    contact above random targeting)."""
    if "spend" not in holdout.columns:
        return {}
    out: dict[str, float] = {}
    renamed = holdout.drop(columns=["retained"]).rename(columns={"spend": "retained"})
    qini = []
    for offer, (y, treated, effect) in _offer_rows(model, renamed).items():
        out[f"uplift_spend_qini_{offer}"] = qini_coefficient(y, treated, effect)
        qini.append(out[f"uplift_spend_qini_{offer}"])
    if qini:
        out["uplift_spend_qini"] = float(np.mean(qini))
    return out


def _offer_table(model: UpliftModel, holdout: pd.DataFrame) -> pd.DataFrame:
    """Per offer on the holdout: contacts treated and control, observed retention uplift,
    Qini coefficient and AUUC."""
    rows = []
    for offer, (y, treated, effect) in _offer_rows(model, holdout).items():
        rows.append(
            {
                "offer": offer,
                "treated": int(treated.sum()),
                "control": int((~treated).sum()),
                "observed_uplift": float(y[treated].mean() - y[~treated].mean()),
                "qini": qini_coefficient(y, treated, effect),
                "auuc": auuc(y, treated, effect),
            }
        )
    return pd.DataFrame(rows).set_index("offer") if rows else pd.DataFrame()


def _plot_qini(model: UpliftModel, holdout: pd.DataFrame, offer: str) -> Figure:
    """The Qini curve of one offer on the holdout beside random targeting."""
    fig, ax = evaluate.subplots(figsize=(6, 4))
    measured = _offer_rows(model, holdout).get(offer)
    if measured is not None:
        y, treated, effect = measured
        x, q = qini_curve(y, treated, effect)
        ax.plot(x, q, label=f"model ({model.learner_}-learner)")
        ax.plot([0, 1], [0, q[-1]], "--", color="grey", label="random targeting")
        ax.set_title(f"{offer}: Qini coefficient {qini_coefficient(y, treated, effect):.4f}")
    return evaluate.finish(
        fig, ax, "share of contacts targeted", "incremental retained per contact", legend=True
    )
