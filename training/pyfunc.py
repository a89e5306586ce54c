"""MLflow pyfunc wrappers: each family's fitted estimator as a joblib artifact.

Loaded by ``mlflow.pyfunc.load_model`` (the service, ``mlflow models serve``,
``spark_udf``). The wrapper's input is the family's per-customer feature table (the output of
:func:`models.features.summarize`, plus customer attributes for churn; uplift takes the churn
features); its output is a DataFrame of scores (uplift: one ``uplift_<offer>`` column per
offer). ``self.model`` is the estimator itself, for callers that want to skip the pyfunc
layer (the service's fast path).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
from mlflow.pyfunc import PythonModel

from models.churn.risk import band_of


class CVMModel(PythonModel):  # type: ignore[misc]
    """One model family (``segmentation``, ``churn``, ``clv`` or ``uplift``) behind the pyfunc
    API."""

    def __init__(self, family: str):
        self.family = family
        self.model: Any = None
        self.drift_reference: dict[str, Any] = {}

    def load_context(self, context: Any) -> None:
        self.model = joblib.load(context.artifacts["model"])
        reference = context.artifacts.get("drift_reference")
        if reference:
            self.drift_reference = json.loads(Path(reference).read_text(encoding="utf-8"))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        return score(self.family, self.model, model_input)


def score(family: str, model: Any, features: pd.DataFrame) -> pd.DataFrame:
    """Scores of one family's estimator for a per-customer feature table."""
    if family == "churn":
        p = model.predict_proba(features[list(model.feature_names_in_)])[:, 1]
        return pd.DataFrame(
            {"churn_probability": p, "risk_band": band_of(model, p)}, index=features.index
        )
    if family in ("segmentation", "clv"):
        return model.predict(features)
    if family == "uplift":
        return model.predict_frame(features[list(model.feature_names_in_)])
    raise ValueError(f"unknown model family {family!r}")


__all__ = ["CVMModel", "score"]
