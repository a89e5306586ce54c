"""Single-column leak checks (models/churn/leakage.py)."""

import numpy as np
import pandas as pd
import pytest

from models.churn.leakage import leakage_suspects, single_column_auc


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    n = 3000
    tenure = rng.gamma(2.0, 20.0, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(1.0 - 0.05 * tenure)))).astype(int)
    cancel_day = np.where(y == 1, rng.integers(1, 30, n), np.nan)  # only churners have one
    reason = np.where(y == 1, rng.choice(["price", "service", "moved"], n), "")  # blank = none
    noisy = np.where(rng.random(n) < 0.05, 1 - y, y)  # 95 % agreement: still a leak
    X = pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "tenure": tenure,
            "region": rng.choice(list("NESW"), n),
            "cancel_day": cancel_day,
            "cancel_reason": reason,
            "status_flag": noisy,
        }
    )
    return X, y


def test_leaks_through_values_and_through_missingness_are_found(table):
    X, y = table
    suspects = leakage_suspects(X, y)
    assert set(suspects["column"]) == {"cancel_day", "cancel_reason", "status_flag"}
    assert suspects["auc"].is_monotonic_decreasing
    assert (suspects["auc"] >= 0.95).all()


def test_real_drivers_ids_and_noise_are_not_leaks(table):
    X, y = table
    assert 0.65 < single_column_auc(X["tenure"], y) < 0.9  # a real, strong driver
    assert abs(single_column_auc(X["customer_id"], y) - 0.5) < 0.05  # unseen ids: the prior
    assert abs(single_column_auc(X["region"], y) - 0.5) < 0.05


def test_threshold_string_labels_and_one_class(table):
    X, y = table
    labels = np.where(y == 1, "Yes", "No")
    assert list(leakage_suspects(X, labels, ["tenure"], threshold=0.6)["column"]) == ["tenure"]
    assert leakage_suspects(X, labels, ["tenure", "absent"]).empty
    assert np.isnan(single_column_auc(X["tenure"], np.zeros(len(X), dtype=int)))


def test_long_tables_are_checked_on_a_sample(table):
    X, y = table
    sampled = leakage_suspects(X, y, max_rows=1000)
    assert set(sampled["column"]) == {"cancel_day", "cancel_reason", "status_flag"}
