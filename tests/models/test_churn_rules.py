import json

import numpy as np
import pandas as pd
import pytest

from models.churn.rules import DEFAULT_RULES, Rule, early_warnings, load_rules
from models.exceptions import InvalidInputError

FEATURES = pd.DataFrame(
    {
        "spend_change": [-0.31, -0.30, 0.5, np.nan],
        "gap_ratio": [1.0, 2.5, 2.0, np.nan],
        "unresolved_complaints": [0.0, 1.0, 0.0, np.nan],
        "activity_trend": [-0.5, 0.0, -0.2, -1.0],
        "plan": ["basic", "plus", "basic", None],
        "balance": [3.0, 50.0, 9.0, 0.0],
    },
    index=pd.Index(["a", "b", "c", "d"], name="customer_id"),
)


def test_default_rules_of_seed_004():
    alerts = early_warnings(FEATURES)
    assert alerts["spend_drop"].tolist() == [True, False, False, False]  # strictly > 30 % down
    assert alerts["overdue"].tolist() == [False, True, False, False]  # strictly > 2× the gap
    assert alerts["unresolved_complaint"].tolist() == [False, True, False, False]
    assert alerts["usage_drop"].tolist() == [True, False, False, True]
    assert alerts["n_alerts"].tolist() == [2, 2, 0, 1]
    assert alerts.loc["b", "alerts"] == [DEFAULT_RULES[1].label, "Unresolved complaint"]
    assert list(alerts.index) == ["a", "b", "c", "d"]
    assert alerts.attrs["unavailable_rules"] == []


def test_configurable_rules_from_json(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(
        json.dumps(
            [
                {
                    "name": "low_balance",
                    "label": "Balance under 10",
                    "feature": "balance",
                    "op": "<",
                    "value": 10,
                },
                {"name": "basic_plan", "feature": "plan", "op": "in", "value": ["basic"]},
                {"name": "no_usage", "feature": "minutes", "op": "==", "value": 0},
            ]
        )
    )
    alerts = early_warnings(FEATURES, load_rules(path))
    assert alerts["low_balance"].tolist() == [True, False, True, True]
    assert alerts["basic_plan"].tolist() == [True, False, True, False]
    assert not alerts["no_usage"].any()  # feature absent: never fires, and is reported
    assert alerts.attrs["unavailable_rules"] == ["no_usage"]
    assert alerts.loc["a", "alerts"] == ["Balance under 10", "basic_plan"]


def test_bad_rules_are_refused():
    with pytest.raises(InvalidInputError, match="unknown op"):
        Rule("x", "x", "f", "=~", 1)
    with pytest.raises(InvalidInputError, match="lacks 'op'"):
        load_rules([{"name": "x", "feature": "f", "value": 1}])
    with pytest.raises(InvalidInputError, match="unique"):
        load_rules([DEFAULT_RULES[0], DEFAULT_RULES[0]])
