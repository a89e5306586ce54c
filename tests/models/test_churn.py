import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import cross_val_score

from models.churn import ChurnClassifier, risk_band, time_split
from models.exceptions import InvalidInputError


def crm_export(n=1500, seed=0):
    """A CRM-like export: numbers as text with blanks, categoricals, Yes/No target."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, n)
    plan = rng.choice(["basic", "plus", "premium"], n)
    charges = rng.normal(60, 15, n)
    logit = 1.5 - 0.06 * tenure + 1.2 * (plan == "basic") + 0.02 * (charges - 60)
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "Yes", "No")
    X = pd.DataFrame(
        {"tenure": tenure.astype(str), "plan": plan, "charges": charges.round(2).astype(str)}
    )
    X.loc[::25, "charges"] = " "
    return X, y


def test_passes_sklearn_cross_val_score_on_raw_crm_frame():
    X, y = crm_export()
    scores = cross_val_score(ChurnClassifier(), X, y, scoring="roc_auc", cv=3)
    assert scores.mean() > 0.75


def test_string_target_blank_numbers_and_unseen_categories():
    X, y = crm_export()
    model = ChurnClassifier().fit(X, y)
    assert model.classes_.tolist() == ["No", "Yes"]
    assert model.feature_kinds_ == ["numeric", "categorical", "numeric"]
    unseen = X.head(3).assign(plan="enterprise", charges="")
    p = model.predict_proba(unseen)
    assert p.shape == (3, 2) and np.allclose(p.sum(axis=1), 1)
    assert set(model.predict(X.head(20))) <= {"No", "Yes"}


def test_probabilities_are_calibrated():
    X, y = crm_export(4000, seed=1)
    model = ChurnClassifier().fit(X.iloc[:3000], y[:3000])
    p = model.predict_proba(X.iloc[3000:])[:, 1]
    observed = (y[3000:] == "Yes").mean()
    assert abs(p.mean() - observed) < 0.03


def test_needs_two_classes():
    X, _ = crm_export(50)
    with pytest.raises(InvalidInputError, match="two classes"):
        ChurnClassifier().fit(X, np.zeros(50))


def test_risk_bands():
    assert risk_band([0.1, 0.3, 0.59, 0.6, 0.95]).tolist() == [
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]


def test_time_split_labels_and_no_leakage():
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "b", "c"],
            "timestamp": pd.to_datetime(
                ["2024-01-01", "2024-03-01", "2024-01-10", "2024-05-01", "2024-05-15"]
            ),
            "amount": [10.0, 20.0, 5.0, 7.0, 9.0],
        }
    )
    X, y = time_split(tx, "2024-06-30", horizon_days=90)  # cutoff 2024-04-01
    assert list(X.index) == ["a", "b"]  # c first bought after the cutoff
    assert y.to_dict() == {"a": 1, "b": 0}
    changed = pd.concat(
        [
            tx,
            pd.DataFrame(
                {
                    "customer_id": ["a"],
                    "timestamp": pd.to_datetime(["2024-06-01"]),
                    "amount": [999.0],
                }
            ),
        ]
    )
    X2, y2 = time_split(changed, "2024-06-30", horizon_days=90)
    pd.testing.assert_frame_equal(X, X2)  # purchases after the cutoff cannot change features
    assert y2["a"] == 0
