"""The uplift model: per customer and offer, the effect of the offer over control, with the
learner chosen on a holdout by the Qini coefficient."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from models.churn.encoding import TableEncoder, as_frame
from models.exceptions import InvalidInputError
from models.uplift.learners import CONTROL, DRLearner, TLearner, XLearner, control_rows
from models.uplift.metrics import auuc, qini_coefficient

__all__ = ["LEARNERS", "UpliftModel", "model_input", "served_input", "uplift_matrix"]

LEARNERS: dict[str, type] = {"t": TLearner, "x": XLearner, "dr": DRLearner}


class UpliftModel(BaseEstimator):
    """Effects of each offer over control on one outcome (0/1 retention, or spend).

    ``fit(X, treatment, y, control_for=None)``: ``X`` a DataFrame of features (numbers and
    categories, e.g. the feature columns of :func:`training.campaigns.uplift_training_frame`;
    encoded by :class:`models.churn.encoding.TableEncoder`), ``treatment`` the offer id of
    each row or ``control``, ``y`` the outcome; ``control_for`` (planned campaigns), for each
    control row the offer it was held out from (see :mod:`models.uplift.learners`; each
    offer is then learnt and scored against its own held-out customers). Each learner of ``learners`` (names of :data:`LEARNERS`:
    ``"t"``, ``"x"``, ``"dr"``) is fitted on the rows outside a random holdout (share
    ``holdout``, stratified by arm) and scored on the holdout by the Qini coefficient of
    each offer against control (rows of that offer and of control, ranked by the predicted
    effect of that offer), averaged over the offers; the best (ties: the earlier in
    ``learners``) is refitted on every row.

    Fitted: ``learner_`` (name), ``model_`` (the refitted learner), ``offers_`` (the
    offer ids, the columns of :meth:`predict`), ``scores_`` (per learner: ``qini`` (mean),
    ``auuc`` (mean), and ``qini_by_offer``), ``encoder_``, ``feature_names_in_``,
    ``binary_`` (0/1 outcome).
    """

    def __init__(
        self,
        learners: tuple[str, ...] = ("t", "x", "dr"),
        holdout: float = 0.3,
        control: str = CONTROL,
        random_state: int = 0,
        learner_params: dict[str, Any] | None = None,
    ):
        self.learners = learners
        self.holdout = holdout
        self.control = control
        self.random_state = random_state
        self.learner_params = learner_params

    def _learner(self, name: str) -> Any:
        if name not in LEARNERS:
            raise InvalidInputError(
                f"unknown learner {name!r}; use one of {', '.join(LEARNERS)}", field="learners"
            )
        return LEARNERS[name](
            control=self.control,
            categorical=self.encoder_.categorical_mask,
            random_state=self.random_state,
            **(self.learner_params or {}),
        )

    def fit(self, X: Any, treatment: Any, y: Any, control_for: Any = None) -> UpliftModel:
        frame = as_frame(X)
        arms = np.asarray(treatment).astype(str)
        y = np.asarray(y, dtype=float)
        if len(frame) != len(arms) or len(arms) != len(y):
            raise InvalidInputError("X, treatment and y must have one row per contact", field="X")
        named = None if control_for is None else np.asarray(control_for, dtype=object)
        if named is not None and len(named) != len(arms):
            raise InvalidInputError(
                "control_for must have one value per contact", field="control_for"
            )
        if not 0.0 < self.holdout < 1.0:
            raise InvalidInputError("holdout must be in (0, 1)", field="holdout")
        self.feature_names_in_ = list(frame.columns)
        self.encoder_ = TableEncoder().fit(frame)
        matrix = self.encoder_.transform(frame)
        held = _stratified_holdout(arms, self.holdout, self.random_state)
        self.scores_: dict[str, dict[str, Any]] = {}
        part = (lambda rows: None) if named is None else (lambda rows: named[rows])
        for name in self.learners:
            learner = self._learner(name).fit(
                matrix[~held], arms[~held], y[~held], control_for=part(~held)
            )
            effects = learner.predict(matrix[held])
            self.scores_[name] = _holdout_scores(
                effects, arms[held], y[held], learner.offers_, self.control, part(held)
            )
        # a Qini that is not a number (nothing to rank) never wins
        self.learner_ = max(
            self.learners, key=lambda n: np.nan_to_num(self.scores_[n]["qini"], nan=-np.inf)
        )
        self.model_ = self._learner(self.learner_).fit(matrix, arms, y, control_for=named)
        self.offers_ = list(self.model_.offers_)
        self.binary_ = bool(self.model_.binary_)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """``(n, n_offers)``: the predicted effect of each offer (columns in ``offers_``
        order) over control: the increase in retention probability, or in spend."""
        frame = as_frame(X)
        return np.asarray(self.model_.predict(self.encoder_.transform(frame)), dtype=float)

    def fit_replicas(
        self, X: Any, treatment: Any, y: Any, control_for: Any = None, replicas: int = 8
    ) -> UpliftModel:
        """The uncertainty of the estimates: ``replicas`` refits of the chosen learner on
        bootstrap resamples of the contacts (drawn within each arm, so every arm keeps its
        size); :meth:`predict_sd` is the spread of their estimates. Sets ``replicas_``."""
        frame = as_frame(X)
        arms = np.asarray(treatment).astype(str)
        y = np.asarray(y, dtype=float)
        named = None if control_for is None else np.asarray(control_for, dtype=object)
        matrix = self.encoder_.transform(frame)
        rng = np.random.default_rng(self.random_state)
        groups = [np.flatnonzero(arms == arm) for arm in np.unique(arms)]
        self.replicas_: list[Any] = []
        for _ in range(int(replicas)):
            rows = np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups])
            learner = self._learner(self.learner_).fit(
                matrix[rows],
                arms[rows],
                y[rows],
                control_for=None if named is None else named[rows],
            )
            if list(learner.offers_) != list(self.offers_):  # every arm is kept: never
                raise InvalidInputError("a bootstrap refit lost an offer", field="treatment")
            self.replicas_.append(learner)
        return self

    def predict_sd(self, X: Any) -> np.ndarray | None:
        """``(n, n_offers)``: the standard error of each estimate, the spread of the
        bootstrap refits' estimates (:meth:`fit_replicas`); None without refits (models
        saved before them, or fitted without)."""
        replicas = getattr(self, "replicas_", None)
        if not replicas or len(replicas) < 2:
            return None
        matrix = self.encoder_.transform(as_frame(X))
        estimates = np.stack([np.asarray(r.predict(matrix), dtype=float) for r in replicas])
        return np.asarray(estimates.std(axis=0, ddof=1), dtype=float)

    def predict_frame(self, X: Any) -> pd.DataFrame:
        """:meth:`predict` as a DataFrame with one ``uplift_<offer>`` column per offer, on
        ``X``'s index; then, when a spend model is attached (``spend_model_``, an
        :class:`UpliftModel` of the spend in the response window), one
        ``spend_uplift_<offer>`` column per offer (currency units)."""
        frame = as_frame(X)
        values = self.predict(frame)
        out = pd.DataFrame(values, index=frame.index, columns=[f"uplift_{o}" for o in self.offers_])
        spend = getattr(self, "spend_model_", None)  # models saved before it have none
        if spend is not None:
            effects = spend.predict(frame[list(spend.feature_names_in_)])
            for k, offer in enumerate(spend.offers_):
                out[f"spend_uplift_{offer}"] = effects[:, k]
        return out


def _stratified_holdout(arms: np.ndarray, share: float, seed: int) -> np.ndarray:
    """A random ``share`` of each arm's rows (True: held out)."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(arms), dtype=bool)
    for arm in np.unique(arms):
        rows = np.flatnonzero(arms == arm)
        pick = rng.permutation(rows)[: int(round(share * len(rows)))]
        held[pick] = True
    return held


def _holdout_scores(
    effects: np.ndarray,
    arms: np.ndarray,
    y: np.ndarray,
    offers: list[str],
    control: str,
    control_for: Any = None,
) -> dict[str, Any]:
    """Qini coefficient and AUUC per offer on the holdout (each offer's rows and the control
    rows it is compared with), and their means."""
    qini: dict[str, float] = {}
    areas: dict[str, float] = {}
    controls = control_rows(arms, control, offers, control_for)
    for k, offer in enumerate(offers):
        rows = (arms == offer) | controls[offer]
        treated = arms[rows] == offer
        if treated.all() or not treated.any():
            qini[offer], areas[offer] = 0.0, 0.0
            continue
        qini[offer] = qini_coefficient(y[rows], treated, effects[rows, k])
        areas[offer] = auuc(y[rows], treated, effects[rows, k])
    return {
        "qini": float(np.mean(list(qini.values()))),
        "auuc": float(np.mean(list(areas.values()))),
        "qini_by_offer": qini,
        "auuc_by_offer": areas,
    }


def uplift_matrix(
    model: UpliftModel,
    features: pd.DataFrame,
    offers: list[str] | None = None,
    z: float = 0.0,
) -> tuple[np.ndarray, list[str]]:
    """``(effects, offer_ids)``: the fitted (served) uplift model's predicted increase in
    retention probability for each row of ``features`` (a frame holding the churn-feature
    columns the model was trained on, ``model.feature_names_in_``; other columns are
    ignored) and offer, an ``(n, n_offers)`` array whose columns follow ``offer_ids``.

    ``offers``: the offer ids wanted, in this order (default: every offer the model knows,
    ``model.offers_``); an offer the model was not trained on is an
    :class:`~models.exceptions.InvalidInputError` naming it and the known ones.

    ``z`` > 0: the lower confidence bound, estimate − ``z`` × its standard error
    (:meth:`UpliftModel.predict_sd`), for a model with bootstrap refits; the estimate
    itself otherwise."""
    known = list(model.offers_)
    wanted = known if offers is None else [str(o) for o in offers]
    unknown = [o for o in wanted if o not in known]
    if unknown:
        raise InvalidInputError(
            f"the uplift model has no estimate for offer(s) {', '.join(unknown)}: it was "
            f"trained on {', '.join(known)}",
            field="offers",
        )
    rows = model_input(model, features)
    effects = model.predict(rows)
    if z > 0:
        sd = model.predict_sd(rows)
        if sd is not None:
            effects = effects - float(z) * sd
    order = [known.index(o) for o in wanted]
    return effects[:, order], wanted


def served_input(model: UpliftModel, features: pd.DataFrame) -> pd.DataFrame:
    """The model's columns of ``features``, a column the customers lack (a customer-table
    field not given) as missing values, as the churn model reads them."""
    return features.reindex(columns=list(model.feature_names_in_))


def model_input(model: UpliftModel, features: pd.DataFrame) -> pd.DataFrame:
    """The columns of ``features`` the model was trained on, in its order; a missing one is
    an :class:`~models.exceptions.InvalidInputError` naming it."""
    columns = list(model.feature_names_in_)
    missing = [c for c in columns if c not in features.columns]
    if missing:
        raise InvalidInputError(
            f"the uplift model needs the churn-feature columns; {len(missing)} missing: "
            + ", ".join(missing[:10]),
            field=missing[0],
        )
    return features[columns]
