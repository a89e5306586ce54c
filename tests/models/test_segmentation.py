import numpy as np
import pandas as pd
import pytest

from models.exceptions import InvalidInputError, NotFittedError
from models.playbook import describe, load_playbook, recommend
from models.segmentation import DEFAULT_RFM_SEGMENTS, RFMSegmenter, quintile_score


def test_quintile_score_ties_share_a_score_and_lowest_scores_one():
    reference = np.sort(np.r_[np.ones(60), np.arange(2, 42)])  # 60 % one-time buyers
    scores = quintile_score(reference, np.array([1.0, 2.0, 10.0, 41.0, 1000.0]))
    assert scores.tolist() == [1, 4, 4, 5, 5]


def test_quintiles_on_distinct_values_are_even():
    reference = np.arange(100.0)
    scores = quintile_score(reference, reference)
    assert np.bincount(scores)[1:].tolist() == [20, 20, 20, 20, 20]


def _summary(days_since_last, n_purchases, revenue):
    return pd.DataFrame(
        {"days_since_last": days_since_last, "n_purchases": n_purchases, "total_revenue": revenue},
        index=[f"c{i}" for i in range(len(days_since_last))],
    )


def test_rfm_scores_and_named_segments():
    n = 100
    summary = _summary(
        np.arange(n, dtype=float), np.arange(n, dtype=float) + 1, np.arange(n, dtype=float)
    )
    model = RFMSegmenter().fit(summary)
    out = model.predict(summary)
    # Most recent (0 days) gets R=5; least recent R=1.
    assert out.loc["c0", "r_score"] == 5 and out.loc["c99", "r_score"] == 1
    assert out.loc["c0", "f_score"] == 1 and out.loc["c99", "f_score"] == 5
    assert out.loc["c0", "rfm_code"] == "511"
    assert out.loc["c0", "rfm_segment"] == "new"  # R5 F1
    assert out.loc["c99", "rfm_segment"] == "cant_lose"  # R1 F5
    assert sum(model.segment_sizes_.values()) == n
    # New customers are scored against the training population.
    new = model.predict(_summary([0.0, 500.0], [1000.0, 1.0], [1e6, 0.0]))
    assert new["rfm_code"].tolist() == ["555", "111"]
    assert new["rfm_segment"].tolist() == ["champions", "lost"]


def test_default_table_covers_every_score_pair():
    covered = {(r, f) for rule in DEFAULT_RFM_SEGMENTS for r in rule["r"] for f in rule["f"]}
    assert covered == {(r, f) for r in range(1, 6) for f in range(1, 6)}


def test_custom_segment_table():
    summary = _summary([1.0, 100.0], [5.0, 1.0], [10.0, 1.0])
    model = RFMSegmenter(segments=[{"segment": "recent", "r": [4, 5], "f": [1, 2, 3, 4, 5]}]).fit(
        summary
    )
    assert model.predict(summary)["rfm_segment"].tolist() == ["recent", "other"]


def test_errors():
    with pytest.raises(NotFittedError):
        RFMSegmenter().predict(_summary([1.0], [1.0], [1.0]))
    with pytest.raises(InvalidInputError, match="n_purchases"):
        RFMSegmenter().fit(pd.DataFrame({"days_since_last": [1.0], "total_revenue": [1.0]}))


def test_playbook_describes_every_default_segment():
    book = load_playbook()
    for rule in DEFAULT_RFM_SEGMENTS:
        entry = describe("rfm", rule["segment"], book)
        assert entry["name"] and entry["description"] and entry["actions"], rule["segment"]


def test_recommendation_prefers_retention_for_valuable_customers_at_risk():
    assert recommend("champions", "high", True)["source"] == "high_value_high_risk"
    assert recommend("champions", "high", False)["source"] == "rfm:champions"
    assert recommend("at_risk", "low", True)["action"] == describe("rfm", "at_risk")["actions"][0]
