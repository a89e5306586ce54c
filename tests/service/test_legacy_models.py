"""Versions registered by the previous release (model format 1, before ``models/`` became
packages) load in this service and score as that release did."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from models.families import REQUIRED_FAMILIES
from service.app import create_app
from service.config import REGISTERED_NAMES, Settings
from service.model_store import ModelStore

LEGACY = Path(__file__).parents[1] / "data" / "legacy_models"


@pytest.fixture(scope="module")
def legacy_store(tmp_path_factory) -> str:
    """A fresh store whose champions are the previous release's registered model folders."""
    root = tmp_path_factory.mktemp("legacy")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    for family, name in REGISTERED_NAMES.items():
        if family not in REQUIRED_FAMILIES:  # the previous release had no uplift model
            continue
        source = root / family
        shutil.copytree(LEGACY / family, source)
        client.create_registered_model(name)
        version = client.create_model_version(name, source=str(source))
        client.set_model_version_tag(name, version.version, "cvm_model_format", "1")
        client.set_registered_model_alias(name, "champion", version.version)
    return uri


def _frame(split: dict) -> pd.DataFrame:
    return pd.DataFrame(split["data"], columns=split["columns"])


def test_previous_release_versions_load_and_score_as_they_did(legacy_store):
    store = ModelStore(Settings(mlflow_tracking_uri=legacy_store, reload_interval=0))
    store.refresh()
    assert store.errors == {}
    assert store.ready
    expected = json.loads((LEGACY / "expected.json").read_text(encoding="utf-8"))
    for family in REQUIRED_FAMILIES:
        pyfunc = mlflow.pyfunc.load_model(str(LEGACY / family))
        got = pyfunc.predict(pyfunc.input_example).reset_index(drop=True)
        want = _frame(expected[family])
        assert list(got.columns) == list(want.columns), family
        for column in want.columns:
            if pd.api.types.is_numeric_dtype(want[column]):
                # CLV's 95 % bounds come from forward differences (step 1e-6) of forecasts now
                # summed per distinct (x, T): the last digits of their rounding move to 1e-6.
                tolerance = 1e-5 if column in ("clv_lower", "clv_upper") else 1e-12
                np.testing.assert_allclose(
                    got[column].to_numpy(dtype=float),
                    want[column].to_numpy(dtype=float),
                    rtol=tolerance,
                    atol=1e-12,
                    err_msg=f"{family}.{column}",
                )
            else:
                assert got[column].astype(str).tolist() == want[column].astype(str).tolist()


def test_previous_release_versions_serve_the_customer_view(legacy_store):
    app = create_app(Settings(mlflow_tracking_uri=legacy_store, reload_interval=0))
    with TestClient(app) as client:
        assert app.state.store.wait(120), app.state.store.error
        models = {m["family"]: m["version"] for m in client.get("/v1/models").json()["models"]}
        assert models == {"segmentation": "1", "churn": "1", "clv": "1"}
        answer = client.post(
            "/v1/customers/score",
            json={
                "as_of": "2025-12-31",
                "customers": [
                    {
                        "customer_id": "C1",
                        "transactions": [
                            {"timestamp": "2025-03-01", "amount": 40.0},
                            {"timestamp": "2025-09-15", "amount": 55.5},
                        ],
                    }
                ],
            },
        )
        assert answer.status_code == 200, answer.text
        (customer,) = answer.json()["customers"]
        assert customer["customer_id"] == "C1"
        assert 0.0 <= customer["churn"]["probability"] <= 1.0
        assert customer["clv"]["clv"] >= 0.0
        assert customer["segments"]


def test_models_saved_before_the_training_cost_settings_get_their_defaults():
    """Settings added later (bounded churn selection, the clusters' search sample) take their
    defaults on a model saved without them, so repr, get_params and clone still work."""
    import joblib
    from sklearn.base import clone

    from models.churn.classifier import CV_MAX_ROWS, FIT_MAX_ROWS
    from models.segments.clusters import FIT_SAMPLE_SIZE

    churn = joblib.load(LEGACY / "churn" / "artifacts" / "churn.joblib")
    params = churn.get_params()
    assert params["cv_max_rows"] == CV_MAX_ROWS and params["fit_max_rows"] == FIT_MAX_ROWS
    assert repr(churn) == "ChurnClassifier(max_iter=20)"
    assert clone(churn).get_params() == params
    clusters = joblib.load(LEGACY / "segmentation" / "artifacts" / "segmentation.joblib").clusters_
    assert clusters.get_params()["fit_sample_size"] == FIT_SAMPLE_SIZE
