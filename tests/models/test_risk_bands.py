"""Churn risk bands come from the data: on a business with an 80 % base churn rate no band
holds most customers, and the high band really churns more than the low one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.churn import time_split
from models.churn.risk import (
    LEGACY_THRESHOLDS,
    band_of,
    band_table,
    churn_risk_scheme,
    fit_bands,
    fit_thresholds,
    parse_bands,
    risk_band,
    thresholds_of,
)
from models.exceptions import InvalidInputError


def test_fixed_thresholds_and_a_missing_probability():
    assert risk_band([0.0, 0.29, 0.3, 0.59, 0.6, 1.0, np.nan]).tolist() == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
        "low",
    ]
    assert risk_band([0.5, 0.7, 0.95], (0.6, 0.9)).tolist() == ["low", "medium", "high"]


def test_quantile_thresholds_split_the_customers_half_three_tenths_one_fifth():
    scores = np.linspace(0.0, 1.0, 1001)
    assert fit_thresholds(scores) == pytest.approx((0.5, 0.8))
    assert fit_thresholds(scores, "probability", (0.3, 0.6)) == (0.3, 0.6)
    assert fit_thresholds([0.9] * 10)[1] > fit_thresholds([0.9] * 10)[0]  # ties kept apart


def test_the_bands_are_parsed_with_their_basis_and_refused_with_the_fix():
    assert parse_bands("quantile:0.5,0.8") == ("quantile", (0.5, 0.8))
    assert parse_bands("0.4,0.9") == ("quantile", (0.4, 0.9))
    assert parse_bands("probability:0.3,0.6") == ("probability", (0.3, 0.6))
    for bad, says in [
        ("share:0.5,0.8", "use quantile:LOW,HIGH"),
        ("quantile:0.5", "give two numbers"),
        ("0.8,0.5", "need 0 < LOW < HIGH < 1"),
    ]:
        with pytest.raises(InvalidInputError, match=says):
            parse_bands(bad)


class Old:
    """A churn model saved before the bands were fitted."""


def test_a_model_from_before_keeps_the_fixed_bands():
    assert thresholds_of(Old()) == LEGACY_THRESHOLDS
    assert band_of(Old(), [0.2, 0.65]).tolist() == ["low", "high"]
    scheme = churn_risk_scheme(Old())
    assert [e["description"] for e in scheme["labels"]] == [
        "P(churn) below 0.300.",
        "P(churn) from 0.300 to below 0.600.",
        "P(churn) 0.600 or more.",
    ]


def test_on_an_80_percent_churn_business_no_band_holds_most_and_high_churns_most(
    trained_store, demo_data
):
    """The demo data's base churn rate is about 82 %: fixed 0.3 / 0.6 thresholds put most
    customers in "high"; the fitted bands do not, and they rank observed churn."""
    result = trained_store["result"]
    churn = result.models["churn"]
    n = result.metrics["n_customers"]
    assert result.metrics["churn_base_rate"] > 0.8
    sizes = churn.risk_band_sizes_
    assert sum(sizes.values()) == n
    assert max(sizes.values()) <= 0.6 * n
    assert result.params["churn_risk_basis"] == "quantile:0.5,0.8"
    low, high = churn.risk_thresholds_
    assert result.params["churn_risk_thresholds"] == f"{low:.6g},{high:.6g}"
    # Observed churn on the time holdout, by the holdout model's own fitted bands.
    transactions, customers, _ = demo_data
    X, y = time_split(
        transactions, pd.Timestamp("2025-12-31"), horizon_days=90, customers=customers
    )
    model = result.holdout_models["churn"]
    p = model.predict_proba(X.reindex(columns=list(model.feature_names_in_)))[:, 1]
    fixed = band_table(p, y, LEGACY_THRESHOLDS)
    assert fixed["churn_band_high_share"] > 0.6  # what users saw: "high" is most customers
    table = band_table(p, y, fit_bands(model, p))
    assert max(table[f"churn_band_{b}_share"] for b in ("low", "medium", "high")) <= 0.6
    assert table["churn_band_high_rate"] > table["churn_band_medium_rate"]
    assert table["churn_band_medium_rate"] > table["churn_band_low_rate"]


def test_band_sizes_of_a_sample_are_scaled_to_the_customers_it_stands_for():
    model = Old()
    fit_bands(model, np.linspace(0.0, 1.0, 1000), population=10_000)
    assert model.risk_band_sizes_ == {"low": 5000, "medium": 3000, "high": 2000}
