"""Behaviour clusters: K by silhouette on known blobs, stable ids, profiles and names."""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

from models.exceptions import InvalidInputError, NotFittedError
from models.segments import BEHAVIOUR_TRAITS, BehaviourClusters

FEATURES = [f"x{j}" for j in range(6)]


def blobs(k, seed=0, sizes=None, centers=None):
    """Gaussian blobs (sd 1) around 10 · e_j in six dimensions, unequal sizes."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(150, 400, size=k) if sizes is None else np.asarray(sizes)
    centers = 10 * np.eye(6)[:k] if centers is None else centers
    x = np.vstack([c + rng.normal(size=(s, 6)) for c, s in zip(centers, sizes, strict=True)])
    truth = np.repeat(np.arange(len(sizes)), sizes)
    index = [f"c{i}" for i in range(len(x))]
    return pd.DataFrame(x, columns=FEATURES, index=index), truth


def model(**kwargs):
    return BehaviourClusters(features=FEATURES, **kwargs)


@pytest.mark.parametrize("k", [3, 4, 5, 6])
def test_chosen_k_is_the_true_number_of_blobs(k):
    data, truth = blobs(k, seed=k)
    fitted = model().fit(data)
    assert fitted.n_clusters_ == k
    assert sorted(fitted.silhouette_scores_) == list(range(2, 11))
    assert max(fitted.silhouette_scores_, key=fitted.silhouette_scores_.get) == k
    assert fitted.silhouette_ == fitted.silhouette_scores_[k] > 0.35
    assert adjusted_rand_score(truth, fitted.labels_) == pytest.approx(1.0)
    assert sorted(fitted.profiles_.index) == list(range(k))
    assert fitted.profiles_["size"].sum() == len(data)
    # Ids 0..K-1 by decreasing size.
    assert fitted.profiles_["size"].is_monotonic_decreasing


@pytest.mark.parametrize("k", [3, 6])
def test_silhouette_on_a_sample_for_large_data_finds_k_too(k):
    data, _ = blobs(k, seed=10 + k, sizes=[600] * k)
    fitted = model(sample_size=300).fit(data)
    exact = model(sample_size=len(data)).fit(data)
    assert fitted.n_clusters_ == exact.n_clusters_ == k
    assert fitted.silhouette_scores_ != exact.silhouette_scores_  # a sample, not all
    assert fitted.silhouette_ == pytest.approx(exact.silhouette_, abs=0.05)


@pytest.mark.parametrize("k", [3, 4, 5, 6])
def test_bootstrap_refit_with_alignment_keeps_ids(k):
    data, _ = blobs(k, seed=20 + k)
    champion = model().fit(data)
    rng = np.random.default_rng(k)
    resample = data.iloc[rng.integers(0, len(data), len(data))]
    challenger = model(random_state=7, reference=champion).fit(resample)
    same = champion.predict(data)["cluster"].to_numpy() == challenger.predict(data)["cluster"]
    assert same.mean() >= 0.95
    assert sorted(challenger.alignment_["matched"]) == list(range(k))
    assert challenger.alignment_["new"] == [] and challenger.alignment_["retired"] == []


def test_alignment_undoes_a_reordering_that_plain_ids_would_follow():
    champion_data, _ = blobs(3, seed=1, sizes=[600, 400, 200])
    # The same groups in reverse proportions: unaligned ids (by size) come out reversed.
    challenger_data, _ = blobs(3, seed=2, sizes=[200, 400, 600])
    champion = model().fit(champion_data)
    plain = model().fit(challenger_data)
    aligned = model(reference=champion).fit(challenger_data)
    before = champion.predict(champion_data)["cluster"].to_numpy()
    assert (plain.predict(champion_data)["cluster"].to_numpy() == before).mean() < 0.5
    assert (aligned.predict(champion_data)["cluster"].to_numpy() == before).mean() == 1.0
    assert aligned.profiles_.loc[0, "size"] == 200  # id 0 still means the first group
    assert aligned.traits_[0][0] == champion.traits_[0][0] == "high_x0"
    # align_to after fitting does the same, and a plain-data reference works through clone.
    late = model().fit(challenger_data).align_to(champion)
    np.testing.assert_array_equal(late.labels_, aligned.labels_)
    cloned = clone(model(reference=champion.centroid_reference())).fit(challenger_data)
    np.testing.assert_array_equal(cloned.labels_, aligned.labels_)


def test_new_clusters_get_fresh_ids_and_retired_ids_are_never_reused():
    centers = 10 * np.eye(6)[:4]
    first = model().fit(blobs(3, seed=3, sizes=[500, 400, 300], centers=centers[:3])[0])
    assert first.alignment_ is None and first.next_id_ == 3
    # Group 2 disappears: its id retires.
    two = blobs(2, seed=4, sizes=[500, 400], centers=centers[:2])[0]
    second = model(k_max=6, reference=first).fit(two)
    assert sorted(second.segment_sizes_) == [0, 1]
    assert second.alignment_["retired"] == [2] and second.next_id_ == 3
    # Group 2 comes back and a new group 3 appears: both get ids never used before.
    four = blobs(4, seed=5, sizes=[500, 400, 300, 250], centers=centers)[0]
    third = model(reference=second).fit(four)
    assert third.n_clusters_ == 4
    assert sorted(third.segment_sizes_) == [0, 1, 3, 4]
    assert third.alignment_["new"] == [3, 4] and third.next_id_ == 5
    assert third.profiles_.loc[3, "size"] == 300 and third.profiles_.loc[4, "size"] == 250


def test_alignment_needs_the_same_features():
    data, _ = blobs(3, seed=6)
    champion = model().fit(data)
    with pytest.raises(InvalidInputError, match="cannot align"):
        BehaviourClusters(features=FEATURES[:5], reference=champion).fit(data)


def _two_groups(seed=0, n=300):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "n_purchases": np.r_[rng.integers(15, 25, n), rng.integers(1, 3, n)].astype(float),
            "avg_order_value": np.exp(rng.normal(4, 0.3, 2 * n)),
        }
    )


def test_profiles_in_original_units_and_generated_names():
    data = _two_groups()
    fitted = BehaviourClusters(features=["n_purchases", "avg_order_value"]).fit(data)
    assert fitted.n_clusters_ == 2
    assert fitted.names_ == {0: "Occasional customers", 1: "Frequent customers"}
    assert fitted.traits_ == {0: ["occasional"], 1: ["frequent"]}
    profiles = fitted.profiles_
    assert profiles["size"].tolist() == [300, 300] and profiles["share"].tolist() == [0.5, 0.5]
    expected = data.groupby(fitted.labels_).mean()
    np.testing.assert_allclose(profiles[["n_purchases", "avg_order_value"]], expected)
    assert 15 <= profiles.loc[1, "n_purchases"] <= 25 and profiles.loc[0, "n_purchases"] < 3
    assert profiles["name"].tolist() == ["Occasional customers", "Frequent customers"]
    out = fitted.predict(pd.DataFrame({"n_purchases": [30.0, 1.0], "avg_order_value": [50, 60]}))
    assert out["cluster"].tolist() == [1, 0]
    assert out["cluster_name"].tolist() == ["Frequent customers", "Occasional customers"]


def test_names_on_the_summary_use_playbook_traits_and_are_unique():
    from models.features import summarize
    from training import synthetic

    transactions, _, truth = synthetic.generate(2000, seed=5)
    summary = summarize(transactions, truth.params["as_of"])
    fitted = BehaviourClusters().fit(summary)
    names = list(fitted.names_.values())
    assert len(set(names)) == len(names) == fitted.n_clusters_
    for traits in fitted.traits_.values():
        assert set(traits) <= set(BEHAVIOUR_TRAITS)
    assert fitted.features_ == [
        "n_purchases",
        "avg_order_value",
        "days_since_last",
        "tenure_days",
        "n_channels",
        "activity_trend",
    ]
    # Without channel data the all-missing n_channels is dropped, not imputed.
    no_channel = summarize(transactions.drop(columns=["channel"]), truth.params["as_of"])
    assert "n_channels" not in BehaviourClusters(k_max=3).fit(no_channel).features_


def test_missing_values_are_imputed_and_pickling_keeps_predictions():
    data = _two_groups(seed=1)
    fitted = BehaviourClusters(features=["n_purchases", "avg_order_value"], k_max=4).fit(data)
    row = pd.DataFrame({"n_purchases": [20.0], "avg_order_value": [np.nan]})
    assert fitted.predict(row)["cluster"].tolist() == [1]
    again = pickle.loads(pickle.dumps(fitted))
    pd.testing.assert_frame_equal(again.predict(data), fitted.predict(data))


def test_errors():
    data = _two_groups()
    with pytest.raises(NotFittedError):
        BehaviourClusters().predict(data)
    with pytest.raises(InvalidInputError, match="k_min"):
        BehaviourClusters(features=["n_purchases"], k_min=1).fit(data)
    with pytest.raises(InvalidInputError, match="at least 3 customers"):
        BehaviourClusters(features=["n_purchases"]).fit(data.iloc[:2])
    with pytest.raises(InvalidInputError, match="constant"):
        BehaviourClusters(features=["n_purchases"]).fit(data.assign(n_purchases=1.0))
    with pytest.raises(InvalidInputError, match="tenure_days"):
        BehaviourClusters(features=["tenure_days"]).fit(data)


# --- bounded cost on large data -----------------------------------------------------------


def test_one_pass_silhouette_equals_sklearn_for_every_k():
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    from models.segments.clusters import _silhouette_scores

    data, _ = blobs(4, seed=40)
    z = data.to_numpy().copy()
    z[:3] = z[0]  # duplicate points: zero distances off the diagonal
    labelings = {k: KMeans(k, n_init=1, random_state=0).fit_predict(z) for k in range(2, 8)}
    labelings[8] = np.r_[0, np.ones(len(z) - 1, dtype=int)]  # a single-customer cluster
    labelings[9] = np.zeros(len(z), dtype=int)  # one cluster: no silhouette
    ours = _silhouette_scores(z, labelings, chunk=97)
    assert sorted(ours) == [2, 3, 4, 5, 6, 7, 8]
    for k in ours:
        assert ours[k] == pytest.approx(silhouette_score(z, labelings[k]), abs=1e-12)


@pytest.mark.parametrize("k", [3, 5])
def test_k_search_on_a_sample_then_every_customer_joins_the_nearest_centre(k):
    data, truth = blobs(k, seed=50 + k, sizes=[500] * k)
    sampled = model(fit_sample_size=400, sample_size=200).fit(data)
    assert sampled.search_size_ == 400 < len(data)
    assert sampled.n_clusters_ == k
    assert adjusted_rand_score(truth, sampled.labels_) == pytest.approx(1.0)
    assert sampled.profiles_["size"].tolist() == [500] * k
    np.testing.assert_array_equal(sampled.labels_, sampled.predict(data)["cluster"].to_numpy())
    full = model(sample_size=200).fit(data)
    assert full.search_size_ == len(data)
    # the sample's centres lie within sampling error of those found on every customer
    from scipy.spatial.distance import cdist

    gaps = cdist(sampled.centers_, full.centers_)
    assert (gaps.min(axis=1) < 0.3).all() and len(set(gaps.argmin(axis=1))) == k  # apart: ~2.9


@pytest.mark.parametrize("k", [3, 4, 5, 6])
def test_bootstrap_refit_on_a_search_sample_keeps_ids(k):
    data, _ = blobs(k, seed=20 + k)
    champion = model(fit_sample_size=300).fit(data)
    rng = np.random.default_rng(k)
    resample = data.iloc[rng.integers(0, len(data), len(data))]
    challenger = model(random_state=7, fit_sample_size=300, reference=champion).fit(resample)
    same = champion.predict(data)["cluster"].to_numpy() == challenger.predict(data)["cluster"]
    assert same.mean() >= 0.95
    assert sorted(challenger.alignment_["matched"]) == list(range(k))
    assert challenger.alignment_["new"] == [] and challenger.alignment_["retired"] == []


def test_fit_sample_must_hold_more_than_k_min_customers():
    data, _ = blobs(3, seed=60)
    with pytest.raises(InvalidInputError, match="fit_sample_size"):
        model(fit_sample_size=2).fit(data)
