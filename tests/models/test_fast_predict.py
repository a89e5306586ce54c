"""The serving fast path equals the estimator bit for bit (models/churn/fast_predict.py)."""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from models.churn import ChurnClassifier
from models.churn.fast_predict import SMALL_BATCH, CompiledForest


def mixed_table(n, seed):
    """Numbers (some missing), a wide categorical, a numeric-text column and a flag."""
    rng = np.random.default_rng(seed)
    tenure = rng.gamma(2.0, 20.0, n)
    plan = rng.choice(
        ["basic", "plus", "premium", "family", "rare"], n, p=[0.4, 0.3, 0.2, 0.097, 0.003]
    )
    region = rng.choice([f"r{i}" for i in range(12)], n)
    spend = rng.normal(60, 25, n)
    logit = (
        1.0 - 0.04 * tenure + 1.0 * (plan == "basic") + 0.02 * (spend - 60) + 0.3 * (region < "r5")
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    spend[rng.random(n) < 0.08] = np.nan
    text = np.round(rng.normal(500, 200, n), 2).astype(str).astype(object)
    text[rng.random(n) < 0.05] = " "
    X = pd.DataFrame(
        {
            "tenure": tenure,
            "plan": plan,
            "region": region,
            "spend": spend,
            "total": text,
            "paperless": rng.random(n) < 0.5,
        }
    )
    return X, y


def serving_rows(n, seed):
    """Rows as a service receives them: column lists, with the awkward values real callers
    send (missing numbers, None, padded and unseen categories, NA tokens, currency text)."""
    X, _ = mixed_table(n, seed)
    rng = np.random.default_rng(seed + 1)
    plan = X["plan"].tolist()
    for i in range(n):
        r = rng.random()
        if r < 0.05:
            plan[i] = None
        elif r < 0.10:
            plan[i] = " " + plan[i] + " "
        elif r < 0.13:
            plan[i] = "platinum"  # unseen
        elif r < 0.15:
            plan[i] = "N/A"
    total = X["total"].tolist()
    total[0::7] = ["$1,234.50"] * len(total[0::7])
    return {
        "tenure": X["tenure"].to_numpy(),
        "plan": plan,
        "region": X["region"].tolist(),
        "spend": X["spend"].to_numpy(),
        "total": total,
        "paperless": X["paperless"].to_numpy(),
    }


@pytest.fixture(scope="module")
def models():
    X, y = mixed_table(1500, 0)
    common = {"max_iter": 80, "cv": 3}
    return {
        "blend": ChurnClassifier(linear_weights=(0.5,), **common).fit(X, y),
        "sigmoid": ChurnClassifier(calibration="sigmoid", **common).fit(X, y),
        "isotonic": ChurnClassifier(calibration="isotonic", linear_weights=(0.25,), **common).fit(
            X, y
        ),
    }


@pytest.mark.parametrize("kind", ["blend", "sigmoid", "isotonic"])
@pytest.mark.parametrize("n", [1, 7, SMALL_BATCH, SMALL_BATCH + 1, 400])
def test_columns_path_equals_predict_proba_bit_for_bit(models, kind, n):
    model = models[kind]
    columns = serving_rows(n, seed=n)
    expected = model.predict_proba(pd.DataFrame(columns))
    got = model.predict_proba_columns(columns)
    assert got.shape == (n, 2)
    assert np.array_equal(got, expected)


def test_blend_and_categorical_splits_are_exercised(models):
    model = models["blend"]
    assert model.linear_ is not None and model.linear_weight_ == 0.5
    model.compile()
    assert model.compiled_
    _, forest, linear = model._compiled()
    assert forest.has_categorical and linear is not None
    assert model.feature_kinds_ == [
        "numeric",
        "categorical",
        "categorical",
        "numeric",
        "numeric",
        "numeric",
    ]


def test_compiled_state_is_not_pickled_and_is_rebuilt(models):
    model = models["blend"]
    model.compile()
    restored = pickle.loads(pickle.dumps(model))
    assert "_compiled_" not in restored.__dict__
    columns = serving_rows(3, seed=5)
    assert np.array_equal(
        restored.predict_proba_columns(columns), model.predict_proba_columns(columns)
    )


@pytest.mark.parametrize("categorical", [None, [True, False, False]])
def test_compiled_forest_on_plain_boosters(categorical):
    """Without a preprocessor (numeric only) and with one (a categorical column first)."""
    rng = np.random.default_rng(3)
    X = np.column_stack([rng.integers(0, 6, 800), rng.normal(size=800), rng.normal(size=800)])
    X = X.astype(float)
    X[rng.random(800) < 0.1, 1] = np.nan
    y = ((X[:, 0] % 2 == 0) ^ (np.nan_to_num(X[:, 1]) > 0.3)).astype(int)
    booster = HistGradientBoostingClassifier(
        max_iter=40, categorical_features=categorical, random_state=0
    ).fit(X, y)
    probe = X[:50].copy()
    probe[0, 0] = 9.0  # a category the booster never saw: treated as missing
    probe[1, 0] = np.nan
    assert np.array_equal(
        CompiledForest(booster).decision_function(probe), booster.decision_function(probe)
    )


def test_compiled_logistic_covers_codes_the_one_hot_step_never_saw():
    from models.churn.evaluation import encoded_logistic_pipeline
    from models.churn.fast_predict import CompiledLogistic

    rng = np.random.default_rng(4)
    encoded = np.column_stack([rng.normal(size=300), rng.integers(0, 3, 300).astype(float)])
    encoded[::9, 0] = np.nan
    y = (encoded[:, 1] == 1) ^ (rng.random(300) < 0.2)
    pipeline = encoded_logistic_pipeline(["numeric", "categorical"]).fit(encoded, y)
    compiled = CompiledLogistic(pipeline, {1: 5})
    probe = np.array([[0.5, 4.0], [np.nan, np.nan], [-1.0, 2.0], [0.0, 3.0]])
    assert np.array_equal(compiled.decision_function(probe), pipeline.decision_function(probe))


def test_frame_columns_and_attributes_not_given(models):
    """The service's frames: an attribute no caller sent is an all-NaN float column."""
    from models.churn.encoding import frame_columns

    model = models["blend"]
    frame = pd.DataFrame(serving_rows(5, seed=9))
    frame["plan"] = np.nan
    frame["region"] = frame["region"].astype("str")
    expected = model.predict_proba(frame)
    assert np.array_equal(model.predict_proba_columns(frame_columns(frame), 5), expected)


def test_churn_reasons_through_the_fast_path_are_unchanged(models):
    from models.churn.reasons import churn_reasons, contributions

    model = models["blend"]

    class Reference:  # the same model without its fast path: the pandas/sklearn route
        def __getattr__(self, name):
            if name in ("predict_proba_columns", "raw_score_fast"):
                raise AttributeError(name)
            return getattr(model, name)

    for n in (1, 3, 40):
        frame = pd.DataFrame(serving_rows(n, seed=20 + n))
        fast = contributions(model, frame)
        slow = contributions(Reference(), frame)
        assert np.array_equal(fast.to_numpy(), slow.to_numpy())
        reasons = churn_reasons(model, frame)
        assert np.array_equal(reasons["churn_probability"], model.predict_proba(frame)[:, 1])
        assert reasons["reasons"].tolist() == churn_reasons(Reference(), frame)["reasons"].tolist()


def test_a_model_that_cannot_be_compiled_still_scores_the_same(models, monkeypatch):
    import copy

    from models.churn import classifier as churn_module

    model = copy.deepcopy(models["sigmoid"])
    model.__dict__.pop("_compiled_", None)

    def refuse(booster):
        raise ValueError("a tree layout this code does not know")

    monkeypatch.setattr(churn_module, "CompiledForest", refuse)
    model.compile()
    assert not model.compiled_ and "tree layout" in model.compile_error_
    columns = serving_rows(5, seed=31)
    assert np.array_equal(
        model.predict_proba_columns(columns), model.predict_proba(pd.DataFrame(columns))
    )


def test_a_disabled_fast_path_scores_through_the_plain_path(models, monkeypatch):
    import copy

    from models.churn import fast_predict
    from models.churn.reasons import churn_reasons

    model = copy.deepcopy(models["blend"])
    model.disable_fast_path("differs from the pyfunc")

    def boom(*args, **kwargs):
        raise AssertionError("compiled parts used")

    monkeypatch.setattr(fast_predict.CompiledForest, "decision_function", boom)
    monkeypatch.setattr(model.encoder_, "transform_columns", boom)
    columns = serving_rows(4, seed=41)
    frame = pd.DataFrame(columns)
    assert np.array_equal(model.predict_proba_columns(columns), model.predict_proba(frame))
    assert np.array_equal(
        churn_reasons(model, frame)["churn_probability"], model.predict_proba(frame)[:, 1]
    )
