"""The AHP value index: weights and consistency on published matrices, refusals that name the
judgement to revise, percentile normalisation on worked numbers, and the index in the
segmentation model."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from models.exceptions import InvalidInputError
from models.segments import (
    BANK_TEMPLATE,
    DEFAULT_VALUE_INDEX,
    RANDOM_INDEX,
    VALUE_INDEX_COLUMN,
    CustomerSegments,
    ValueIndex,
    ahp_weights,
    load_value_index,
    resolve_value_index,
)
from models.segments.value_index import check_config

# Saaty's 3 × 3 example.
SAATY_3 = [[1, 3, 5], [1 / 3, 1, 3], [1 / 5, 1 / 3, 1]]
# The leader example of the AHP literature (criteria: experience, education, charisma, age),
# published priorities .547, .127, .270, .056.
LEADER = [[1, 4, 3, 7], [1 / 4, 1, 1 / 3, 3], [1 / 3, 3, 1, 5], [1 / 7, 1 / 3, 1 / 5, 1]]
# Saaty's house example (Saaty 1990, "How to make a decision"): eight criteria, published
# priorities .173 .054 .188 .018 .031 .036 .167 .333, λmax 9.669, CI 0.238, CR 0.169.
HOUSE_NAMES = [
    "size",
    "transport",
    "neighbourhood",
    "age",
    "yard",
    "facilities",
    "condition",
    "financing",
]
HOUSE = [
    [1, 5, 3, 7, 6, 6, 1 / 3, 1 / 4],
    [1 / 5, 1, 1 / 3, 5, 3, 3, 1 / 5, 1 / 7],
    [1 / 3, 3, 1, 6, 3, 4, 6, 1 / 5],
    [1 / 7, 1 / 5, 1 / 6, 1, 1 / 3, 1 / 4, 1 / 7, 1 / 8],
    [1 / 6, 1 / 3, 1 / 3, 3, 1, 1 / 2, 1 / 5, 1 / 6],
    [1 / 6, 1 / 3, 1 / 4, 4, 2, 1, 1 / 5, 1 / 6],
    [3, 5, 1 / 6, 7, 5, 5, 1, 1 / 2],
    [4, 7, 5, 8, 6, 6, 2, 1],
]


def _config(names: list[str], matrix: list[list[float]], **extra) -> dict:
    return {"indicators": [{"column": n} for n in names], "comparisons": matrix, **extra}


# --- weights and consistency --------------------------------------------------------------
def test_saaty_three_by_three_example():
    result = ahp_weights(SAATY_3)
    np.testing.assert_array_equal(result.weights.round(3), [0.637, 0.258, 0.105])
    assert round(result.consistency_ratio, 2) == 0.03
    assert result.lambda_max == pytest.approx(3.0385, abs=1e-4)
    assert result.consistency_index == pytest.approx((result.lambda_max - 3) / 2)
    assert result.consistency_ratio == pytest.approx(result.consistency_index / 0.58)
    assert result.weights.sum() == pytest.approx(1.0)


def test_leader_example_priorities():
    result = ahp_weights(LEADER)
    # published to 3 decimals, the first one cut rather than rounded (0.5476 → .547)
    np.testing.assert_allclose(result.weights, [0.547, 0.127, 0.270, 0.056], atol=1e-3)
    np.testing.assert_array_equal(result.weights.round(4), [0.5476, 0.1266, 0.2699, 0.0559])
    assert round(result.lambda_max, 3) == 4.118
    assert round(result.consistency_ratio, 3) == 0.044
    assert result.consistent


def test_saaty_house_example_is_computed_then_refused_naming_the_pair():
    result = ahp_weights(HOUSE)
    np.testing.assert_array_equal(
        result.weights.round(3), [0.173, 0.054, 0.188, 0.018, 0.031, 0.036, 0.167, 0.333]
    )
    assert round(result.lambda_max, 3) == 9.669
    assert round(result.consistency_index, 3) == 0.238
    assert round(result.consistency_ratio, 3) == 0.169
    assert not result.consistent
    # neighbourhood vs condition: judged 6, while the weights imply 0.188 / 0.167 ≈ 1.13
    assert result.most_inconsistent() == (2, 6)
    with pytest.raises(InvalidInputError) as caught:
        check_config(_config(HOUSE_NAMES, HOUSE), source="house.json")
    message = str(caught.value)
    assert message.startswith("house.json: the pairwise comparisons are not consistent enough")
    assert "CR 0.169 > 0.1" in message and "λmax 9.669 for 8 indicators" in message
    assert "neighbourhood against condition (comparisons[2][6] = 6)" in message
    assert "imply about 1.13" in message
    assert caught.value.field == "comparisons[2][6]"


def test_a_consistent_matrix_gives_back_its_weights():
    w = np.array([0.4, 0.3, 0.2, 0.1])
    result = ahp_weights(w[:, None] / w[None, :])
    np.testing.assert_allclose(result.weights, w, rtol=1e-12)
    assert result.lambda_max == pytest.approx(4.0)
    assert result.consistency_ratio == pytest.approx(0.0, abs=1e-12)
    assert result.most_inconsistent() in {(i, j) for i in range(4) for j in range(i + 1, 4)}


def test_up_to_two_indicators_are_always_consistent():
    assert RANDOM_INDEX[1] == RANDOM_INDEX[2] == 0.0
    assert [RANDOM_INDEX[n] for n in (3, 4, 5, 9, 15)] == [0.58, 0.90, 1.12, 1.45, 1.59]
    two = ahp_weights([[1, 9], [1 / 9, 1]])
    assert two.consistency_ratio == 0.0
    np.testing.assert_allclose(two.weights, [0.9, 0.1])
    one = ahp_weights([[1]])
    assert one.weights.tolist() == [1.0] and one.consistency_ratio == 0.0


# --- configuration checks ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("matrix", "expected"),
    [
        ([[1, 3], ["1/2", 1]], "comparisons[1][0] should be 1/3"),
        ([[1, 10], [0.1, 1]], "comparisons[0][1] (a against b) is 10: judgements go from 1/9"),
        ([[1, -3], [-1 / 3, 1]], "is -3: judgements go from 1/9 to 9"),
        ([[2, 1], [1, 1]], "comparisons[0][0] (a against itself) must be 1, got 2"),
        ([[1, "three"], [1 / 3, 1]], "comparisons[0][1] must be a number or a fraction"),
        ([[1, 3, 5], [1 / 3, 1]], "comparisons row 1 (a) must hold 2 values, got 3"),
        ([[1, 3]], "comparisons must be a list of 2 rows, one per indicator (a, b), got 1"),
    ],
)
def test_a_bad_matrix_is_refused_naming_the_entry(matrix, expected):
    with pytest.raises(InvalidInputError) as caught:
        check_config(_config(["a", "b"], matrix), source="mine.json")
    assert str(caught.value).startswith("mine.json: ")
    assert expected in str(caught.value)


def test_fractions_and_rounded_reciprocals_are_read():
    checked = check_config(_config(["a", "b", "c"], [[1, 3, 5], ["1/3", 1, 3], [0.2, 0.333, 1]]))
    np.testing.assert_allclose(np.asarray(checked["comparisons"])[1], [1 / 3, 1, 3], rtol=1e-12)
    assert checked["indicators"][0] == {
        "column": "a",
        "direction": "higher",
        "label": "a",
        "optional": False,
    }


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"indicators": [], "comparisons": []}, "indicators must be a non-empty list"),
        (
            {"indicators": [{"column": "a", "direction": "up"}], "comparisons": [[1]]},
            "direction of 'a' must be \"higher\"",
        ),
        (
            {"indicators": [{"column": "a"}, {"column": "a"}], "comparisons": [[1, 1], [1, 1]]},
            "the column 'a' is named by two indicators",
        ),
        (
            {"indicators": [{"column": "a", "weight": 2}], "comparisons": [[1]]},
            "indicators[0] has unknown keys weight",
        ),
        ({"indicators": [{"column": "a"}], "comparisons": [[1]], "weights": 1}, "unknown keys"),
    ],
)
def test_a_bad_configuration_is_refused(config, expected):
    with pytest.raises(InvalidInputError, match=None) as caught:
        check_config(config, source="mine.json")
    assert expected in str(caught.value)


def test_the_bank_template_is_consistent_and_loads_by_name():
    raw = json.loads(BANK_TEMPLATE.read_text(encoding="utf-8"))
    config = resolve_value_index("bank")
    assert config == load_value_index(BANK_TEMPLATE)
    columns = [item["column"] for item in config["indicators"]]
    assert columns == [item["column"] for item in raw["indicators"]]
    assert {"deposit_balance", "loan_balance", "wallet_share", "products_held"} <= set(columns)
    directions = {item["column"]: item["direction"] for item in config["indicators"]}
    assert directions["cost_income_ratio"] == "lower"
    result = ahp_weights(config["comparisons"])
    assert result.consistency_ratio < 0.01
    assert columns[int(np.argmax(result.weights))] == "raroc"


def test_the_default_configuration():
    config = resolve_value_index(None)
    assert [i["column"] for i in config["indicators"]] == [
        "total_revenue",
        "n_purchases",
        "days_since_last",
        "probability_alive",
        "tenure_days",
    ]
    result = ahp_weights(config["comparisons"])
    np.testing.assert_array_equal(result.weights.round(3), [0.387, 0.212, 0.119, 0.212, 0.069])
    assert result.consistency_ratio < 0.01
    assert resolve_value_index(DEFAULT_VALUE_INDEX) == config | {"name": "default"}


def test_a_missing_file_and_a_file_that_is_not_json(tmp_path):
    with pytest.raises(InvalidInputError, match="value index file not found"):
        load_value_index(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{indicators: [")
    with pytest.raises(InvalidInputError, match=r"bad\.json: not a JSON file"):
        load_value_index(bad)


# --- percentiles and the index -----------------------------------------------------------
TWO = {
    "name": "two",
    "indicators": [
        {"column": "revenue", "direction": "higher"},
        {"column": "days", "direction": "lower"},
    ],
    "comparisons": [[1, 3], ["1/3", 1]],
}


def _two_fitted() -> ValueIndex:
    table = pd.DataFrame({"revenue": [10.0, 20.0, 30.0, 40.0], "days": [10.0, 40.0, 20.0, 30.0]})
    return ValueIndex.from_config(TWO).fit(table)


def test_index_on_worked_numbers():
    model = _two_fitted()
    assert model.weights == pytest.approx({"revenue": 0.75, "days": 0.25})
    table = pd.DataFrame({"revenue": [10.0, 20.0, 30.0, 40.0], "days": [10.0, 40.0, 20.0, 30.0]})
    # percentiles (ties half): revenue 1/8, 3/8, 5/8, 7/8; days reversed 7/8, 1/8, 5/8, 3/8
    np.testing.assert_allclose(
        model.percentiles(table).to_numpy(),
        [[0.125, 0.875], [0.375, 0.125], [0.625, 0.625], [0.875, 0.375]],
    )
    # 100 × (0.75 · revenue + 0.25 · days)
    np.testing.assert_allclose(model.predict(table)[VALUE_INDEX_COLUMN], [31.25, 31.25, 62.5, 75])


def test_an_outlier_counts_as_the_top_percentile_and_no_more():
    model = _two_fitted()
    new = pd.DataFrame({"revenue": [1e9, 40.0], "days": [25.0, 25.0]})
    # revenue above every training value: percentile 1; days 25: half below → 0.5
    np.testing.assert_allclose(model.predict(new)[VALUE_INDEX_COLUMN], [87.5, 78.125])


def test_missing_values_are_scored_on_the_other_indicators():
    model = _two_fitted()
    new = pd.DataFrame({"revenue": [np.nan, np.nan, 25.0], "days": [10.0, np.nan, np.nan]})
    out = model.predict(new)[VALUE_INDEX_COLUMN].to_numpy()
    assert out[0] == pytest.approx(87.5)  # days alone: 1 − 1/8
    assert np.isnan(out[1])  # nothing known
    assert out[2] == pytest.approx(50.0)  # revenue alone: 2 of 4 below
    no_days = model.predict(pd.DataFrame({"revenue": [25.0]}))  # an absent column: missing
    assert no_days[VALUE_INDEX_COLUMN].tolist() == [50.0]


def test_an_optional_indicator_without_data_is_left_out():
    table = pd.DataFrame(
        {
            "total_revenue": [5.0, 50.0, 500.0],
            "n_purchases": [1.0, 2.0, 9.0],
            "days_since_last": [300.0, 30.0, 3.0],
            "tenure_days": [400.0, 100.0, 800.0],
        }
    )
    model = ValueIndex().fit(table)  # the default configuration; no probability_alive
    assert model.dropped_ == ["probability_alive"]
    assert model.columns_ == ["total_revenue", "n_purchases", "days_since_last", "tenure_days"]
    sub = np.asarray(resolve_value_index(None)["comparisons"])[np.ix_([0, 1, 2, 4], [0, 1, 2, 4])]
    np.testing.assert_allclose(model.weights_, ahp_weights(sub).weights)
    assert sum(model.weights_) == pytest.approx(1.0)
    out = model.predict(table)[VALUE_INDEX_COLUMN].to_numpy()
    assert out[0] < out[1] < out[2]
    assert model.incomplete_share_ == 0.0


def test_a_required_indicator_without_data_is_an_error_naming_it():
    table = pd.DataFrame({"revenue": [1.0, 2.0], "days": ["a", "b"]})
    with pytest.raises(InvalidInputError) as caught:
        ValueIndex.from_config(TWO).fit(table)
    assert "value index 'two': the indicator column 'days' holds no number" in str(caught.value)
    assert caught.value.field == "days"
    with pytest.raises(InvalidInputError, match="'days' is not in the data"):
        ValueIndex.from_config(TWO).fit(table.drop(columns="days"))


def test_the_estimator_contract():
    model = _two_fitted()
    again = pickle.loads(pickle.dumps(model))
    assert again.weights == model.weights
    assert clone(model).get_params() == model.get_params()
    assert "weights_" not in vars(clone(model))


# --- in the segmentation model -----------------------------------------------------------
@pytest.fixture(scope="module")
def summary():
    from models.features import summarize
    from training import synthetic

    transactions, customers, truth = synthetic.generate(1200, seed=5)
    table = summarize(transactions, truth.params["as_of"])
    from models.clv import CLVModel

    rng = np.random.default_rng(0)
    forecast = CLVModel().fit(table).predict(table)["expected_purchases"]
    return table.assign(
        probability_alive=rng.uniform(0, 1, len(table)), expected_purchases=forecast
    )


def test_the_segmentation_model_serves_the_default_index(summary):
    model = CustomerSegments(k_max=4).fit(summary)
    out = model.predict(summary)
    index = out[VALUE_INDEX_COLUMN]
    assert index.between(0, 100).all() and index.notna().all()
    expected = ValueIndex().fit(summary).predict(summary)[VALUE_INDEX_COLUMN]
    np.testing.assert_allclose(index, expected)
    assert model.nine_grid_.value_axis is None  # the nine-grid as before


def test_the_nine_grid_can_cut_value_on_the_index(summary):
    config = {
        **TWO,
        "indicators": [
            {"column": "total_revenue", "direction": "higher"},
            {"column": "days_since_last", "direction": "lower"},
        ],
        "use_for_nine_grid": True,
    }
    model = CustomerSegments(k_max=4, value_index=config).fit(summary)
    assert model.nine_grid_.value_axis == VALUE_INDEX_COLUMN
    assert model.nine_grid_.value_columns_ == [VALUE_INDEX_COLUMN]
    out = model.predict(summary)
    index = out[VALUE_INDEX_COLUMN]
    # tiers are terciles of the index: every high customer is above every mid one, ...
    tiers = {t: index[out["value_tier"] == t] for t in ("low", "mid", "high")}
    assert tiers["high"].min() > tiers["mid"].max() and tiers["mid"].min() > tiers["low"].max()
    for size in (len(t) for t in tiers.values()):
        assert abs(size - len(out) / 3) < 0.02 * len(out)


def test_a_model_saved_before_the_index_predicts_as_before(summary):
    model = CustomerSegments(k_max=4).fit(summary)
    state = model.__getstate__()
    for key in ("value_index", "value_index_"):
        state.pop(key)
    state["nine_grid_"].__dict__.pop("value_axis")
    old = CustomerSegments.__new__(CustomerSegments)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    out = old.predict(summary)
    assert VALUE_INDEX_COLUMN not in out.columns
    assert old.describe_row(out.iloc[0])["nine_grid"]["label"] == out["nine_grid"].iloc[0]
    assert old.get_params()["value_index"] is None and "value_index=" not in repr(old)


def test_the_bank_template_scores_a_bank_customer_table():
    rng = np.random.default_rng(3)
    n = 400
    table = pd.DataFrame(
        {
            "deposit_balance": rng.lognormal(9, 1.5, n),  # skewed, a few very large
            "loan_balance": np.where(rng.random(n) < 0.6, 0.0, rng.lognormal(10, 1, n)),
            "raroc": rng.normal(0.12, 0.05, n),
            "wallet_share": rng.uniform(0, 1, n),
            "products_held": rng.integers(1, 8, n).astype(float),
            "monthly_transactions": rng.poisson(12, n).astype(float),
            "cost_income_ratio": rng.uniform(0.2, 0.9, n),
            "tenure_days": rng.integers(30, 4000, n).astype(float),
        }
    )
    model = ValueIndex.from_config(resolve_value_index("bank")).fit(table)
    assert model.columns_ == list(table.columns)
    assert model.consistency_ratio_ < 0.01
    index = model.predict(table)[VALUE_INDEX_COLUMN]
    assert index.between(0, 100).all()
    # a lower cost-income ratio, all else equal, raises the index by its weight's share
    one = table.iloc[[0]]
    cheap, dear = one.assign(cost_income_ratio=0.1), one.assign(cost_income_ratio=0.95)
    gap = (
        model.predict(cheap)[VALUE_INDEX_COLUMN].iloc[0]
        - model.predict(dear)[VALUE_INDEX_COLUMN].iloc[0]
    )
    assert gap == pytest.approx(100 * model.weights["cost_income_ratio"])
    # the largest depositor counts as the top percentile, not as a multiple of the others
    richest = table.iloc[[int(table["deposit_balance"].argmax())]]
    billion = richest.assign(deposit_balance=1e12)
    assert model.predict(billion)[VALUE_INDEX_COLUMN].iloc[0] == pytest.approx(
        model.predict(richest)[VALUE_INDEX_COLUMN].iloc[0]
        + 100 * model.weights["deposit_balance"] / (2 * n)
    )
