import json
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from models.exceptions import InvalidInputError, NotFittedError
from models.features import summarize
from models.playbook import (
    DEFAULT_PLAYBOOK,
    catalogue,
    describe,
    describe_cluster,
    load_playbook,
    missing_labels,
    recommend,
    rfm_segment_table,
    scheme_description,
)
from models.segments import (
    DEFAULT_NINE_GRID_STRATEGIES,
    DEFAULT_RFM_SEGMENTS,
    NINE_GRID_STRATEGIES,
    SCHEME_LABELS,
    BehaviourClusters,
    LifecycleStage,
    NineGrid,
    RFMSegmenter,
    ValueMatrix,
    quintile_score,
)


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


# --- RFM golden tests ----------------------------------------------------------------------
# Ten hand-made customers with ties on every column. Score = 1 + floor(5 · share strictly
# below); recency is scored on days and reversed.
GOLDEN = pd.DataFrame(
    {
        "days_since_last": [0.0, 0.0, 5.0, 10.0, 10.0, 30.0, 60.0, 90.0, 200.0, 400.0],
        "n_purchases": [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 5.0, 8.0, 1.0, 1.0],
        "total_revenue": [10.0, 20.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 100.0],
    },
    index=[f"g{i}" for i in range(10)],
)
GOLDEN_CODES = ["511", "511", "431", "432", "443", "343", "254", "254", "115", "115"]
GOLDEN_SEGMENTS = [
    "new",
    "new",
    "potential_loyalist",
    "potential_loyalist",
    "loyal",
    "loyal",
    "cant_lose",
    "cant_lose",
    "lost",
    "lost",
]


def test_rfm_golden_scores_and_names_with_ties():
    model = RFMSegmenter().fit(GOLDEN)
    out = model.predict(GOLDEN)
    assert out["r_score"].tolist() == [5, 5, 4, 4, 4, 3, 2, 2, 1, 1]
    assert out["f_score"].tolist() == [1, 1, 3, 3, 4, 4, 5, 5, 1, 1]
    assert out["m_score"].tolist() == [1, 1, 1, 2, 3, 3, 4, 4, 5, 5]
    assert out["rfm_code"].tolist() == GOLDEN_CODES
    assert out["rfm_segment"].tolist() == GOLDEN_SEGMENTS
    assert list(out.index) == list(GOLDEN.index)
    assert model.segment_sizes_ == {
        "champions": 0,
        "loyal": 2,
        "potential_loyalist": 2,
        "new": 2,
        "promising": 0,
        "need_attention": 0,
        "about_to_sleep": 0,
        "cant_lose": 2,
        "at_risk": 0,
        "hibernating": 0,
        "lost": 2,
    }


def test_rfm_single_customer_table():
    one = GOLDEN.iloc[[3]]
    model = RFMSegmenter().fit(one)
    assert model.predict(one)["rfm_code"].tolist() == ["511"]
    assert model.predict(one)["rfm_segment"].tolist() == ["new"]
    assert model.segment_sizes_["new"] == 1 and sum(model.segment_sizes_.values()) == 1
    # Everyone else is scored against that one customer.
    others = model.predict(GOLDEN.iloc[[0, 9]])
    assert others["rfm_code"].tolist() == ["511", "115"]
    assert others["rfm_segment"].tolist() == ["new", "lost"]


def test_rfm_missing_values_score_lowest():
    model = RFMSegmenter().fit(GOLDEN)
    row = pd.DataFrame({"days_since_last": [np.nan], "n_purchases": [np.nan], "total_revenue": [5]})
    assert model.predict(row)["rfm_code"].tolist() == ["111"]


def test_rfm_rejects_a_bad_segment_table():
    with pytest.raises(InvalidInputError, match="scores 1-5"):
        RFMSegmenter(segments=[{"segment": "x", "r": [6], "f": [1]}]).fit(GOLDEN)
    with pytest.raises(InvalidInputError, match="'segment', 'r' and 'f'"):
        RFMSegmenter(segments=[{"segment": "x", "r": [1]}]).fit(GOLDEN)
    with pytest.raises(InvalidInputError, match="zero customers"):
        RFMSegmenter().fit(GOLDEN.iloc[:0])


def test_playbook_holds_the_rfm_table_and_a_user_playbook_can_rename(tmp_path):
    assert rfm_segment_table() == DEFAULT_RFM_SEGMENTS
    book = json.loads(DEFAULT_PLAYBOOK.read_text(encoding="utf-8"))
    book["schemes"]["rfm"]["segment_table"] = [
        {"segment": "recent", "r": [4, 5], "f": [1, 2, 3, 4, 5]},
        {"segment": "faded", "r": [1, 2, 3], "f": [1, 2, 3, 4, 5]},
    ]
    path = tmp_path / "playbook.json"
    path.write_text(json.dumps(book), encoding="utf-8")
    user = load_playbook(str(path))
    model = RFMSegmenter(segments=rfm_segment_table(user)).fit(GOLDEN)
    assert model.predict(GOLDEN)["rfm_segment"].tolist() == ["recent"] * 5 + ["faded"] * 5
    book["schemes"]["rfm"]["segment_table"] = [{"segment": "bad", "r": [0], "f": [1]}]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(book), encoding="utf-8")
    with pytest.raises(InvalidInputError, match="segment_table"):
        load_playbook(str(bad))


# --- the playbook covers every scheme --------------------------------------------------------
def test_playbook_covers_every_label_of_every_scheme():
    book = load_playbook()
    assert missing_labels(SCHEME_LABELS, book) == []
    for scheme, labels in SCHEME_LABELS.items():
        assert len(scheme_description(scheme, book)) > 40, scheme
        assert len(labels) == len(set(labels)) > 0
        for label in labels:
            entry = describe(scheme, label, book)
            assert entry["name"] and entry["description"], (scheme, label)
            assert len(entry["actions"]) >= 1 and all(entry["actions"]), (scheme, label)
    assert len(SCHEME_LABELS["nine_grid"]) == 9 and len(SCHEME_LABELS["lifecycle"]) == 5
    assert set(SCHEME_LABELS["value_matrix"]) == {"gold", "meteor", "stream", "burden"}


def test_playbook_nine_grid_cells_name_the_models_strategies():
    book = load_playbook()
    for cell, strategy in DEFAULT_NINE_GRID_STRATEGIES.items():
        assert describe("nine_grid", cell, book)["strategy"] == strategy
    assert set(DEFAULT_NINE_GRID_STRATEGIES.values()) == set(NINE_GRID_STRATEGIES)
    assert describe("nine_grid_strategy", "planned_exit", book)["name"] == "Planned exit"


def test_missing_labels_reports_what_a_user_playbook_lacks():
    book = {"schemes": {"lifecycle": {"labels": {"growth": {}}}}}
    missing = missing_labels({"lifecycle": ["growth", "lapsed"], "value_matrix": ["gold"]}, book)
    assert missing == ["lifecycle.lapsed", "value_matrix.gold"]


def test_describe_cluster_combines_its_traits():
    book = load_playbook()
    entry = describe_cluster(3, "Lapsing, single-channel customers", ["lapsing", "single_channel"])
    lapsing, single = (
        describe("behaviour", "lapsing", book),
        describe("behaviour", "single_channel", book),
    )
    assert entry["label"] == 3 and entry["traits"] == ["lapsing", "single_channel"]
    assert entry["description"] == f"{lapsing['description']} {single['description']}"
    # Round-robin: each trait's first action comes first.
    assert entry["actions"][:2] == [lapsing["actions"][0], single["actions"][0]]
    assert len(entry["actions"]) == 4 and len(set(entry["actions"])) == 4


# --- the API of every scheme -----------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_summary():
    from models.clv import CLVModel
    from training import synthetic

    transactions, _, truth = synthetic.generate(1500, seed=3)
    summary = summarize(transactions, truth.params["as_of"])
    # the nine-grid's growth axis reads the CLV model's forecast
    forecast = CLVModel().fit(summary).predict(summary)["expected_purchases"]
    return summary.assign(expected_purchases=forecast)


ALL_MODELS = [
    RFMSegmenter,
    ValueMatrix,
    lambda: BehaviourClusters(k_max=5),
    LifecycleStage,
    NineGrid,
]


@pytest.mark.parametrize("make", ALL_MODELS)
def test_every_scheme_is_a_picklable_sklearn_style_estimator(make, demo_summary):
    model = make()
    params = model.get_params()
    assert not any(k.endswith("_") for k in vars(model)), "fitted state before fit"
    assert model.fit(demo_summary) is model
    fresh = clone(model)
    assert fresh.get_params().keys() == params.keys() and not hasattr(fresh, "segment_sizes_")
    out = model.predict(demo_summary)
    assert list(out.index) == list(demo_summary.index)
    assert model.label_column in out.columns and model.scheme in SCHEME_LABELS
    assert sum(model.segment_sizes_.values()) == len(demo_summary)
    again = pickle.loads(pickle.dumps(model)).predict(demo_summary)
    pd.testing.assert_frame_equal(out, again)
    labels = set(out[model.label_column].tolist())
    if model.scheme != "behaviour":
        assert labels <= set(SCHEME_LABELS[model.scheme])
        assert set(model.segment_sizes_) <= set(SCHEME_LABELS[model.scheme])
    with pytest.raises(NotFittedError):
        make().predict(demo_summary)


def test_catalogue_lists_every_scheme_with_training_sizes(demo_summary):
    models = {
        "rfm": RFMSegmenter().fit(demo_summary),
        "value": ValueMatrix().fit(demo_summary),
        "behaviour": BehaviourClusters(k_max=4).fit(demo_summary),
        "lifecycle": LifecycleStage().fit(demo_summary),
        "grid": NineGrid().fit(demo_summary),
    }
    cat = catalogue(models)
    assert set(cat) == {
        "rfm",
        "value_matrix",
        "behaviour",
        "lifecycle",
        "nine_grid",
        "nine_grid_strategy",
    }
    for scheme, body in cat.items():
        assert body["description"], scheme
        assert sum(entry["size"] for entry in body["labels"]) == len(demo_summary), scheme
        for entry in body["labels"]:
            assert entry["name"] and entry["description"] and entry["actions"], (scheme, entry)
    clusters = models["behaviour"]
    assert [e["label"] for e in cat["behaviour"]["labels"]] == list(clusters.segment_sizes_)
    assert [e["name"] for e in cat["behaviour"]["labels"]] == list(clusters.names_.values())
    assert {t for ts in clusters.traits_.values() for t in ts} <= set(SCHEME_LABELS["behaviour"])
