"""The AHP value index in training: the run's params, metrics and model card, customer-table
indicators, and the command line's refusals."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from models.exceptions import InvalidInputError
from models.features import summarize
from models.segments import VALUE_INDEX_COLUMN, ahp_weights, resolve_value_index
from tests.models.test_value_index import HOUSE, HOUSE_NAMES
from tests.training.test_cli import cvm
from training.model_card import model_card
from training.pipeline import SEGMENT_INPUT_COLUMNS, TrainConfig, train_all
from training.train_segments import join_customer_columns, train_segments, value_index_columns

AS_OF = "2025-12-31"
SHOP = {
    "name": "shop",
    "indicators": [
        {"column": "total_revenue", "direction": "higher"},
        {"column": "days_since_last", "direction": "lower"},
        {"column": "complaints", "direction": "lower", "label": "complaints (customer table)"},
    ],
    "comparisons": [[1, 3, 5], ["1/3", 1, 3], ["1/5", "1/3", 1]],
    "use_for_nine_grid": True,
}


def test_a_training_run_logs_the_default_index(trained_store):
    result = trained_store["result"]
    model = result.models["segmentation"]
    default = ahp_weights(resolve_value_index(None)["comparisons"])
    metrics = result.metrics
    assert metrics["segment_value_index_consistency_ratio"] == pytest.approx(
        default.consistency_ratio
    )
    assert metrics["segment_value_index_lambda_max"] == pytest.approx(default.lambda_max)
    assert metrics["segment_value_index_weight_total_revenue"] == pytest.approx(default.weights[0])
    assert metrics["segment_value_index_weight_probability_alive"] == pytest.approx(
        default.weights[3]
    )
    assert result.params["value_index_name"] == "default"
    assert result.params["value_index_weights"].startswith("total_revenue=0.3868,n_purchases=")
    assert result.params["value_index_nine_grid"] is False
    assert list(result.input_examples["segmentation"].columns) == SEGMENT_INPUT_COLUMNS
    assert VALUE_INDEX_COLUMN in result.output_examples["segmentation"].columns
    record = json.loads(result.texts["value_index.json"])
    assert record["consistency_ratio"] == pytest.approx(default.consistency_ratio)
    assert "segments_value_index.png" in result.figures
    card = model_card("segmentation", "cvm-segmentation", result, "f" * 16, None)
    assert "## Value index (AHP)" in card
    assert "| total_revenue (revenue to date) | higher | 0.3868 |" in card
    assert "| days_since_last (days since last purchase) | lower | 0.1194 |" in card
    assert f"CR {model.value_index_.consistency_ratio_:.4f} (accepted up to 0.1)" in card
    assert "value_index_weights" not in model_card("churn", "cvm-churn", result, "f" * 16, None)


def test_a_customer_table_indicator_is_read_as_the_customer_view_reads_it(demo_data):
    transactions, customers, _ = demo_data
    summary = summarize(transactions, AS_OF)
    summary = summary.assign(
        probability_alive=0.5, expected_purchases=summary["frequency"].to_numpy() * 0.5
    )
    config = resolve_value_index(SHOP)
    extra = value_index_columns(config, SEGMENT_INPUT_COLUMNS, customers)
    assert extra == ["complaints"]
    table = join_customer_columns(summary, customers, extra, pd.Timestamp(AS_OF))
    raw = customers.set_index("customer_id")["complaints"].reindex(summary.index)
    # complaints dated after as_of do not count, as in the churn features the service builds
    late = customers.set_index("customer_id")["complaint_date"].reindex(summary.index) > AS_OF
    expected = raw.where(~late, 0.0).fillna(0.0)
    np.testing.assert_array_equal(table["complaints"].to_numpy(), expected.to_numpy(dtype=float))
    training = train_segments(table, value_index=config)
    model = training.model
    assert model.value_index_.columns_ == ["total_revenue", "days_since_last", "complaints"]
    assert model.nine_grid_.value_axis == VALUE_INDEX_COLUMN
    assert training.params["value_index_name"] == "shop"
    assert training.params["value_index_nine_grid"] is True
    index = training.labels[VALUE_INDEX_COLUMN]
    # one more complaint, all else equal, lowers the index
    row = table.iloc[[0]]
    more = row.assign(complaints=row["complaints"] + 5)
    assert model.predict(more)[VALUE_INDEX_COLUMN].iloc[0] < index.iloc[0]


def test_an_indicator_found_nowhere_stops_training_before_any_model(demo_data):
    transactions, customers, _ = demo_data
    config = TrainConfig(
        as_of=pd.Timestamp(AS_OF),
        value_index={
            "indicators": [{"column": "total_revenue"}, {"column": "deposit_balance"}],
            "comparisons": [[1, 2], ["1/2", 1]],
        },
    )
    lines: list[str] = []
    with pytest.raises(InvalidInputError) as caught:
        train_all(transactions, customers, config, progress=lines.append)
    message = str(caught.value)
    assert (
        "the indicator column 'deposit_balance' is neither in the per-customer summary" in message
    )
    assert "customer-table columns: customer_id, signup_date, region, age" in message
    assert not any("CLV" in line for line in lines)  # nothing was fitted


def test_cvm_train_refuses_an_inconsistent_matrix_naming_the_pair(tmp_path):
    path = tmp_path / "house.json"
    path.write_text(
        json.dumps({"indicators": [{"column": n} for n in HOUSE_NAMES], "comparisons": HOUSE})
    )
    result = cvm("train", "--demo", "--value-index", str(path), home=tmp_path / "home", timeout=120)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert "argument --value-index: " in last and "house.json" in last
    assert "CR 0.169 > 0.1" in last
    assert "neighbourhood against condition (comparisons[2][6] = 6)" in last
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "home" / "mlflow.db").exists()
