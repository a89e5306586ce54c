"""Uplift metrics on hand-worked examples, the meta-learners on known effects, and the
issue's acceptance numbers on generated campaigns with known uplift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.exceptions import InvalidInputError
from models.uplift import (
    DRLearner,
    TLearner,
    UpliftModel,
    XLearner,
    auuc,
    qini_coefficient,
    qini_curve,
    uplift_at,
    uplift_curve,
)

# Six rows ranked by score 6..1: treated T T C C T C, outcomes 1 0 1 0 1 0.
Y = [1, 0, 1, 0, 1, 0]
T = [1, 1, 0, 0, 1, 0]
S = [6, 5, 4, 3, 2, 1]


def test_qini_curve_hand_worked():
    # Q(t) = Y_T(t) - Y_C(t) N_T(t) / N_C(t): t=1: 1; t=2: 1; t=3: 1 - 1*2/1 = -1;
    # t=4: 1 - 1*2/2 = 0; t=5: 2 - 1*3/2 = 0.5; t=6: 2 - 1*3/3 = 1; divided by N = 6
    x, q = qini_curve(Y, T, S)
    np.testing.assert_allclose(x, np.arange(7) / 6)
    np.testing.assert_allclose(q, np.array([0, 1, 1, -1, 0, 0.5, 1]) / 6)


def test_qini_coefficient_hand_worked():
    # trapezoids: (1/6) * (1/12 + 1/6 + 0 - 1/12 + 1/24 + 1/8) = 1/18; random line: 1/12
    assert qini_coefficient(Y, T, S) == pytest.approx(1 / 18 - 1 / 12, abs=1e-15)
    assert qini_coefficient(Y, T, S) == pytest.approx(-1 / 36, abs=1e-15)


def test_uplift_curve_and_auuc_hand_worked():
    # U(t) = (Y_T/N_T - Y_C/N_C) * t: t=3: (1/2 - 1) * 3 = -1.5; t=4: 0; t=5: (2/3 - 1/2) * 5
    # = 5/6; t=6: (2/3 - 1/3) * 6 = 2; 0 while a group is empty (t = 1, 2)
    x, u = uplift_curve(Y, T, S)
    np.testing.assert_allclose(u, np.array([0, 0, 0, -1.5, 0, 5 / 6, 2]) / 6)
    # (1/6) * (-1/8 - 1/8 + 5/144 + 17/144) = 1/108
    assert auuc(Y, T, S) == pytest.approx(1 / 108, abs=1e-15)


def test_the_best_order_has_the_largest_qini():
    # treated responders first, control responders last
    best = [6, 1, 2, 3, 5, 4]
    assert qini_coefficient(Y, T, best) > 0 > qini_coefficient(Y, T, [-s for s in best])
    x, q = qini_curve(Y, T, best)
    # order: row0 (T,1), row4 (T,1), row5 (C,0), row3 (C,0), row2 (C,1), row1 (T,0):
    # t=5: 2 - 1 * 2/3 = 4/3; t=6: 2 - 1 * 3/3 = 1
    np.testing.assert_allclose(q * 6, [0, 1, 2, 2, 2, 4 / 3, 1])


def test_tied_scores_are_taken_together():
    x, q = qini_curve(Y, T, [1] * 6)
    np.testing.assert_allclose(x, [0, 1])
    np.testing.assert_allclose(q, [0, 1 / 6])
    assert qini_coefficient(Y, T, [1] * 6) == 0.0
    # ties inside: rows 2-3 share a score, so the curve skips t = 2
    x, _ = qini_curve(Y, T, [3, 2, 2, 1, 0, -1])
    np.testing.assert_allclose(x * 6, [0, 1, 3, 4, 5, 6])


def test_uplift_at_share_of_total_effect():
    assert uplift_at([0.5, 0.1, 0.1, -0.2, 0.0], [5, 4, 3, 2, 1], share=0.2) == pytest.approx(
        0.5 / 0.5
    )
    assert uplift_at([0.1, 0.1, 0.2, 0.2, 0.4], [1, 2, 3, 4, 5], share=0.4) == pytest.approx(0.6)


def test_metric_input_errors():
    with pytest.raises(InvalidInputError, match="one length"):
        qini_curve([1, 0], [1], [1, 2])
    with pytest.raises(InvalidInputError, match="treated must be 0/1"):
        qini_curve([1, 0], [2, 0], [1, 2])
    with pytest.raises(InvalidInputError, match="finite"):
        auuc([1, 0], [1, 0], [np.nan, 2])


# --------------------------------------------------------------------------------------------
# Learners on known effects
# --------------------------------------------------------------------------------------------


def _binary_data(n: int = 6000, seed: int = 0):
    """Two offers: ``a`` helps (+0.3) where x0 > 0.5 and hurts (−0.2) elsewhere; ``b`` adds
    0.1 everywhere. Control retention 0.3 + 0.2 x1."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, 3))
    arm = rng.choice(np.array(["control", "a", "b"]), n)
    tau_a = np.where(X[:, 0] > 0.5, 0.3, -0.2)
    p = 0.3 + 0.2 * X[:, 1] + np.where(arm == "a", tau_a, 0) + np.where(arm == "b", 0.1, 0)
    y = (rng.random(n) < p).astype(float)
    return X, arm, y, tau_a


@pytest.mark.parametrize("learner", [TLearner, XLearner, DRLearner])
def test_learners_recover_a_known_binary_effect(learner):
    X, arm, y, tau_a = _binary_data()
    model = learner().fit(X, arm, y)
    assert model.offers_ == ["a", "b"]
    effect = model.predict(X)
    assert effect.shape == (len(X), 2)
    # the mean predicted effect over each region of x0 (a single point is noisier)
    assert effect[tau_a < 0, 0].mean() == pytest.approx(-0.2, abs=0.03)
    assert effect[tau_a > 0, 0].mean() == pytest.approx(0.3, abs=0.03)
    assert effect[:, 1].mean() == pytest.approx(0.1, abs=0.03)
    assert np.corrcoef(effect[:, 0], tau_a)[0, 1] > 0.8


@pytest.mark.parametrize("learner", [TLearner, XLearner, DRLearner])
def test_a_column_missing_in_a_whole_group_is_ignored(learner):
    """An attribute no control contact has (scikit-learn cannot bin an empty column): the fit
    goes on and gives the effect it gives without the column."""
    X, arm, y, _ = _binary_data(2000)
    with_empty = np.column_stack([X, np.where(arm == "control", np.nan, 1.0)])
    model = learner().fit(with_empty, arm, y)
    effect = model.predict(with_empty)
    assert np.isfinite(effect).all()
    assert effect[:, 1].mean() == pytest.approx(0.1, abs=0.05)


@pytest.mark.parametrize("learner", [TLearner, XLearner, DRLearner])
def test_learners_on_a_continuous_outcome(learner):
    rng = np.random.default_rng(1)
    n = 4000
    X = rng.random((n, 2))
    arm = rng.choice(np.array(["control", "offer"]), n)
    spend = 10 + 5 * X[:, 1] + (arm == "offer") * 20 * X[:, 0] + rng.normal(0, 2, n)
    model = learner().fit(X, arm, spend)
    assert not model.binary_
    grid = np.column_stack([np.linspace(0.05, 0.95, 50), np.full(50, 0.5)])
    effect = model.predict(grid)[:, 0]
    assert np.corrcoef(effect, 20 * grid[:, 0])[0, 1] > 0.95
    assert np.abs(effect - 20 * grid[:, 0]).mean() < 2.0


def _planned_data(n: int = 6000, seed: int = 2):
    """A planned campaign: a targeting rule the model cannot see sent offer ``a`` to loyal
    customers (retention 0.8 without contact) and ``b`` to slipping ones (0.2), holding out a
    fifth of each as control. Both offers add 0.1 everywhere."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, 2))  # features unrelated to the hidden rule
    loyal = rng.random(n) < 0.5
    planned = np.where(loyal, "a", "b")
    held = rng.random(n) < 0.2
    arm = np.where(held, "control", planned)
    y = (rng.random(n) < np.where(loyal, 0.8, 0.2) + np.where(held, 0.0, 0.1)).astype(float)
    control_for = np.where(held, planned, "")
    return X, arm, y, control_for


@pytest.mark.parametrize("learner", [TLearner, XLearner, DRLearner])
def test_a_planned_campaign_is_learnt_against_each_offers_own_control(learner):
    """With the whole control group both effects come out wrong (the groups differ by design,
    about +0.4 and -0.2); against the customers held out from each offer, both are +0.1."""
    X, arm, y, control_for = _planned_data()
    pooled = learner().fit(X, arm, y).predict(X)
    assert pooled[:, 0].mean() > 0.3 and pooled[:, 1].mean() < -0.1
    model = learner().fit(X, arm, y, control_for=control_for)
    effect = model.predict(X)
    assert effect[:, 0].mean() == pytest.approx(0.1, abs=0.04)
    assert effect[:, 1].mean() == pytest.approx(0.1, abs=0.04)
    assert model.propensity_["a"] == pytest.approx(0.8, abs=0.03)
    # a control row of a randomised campaign ("") is compared with every offer
    mixed = control_for.copy()
    mixed[: len(mixed) // 10] = ""
    assert np.isfinite(learner().fit(X, arm, y, control_for=mixed).predict(X)).all()


def test_uplift_model_scores_a_planned_campaign_against_each_offers_own_control():
    X, arm, y, control_for = _planned_data()
    frame = pd.DataFrame(X, columns=["x0", "x1"])
    model = UpliftModel(learners=("t",)).fit(frame, arm, y, control_for=control_for)
    effect = model.predict(frame)
    assert effect.mean(axis=0) == pytest.approx([0.1, 0.1], abs=0.04)
    with pytest.raises(InvalidInputError, match="one value per contact"):
        UpliftModel(learners=("t",)).fit(frame, arm, y, control_for=control_for[:10])


def test_learner_input_errors():
    X, arm, y, _ = _binary_data(200)
    with pytest.raises(InvalidInputError, match="no treated rows"):
        TLearner().fit(X, np.full(200, "control"), y)
    few = arm.copy()
    few[:] = "control"
    few[:5] = "rare"
    with pytest.raises(InvalidInputError, match=r"at least 20 per arm\): 'rare' \(5\)"):
        TLearner().fit(X, few, y)
    model = TLearner().fit(X, arm, y)
    with pytest.raises(InvalidInputError, match="X must have 3 columns"):
        model.predict(X[:, :2])


def test_uplift_model_chooses_on_the_holdout():
    X, arm, y, tau_a = _binary_data()
    frame = pd.DataFrame(X, columns=["x0", "x1", "x2"])
    frame["region"] = np.where(X[:, 2] > 0.5, "north", "south")
    model = UpliftModel(learners=("t", "x"), random_state=3).fit(frame, arm, y)
    assert model.learner_ in ("t", "x")
    assert model.scores_[model.learner_]["qini"] == max(s["qini"] for s in model.scores_.values())
    assert set(model.scores_["t"]["qini_by_offer"]) == {"a", "b"}
    assert model.offers_ == ["a", "b"]
    out = model.predict_frame(frame.iloc[:10])
    assert list(out.columns) == ["uplift_a", "uplift_b"]
    effect = model.predict(frame)[:, 0]
    assert np.corrcoef(effect, tau_a)[0, 1] > 0.8


# --------------------------------------------------------------------------------------------
# Acceptance on generated campaigns with known uplift
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def campaign_fit():
    from training import synthetic
    from training.campaigns import feature_columns, uplift_training_frame

    transactions, customers, truth = synthetic.generate(5000, seed=4)
    transactions, campaigns, truth = synthetic.generate_campaigns(
        transactions, customers, truth, seed=4
    )
    frame = uplift_training_frame(campaigns, transactions, customers)
    true = truth.campaigns.pivot_table(
        index=["customer_id", "campaign_id"], columns="offer", values="true_uplift"
    ).reindex(pd.MultiIndex.from_frame(frame[["customer_id", "campaign_id"]]))
    test = np.random.default_rng(0).random(len(frame)) < 0.3  # customers never seen in fit
    features = feature_columns(frame)
    model = UpliftModel().fit(
        frame.loc[~test, features], frame["treatment"][~test], frame["retained"][~test]
    )
    return frame, features, test, true, model


def test_acceptance_ranking_on_generated_data(campaign_fit):
    """The top 20 % of held-out customers by predicted uplift hold at least twice their
    share (40 %) of the true total incremental retention, for every offer; the Qini
    coefficient of each offer is positive on the held-out customers."""
    frame, features, test, true, model = campaign_fit
    held = frame[test]
    effect = model.predict(held[features])
    for k, offer in enumerate(model.offers_):
        top = uplift_at(true[offer].to_numpy()[test], effect[:, k], share=0.2)
        rows = held["treatment"].isin([offer, "control"]).to_numpy()
        qini = qini_coefficient(
            held["retained"].to_numpy()[rows].astype(float),
            (held["treatment"] == offer).to_numpy()[rows],
            effect[rows, k],
        )
        print(f"{offer}: top 20 % hold {top:.1%} of the true effect; Qini {qini:.4f}")
        assert top >= 0.4
        assert qini > 0
    chosen = {name: round(score["qini"], 4) for name, score in model.scores_.items()}
    print(f"learner chosen: {model.learner_} (mean holdout Qini per learner: {chosen})")
    assert model.learner_ in ("t", "x", "dr")


def test_sleeping_dogs_get_negative_predictions(campaign_fit):
    frame, features, test, true, model = campaign_fit
    held = frame[test]
    effect = model.predict(held[features]).max(axis=1)  # the best offer's effect
    dog = (true.to_numpy()[test] < -0.1).all(axis=1)
    assert dog.sum() > 50
    assert np.mean(effect[dog]) < 0 < np.mean(effect[~dog])


def test_acceptance_ranking_of_spend_on_generated_data(campaign_fit):
    """The same for the incremental spend in the window (a continuous outcome)."""
    from training import synthetic

    frame, features, test, _, _ = campaign_fit
    transactions, customers, truth = synthetic.generate(5000, seed=4)
    _, _, truth = synthetic.generate_campaigns(transactions, customers, truth, seed=4)
    true = truth.campaigns.pivot_table(
        index=["customer_id", "campaign_id"], columns="offer", values="true_incremental_spend"
    ).reindex(pd.MultiIndex.from_frame(frame[["customer_id", "campaign_id"]]))
    model = UpliftModel(learners=("t", "x")).fit(
        frame.loc[~test, features], frame["treatment"][~test], frame["spend"][~test]
    )
    assert not model.binary_
    held = frame[test]
    effect = model.predict(held[features])
    for k, offer in enumerate(model.offers_):
        top = uplift_at(true[offer].to_numpy()[test], effect[:, k], share=0.2)
        rows = held["treatment"].isin([offer, "control"]).to_numpy()
        qini = qini_coefficient(
            held["spend"].to_numpy()[rows],
            (held["treatment"] == offer).to_numpy()[rows],
            effect[rows, k],
        )
        print(f"{offer} (spend): top 20 % hold {top:.1%} of the true effect; Qini {qini:.3f}")
        assert top >= 0.4
        assert qini > 0


def test_bootstrap_refits_give_standard_errors_that_shrink_with_the_data():
    """``fit_replicas``: the spread of refits on resampled contacts; more contacts, smaller
    errors; ``uplift_matrix(z=1)`` is the estimate minus one standard error."""
    from models.uplift import uplift_matrix

    errors = {}
    for n in (1500, 12000):
        X, arm, y, _ = _binary_data(n)
        frame = pd.DataFrame(X, columns=["x0", "x1", "x2"])
        model = UpliftModel(learners=("t",)).fit(frame, arm, y)
        assert model.predict_sd(frame) is None  # no refits yet
        model.fit_replicas(frame, arm, y, replicas=6)
        sd = model.predict_sd(frame)
        assert sd.shape == (n, 2) and (sd > 0).all()
        errors[n] = float(sd.mean())
        lower, offers = uplift_matrix(model, frame, z=1)
        np.testing.assert_allclose(lower, model.predict(frame) - sd)
        assert offers == ["a", "b"]
    assert errors[12000] < 0.6 * errors[1500], errors
