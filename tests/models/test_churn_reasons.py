import time

import numpy as np
import pandas as pd
import pytest

from models.churn import ChurnClassifier
from models.churn.features import churn_features
from models.churn.reasons import (
    CHURN_TYPES,
    churn_reasons,
    contributions,
    load_churn_types,
)
from models.exceptions import InvalidInputError
from training.synthetic import generate


@pytest.fixture(scope="module")
def complaint_driven():
    """Synthetic customers whose churn is driven by unresolved complaints."""
    transactions, customers, _ = generate(3000, seed=11, problem_rate=0.4)
    X = churn_features(transactions, "2025-12-31", customers)
    rng = np.random.default_rng(0)
    unresolved = X["unresolved_complaints"].to_numpy() > 0
    y = (rng.random(len(X)) < np.where(unresolved, 0.85, 0.12)).astype(int)
    model = ChurnClassifier(random_state=0).fit(X, y)
    return X, y, unresolved, model


def test_unresolved_complaints_are_the_top_reason(complaint_driven):
    X, _, unresolved, model = complaint_driven
    assert unresolved.sum() > 150
    reasons = churn_reasons(model, X)
    top = reasons["reasons"].map(lambda r: r[0]["feature"] if r else None)
    assert (top[unresolved] == "unresolved_complaints").mean() > 0.9
    assert (reasons.loc[unresolved, "churn_type"] == "service").mean() > 0.9
    first = reasons.loc[unresolved, "reasons"].iloc[0][0]
    assert first["label"] == "Unresolved complaints" and first["direction"] == "raises risk"
    assert first["value"] == "1" and first["contribution"] > 1.0
    # for customers without a complaint, the complaint fields are hardly ever the top reason
    assert top[~unresolved].isin(["unresolved_complaints", "complaints"]).mean() < 0.05
    assert reasons.loc[unresolved, "churn_probability"].mean() > 0.7
    assert reasons.loc[unresolved, "reason_1"].iloc[0] == (
        "Unresolved complaints = 1 (raises risk)"
    )


def test_contributions_are_exact_and_fast(complaint_driven):
    X, _, unresolved, model = complaint_driven
    big = pd.concat([X, X]).iloc[:5000]
    start = time.perf_counter()
    c = contributions(model, big)
    assert time.perf_counter() - start < 10
    assert c.shape == (5000, X.shape[1])
    # replacing the complaint field by its typical value (0) moves the log-odds by exactly c
    i = int(np.flatnonzero(unresolved)[0])
    row = X.iloc[[i]]
    j = list(model.feature_names_in_).index("unresolved_complaints")
    encoded = model.encode(row)
    replaced = encoded.copy()
    replaced[0, j] = model.baseline_[j]
    expected = model.raw_score(encoded)[0] - model.raw_score(replaced)[0]
    assert c.iloc[i]["unresolved_complaints"] == pytest.approx(expected)
    assert c.iloc[i]["unresolved_complaints"] > 1.0
    # noise attributes matter far less than the driver
    driver = c.iloc[: len(X)].loc[unresolved, "unresolved_complaints"].abs().mean()
    assert c["region"].abs().mean() < 0.2 * driver


def test_type_table_is_configurable():
    table = load_churn_types()
    assert table.churn_type("unresolved_complaints") == "service"
    assert table.churn_type("MonthlyCharges") == "price"  # pattern *charge*
    assert table.churn_type("Contract") == "management"
    assert table.churn_type("TechSupport") == "service"
    assert table.churn_type("number_vmail_messages") == "product"  # default
    assert table.label("days_since_last") == "Days since last purchase"
    assert table.label("total_day_minutes") == "Total day minutes"
    custom = load_churn_types(
        {"features": {"x": {"label": "Ex", "type": "benefit"}}, "default_type": "natural"}
    )
    assert custom.churn_type("x") == "benefit" and custom.churn_type("y") == "natural"
    assert set(CHURN_TYPES) == {
        "product",
        "price",
        "service",
        "benefit",
        "management",
        "industry",
        "natural",
    }
    with pytest.raises(InvalidInputError, match="unknown churn type"):
        load_churn_types({"features": {"x": {"type": "weather"}}})


def test_reasons_with_a_custom_table_and_lowering_drivers(complaint_driven):
    X, _, unresolved, model = complaint_driven
    calm = X.iloc[np.flatnonzero(~unresolved)[:20]]
    out = churn_reasons(model, calm, top=2, types={"features": {}, "default_type": "industry"})
    assert list(out.columns) == [
        "churn_probability",
        "churn_type",
        "reasons",
        "reason_1",
        "reason_2",
    ]
    lowering = [r for rs in out["reasons"] for r in rs if r["direction"] == "lowers risk"]
    assert lowering and all(r["contribution"] < 0 for r in lowering)
    assert all(r["type"] == "industry" for rs in out["reasons"] for r in rs)
    only_up = churn_reasons(model, calm, risk_raising_only=True)
    assert all(r["contribution"] > 0 for rs in only_up["reasons"] for r in rs)
