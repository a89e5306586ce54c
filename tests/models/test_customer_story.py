"""One coherent story per customer: the action's reason states that customer's own labels and
numbers, and labels that measure different things and disagree are explained."""

from __future__ import annotations

import pandas as pd

from models.customer_view import label_notes, recommended_actions


def _frame(**overrides) -> pd.DataFrame:
    row = {
        "r_score": 5,
        "f_score": 4,
        "m_score": 4,
        "rfm_segment": "champions",
        "cluster_name": "Lapsing, occasional customers",
        "value_tier": "low",
        "high_value": True,
        "probability_alive": 0.91,
        "clv": 25.06,
        "churn_probability": 0.61,
        "value_at_risk": 15.29,
        "risk_band": "high",
    }
    row.update(overrides)
    return pd.DataFrame([row], index=["C0002"])


def test_the_retention_reason_states_this_customers_value_and_risk():
    (reason,) = recommended_actions(_frame())["reason"]
    assert reason == (
        "Predicted CLV 25.06 is in the top fifth of customers and churn risk is high "
        "(P 0.61): 15.29 of value at risk."
    )


def test_an_rfm_reason_names_the_segment_and_its_scores():
    (reason,) = recommended_actions(_frame(risk_band="low"))["reason"]
    assert reason.startswith("RFM champions (R5 F4 M4): ")


def test_a_recent_buyer_in_a_lapsing_cluster_with_a_low_past_value_is_explained():
    (notes,) = label_notes(_frame())
    assert notes == [
        "Bought recently (RFM recency 5 of 5), although the behaviour cluster 'Lapsing, "
        "occasional customers' describes its group's typical pattern of few, widely spaced "
        "purchases: RFM and P(alive) (0.91) speak for this customer's last purchase, the "
        "cluster for the group.",
        "Predicted CLV 25.06 is in the top fifth, while the nine-grid value tier (past spend "
        "and frequency) is low: the value is expected, not yet earned.",
    ]


def test_labels_that_agree_need_no_note():
    agreeing = _frame(cluster_name="Recently active, frequent customers", value_tier="high")
    assert label_notes(agreeing) == [[]]
    lapsed = _frame(value_tier="high", probability_alive=0.05, r_score=1, high_value=False)
    assert label_notes(lapsed) == [
        [
            "High value in the past (nine-grid value tier high), but P(alive) is only 0.05: "
            "that value is unlikely to continue."
        ]
    ]
