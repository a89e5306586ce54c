"""``cvm score --engine spark``: every customer scored with the registered versions through
``mlflow.pyfunc.spark_udf``, written as a Parquet folder with the columns of the pandas
``cvm score``.

The versions are resolved once, on the driver, the way the service resolves them: a pinned
version (``CVM_SEGMENTATION_MODEL``, ``CVM_CHURN_MODEL``, ``CVM_CLV_MODEL``) wins, else the
served alias (``CVM_MODEL_ALIAS``, default ``champion``). The same versions then serve HTTP
and the batch job, and give the same answer for the same customer.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from models.customer_value import VALUE_INPUTS
from models.exceptions import CVMError
from models.families import REGISTERED_NAMES, REQUIRED_FAMILIES
from training.spark.features import ddl, feature_function, feature_table, n_buckets

# the Spark type of each MLflow signature type
_SPARK_TYPES = {
    "double": "double",
    "float": "float",
    "long": "bigint",
    "integer": "int",
    "boolean": "boolean",
    "string": "string",
    "datetime": "timestamp",
}


@dataclass
class Version:
    """One registered version chosen for scoring."""

    family: str
    name: str
    version: str
    source: str  # "@alias" or "pinned"

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def resolve_versions(alias: str | None = None) -> dict[str, Version]:
    """The version of each family the service would serve (pins, else the alias)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from training import config

    alias = alias or os.environ.get("CVM_MODEL_ALIAS") or "champion"
    uri = config.tracking_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    out: dict[str, Version] = {}
    for family in REQUIRED_FAMILIES:
        name = REGISTERED_NAMES[family]
        variable = f"CVM_{family.upper()}_MODEL"
        pin = os.environ.get(variable, "").strip()
        try:
            if pin:
                match = re.fullmatch(rf"(?:models:/{re.escape(name)}/)?(\d+)", pin)
                if not match:
                    raise CVMError(f"{variable}={pin!r}: use a version number or models:/{name}/N")
                found = client.get_model_version(name, match.group(1))
                out[family] = Version(family, name, str(found.version), "pinned")
            else:
                found = client.get_model_version_by_alias(name, alias)
                out[family] = Version(family, name, str(found.version), f"@{alias}")
        except mlflow.exceptions.MlflowException as exc:
            what = f"version {pin}" if pin else f"@{alias}"
            raise CVMError(f"no {name} {what} in the registry: train first (cvm train)") from exc
    return out


def _signature(uri: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(input column names, [(output column, Spark type)]) of a registered version."""
    import mlflow

    info = mlflow.models.get_model_info(uri)
    if info.signature is None or info.signature.outputs is None:
        raise CVMError(f"{uri} has no signature: retrain it with this release")
    inputs = [c["name"] for c in info.signature.inputs.to_dict()]
    outputs = [
        (c["name"], _SPARK_TYPES.get(c["type"], "string")) for c in info.signature.outputs.to_dict()
    ]
    return inputs, outputs


def score_customers(
    spark: Any,
    transactions: Any,
    customers: Any | None,
    as_of: pd.Timestamp,
    versions: dict[str, Version],
    n_transactions: int,
    progress: Callable[[str], None] = print,
) -> Any:
    """A Spark DataFrame with one row per customer with purchases: the columns of the pandas
    ``cvm score`` (:func:`training.batch.score_customers`), in the same order."""
    import mlflow
    from pyspark.sql import functions as F

    from models.customer_view import score_frame
    from training.batch import with_actions

    # The estimators, once on the driver: the output schema and the CLV model's high-value
    # threshold (the Python workers load the same versions through spark_udf).
    models = {
        family: mlflow.pyfunc.load_model(v.uri).unwrap_python_model().model
        for family, v in versions.items()
    }
    period = getattr(models["clv"], "period", None)
    if period is not None:
        clv = versions["clv"]
        raise CVMError(
            f"{clv.name} v{clv.version} ({clv.source}) is a BG/BB model (periods of a "
            f"{period}), which the Spark engine does not score: leave out --engine spark"
        )
    threshold = float(getattr(models["clv"], "high_value_threshold_", float("inf")))
    buckets = n_buckets(n_transactions)

    # The output schema: the pandas scoring of a few rows, computed here (the first rows
    # read; no pass over the data).
    example_tx = transactions.limit(500).toPandas()
    example_cust = None
    if customers is not None:
        ids = list(example_tx["customer_id"].astype(str).unique())
        example_cust = customers.filter(F.col("customer_id").isin(ids)).limit(500).toPandas()
    example = feature_function(as_of)(example_tx, example_cust)
    features = feature_table(transactions, customers, as_of, buckets, example)

    signatures = {family: _signature(v.uri) for family, v in versions.items()}

    def udf(family: str) -> Any:
        result = ddl(dict(signatures[family][1]))
        return mlflow.pyfunc.spark_udf(
            spark, versions[family].uri, result_type=result, env_manager="local"
        )

    def inputs(family: str) -> Any:
        return F.struct(*[F.col(f"`{c}`") for c in signatures[family][0]])

    clv_columns = [name for name, _ in signatures["clv"][1]]
    seg_columns = [name for name, _ in signatures["segmentation"][1]]
    # CLV and churn read only the features: both run in one pass through Python; the
    # segmentation needs the CLV model's P(alive) and runs after them.
    scored = features.select(
        *[F.col(f"`{c}`") for c in features.columns],
        udf("clv")(inputs("clv")).alias("_clv"),
        udf("churn")(inputs("churn")).alias("_churn"),
    )
    scored = scored.select(
        *[F.col(f"`{c}`") for c in features.columns],
        *[F.col(f"_clv.`{c}`").alias(c) for c in clv_columns],
        "_churn",
    )
    scored = scored.withColumn("_seg", udf("segmentation")(inputs("segmentation")))
    segment_part = [c for c in seg_columns if c != "probability_alive"]
    combined = scored.select(
        "customer_id",
        *[F.col(f"_seg.`{c}`").alias(c) for c in segment_part],
        *[F.col(f"`{c}`") for c in clv_columns],
        F.col("_churn.churn_probability").alias("churn_probability"),
        F.col("_churn.risk_band").alias("risk_band"),
        # the summary columns of the value in three parts (models/customer_value.py)
        *[F.col(f"`{c}`") for c in VALUE_INPUTS if c not in seg_columns],
    )

    # The last columns in pandas, with the functions of the pandas path.
    from training.spark import workers

    example_features = example.set_index("customer_id")
    pandas_example = with_actions(score_frame(models, example_features, example_features))
    types = _types_of(pandas_example.reset_index())
    schema = ddl(types)
    finish = workers.finish_scores(workers.release_folder(), threshold, list(types))

    progress(
        "scoring with "
        + ", ".join(f"{v.name} v{v.version} ({v.source})" for v in versions.values())
        + f" in {buckets} customer buckets"
    )
    return combined.mapInPandas(finish, schema)


def _types_of(frame: pd.DataFrame) -> dict[str, str]:
    out = {}
    for name in frame.columns:
        dtype = frame[name].dtype
        if pd.api.types.is_bool_dtype(dtype):
            out[name] = "boolean"
        elif pd.api.types.is_integer_dtype(dtype):
            out[name] = "bigint"
        elif pd.api.types.is_float_dtype(dtype):
            out[name] = "double"
        else:
            out[name] = "string"
    return out


__all__ = ["Version", "resolve_versions", "score_customers"]
