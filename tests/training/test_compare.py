"""Champion against challenger: segmentation compared at one K, with the labels' agreement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.clv import CLVModel
from models.customer_view import segmentation_input
from models.features import summarize
from models.segments.bundle import CustomerSegments
from training import compare, retrain
from training.gate import gate

AS_OF = pd.Timestamp("2025-12-31")


@pytest.fixture(scope="module")
def sides(demo_data):
    """Two segmentations of the same customers, at K=4 (the best silhouette on these data)
    and K=6, and a holdout of them."""
    transactions, _, _ = demo_data
    summary = summarize(transactions, AS_OF)
    table = segmentation_input(summary, CLVModel().fit(summary).predict(summary))
    k4 = CustomerSegments(k_min=4, k_max=4).fit(table)
    k6 = CustomerSegments(k_min=6, k_max=6).fit(table)
    empty = pd.DataFrame()
    holdout = compare.Holdout(empty, pd.Series(dtype=float), empty, np.empty(0), 180, summary)
    return k4, k6, holdout


def test_different_k_are_compared_at_the_champions_k(sides):
    k4, k6, holdout = sides
    own = {
        name: compare.holdout_metrics({"segmentation": model}, holdout=holdout)
        for name, model in (("k4", k4), ("k6", k6))
    }
    # on their own labels the silhouettes differ by K alone: the K=6 challenger is refused
    assert own["k4"]["segment_silhouette"] - own["k6"]["segment_silhouette"] > 0.05
    assert not gate("segmentation", own["k4"], own["k6"]).passed
    assert (own["k4"]["segment_n_clusters"], own["k6"]["segment_n_clusters"]) == (4, 6)

    k = retrain._common_k({"segmentation": k4}, {"segmentation": k6})
    assert k == 4 and retrain._common_k({"segmentation": k4}, {"segmentation": k4}) is None
    same = {
        name: compare.holdout_metrics({"segmentation": model}, holdout=holdout, segment_k=k)
        for name, model in (("k4", k4), ("k6", k6))
    }
    # both fitted on the same customers standardise them alike: at one K, one silhouette
    assert same["k4"]["segment_silhouette"] == same["k6"]["segment_silhouette"]
    assert same["k6"]["segment_n_clusters"] == 4 and same["k6"]["segment_n_clusters_model"] == 6
    assert gate("segmentation", same["k4"], same["k6"]).passed


def test_label_agreement_is_the_adjusted_rand_index(sides):
    k4, k6, holdout = sides
    assert compare.label_agreement(k4, k4, holdout) == 1.0
    agreement = compare.label_agreement(k4, k6, holdout)
    assert 0.0 < agreement < 1.0
