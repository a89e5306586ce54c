"""The per-customer features in Spark, from the one feature function of the product.

:func:`models.features.summarize` (and :func:`models.churn.features.churn_features` for
scoring) run inside Spark over hash buckets of customers: every transaction of a customer
lands in the same bucket, a bucket holds tens of thousands of customers, and each bucket is one
pandas call (``groupBy(bucket).applyInPandas``). There is no second implementation of the
features: a bucket's rows are exactly what the pandas path would compute for those customers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from models.churn.features import churn_features
from models.features import SUMMARY_COLUMNS, end_of_day, summarize

BUCKET = "_bucket"
# Transactions per bucket: large enough that the per-call cost vanishes, small enough that a
# bucket's pandas frames stay well under a gigabyte.
BUCKET_TRANSACTIONS = 200_000


def n_buckets(n_transactions: int, per_bucket: int = BUCKET_TRANSACTIONS) -> int:
    """Buckets for ``n_transactions`` rows (at least 1)."""
    return max(1, math.ceil(n_transactions / per_bucket))


def with_bucket(frame: Any, buckets: int) -> Any:
    """``frame`` with the column ``_bucket``: a hash of ``customer_id`` modulo ``buckets``."""
    from pyspark.sql import functions as F

    return frame.withColumn(BUCKET, F.pmod(F.xxhash64("customer_id"), F.lit(buckets)))


def spark_type(dtype: Any) -> str:
    """The Spark SQL type of a feature column's pandas dtype: numbers are doubles (as the
    models' signatures declare them: a customer missing from the customer table makes an
    integer attribute missing), flags, dates, text otherwise."""
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype):
        return "double"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamp_ntz"
    return "string"


def ddl(types: dict[str, str]) -> str:
    """A Spark DDL schema from column name → Spark type."""
    return ", ".join(f"`{name}` {kind}" for name, kind in types.items())


def conform(frame: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """``frame`` with exactly the columns of ``types`` (missing ones empty), each cast to the
    pandas type Arrow needs for its Spark type."""
    out: dict[str, Any] = {}
    for name, kind in types.items():
        values = frame[name] if name in frame.columns else pd.Series(np.nan, index=frame.index)
        if kind == "double":
            out[name] = pd.to_numeric(values, errors="coerce").astype("float64")
        elif kind == "boolean":
            out[name] = values.astype("boolean")
        elif kind == "timestamp_ntz":
            out[name] = pd.to_datetime(values)
        else:
            out[name] = values.astype("str").where(values.notna(), None)
    return arrow_safe(pd.DataFrame(out, index=frame.index))


def arrow_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its text columns as Python objects: PySpark's Arrow writer takes one
    array per column, and pandas 3's Arrow-backed strings can hold several chunks."""
    text = [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c].dtype)]
    return frame.astype({c: object for c in text}) if text else frame


def summary_table(transactions: Any, as_of: Any, buckets: int) -> Any:
    """The per-customer summary of :func:`models.features.summarize` for every customer of
    ``transactions`` (a Spark DataFrame in the data contract), as a Spark DataFrame with
    ``customer_id`` and :data:`SUMMARY_COLUMNS` (doubles)."""
    from training.spark import workers

    cutoff = end_of_day(as_of)
    columns = [
        c
        for c in ("customer_id", "timestamp", "amount", "cost", "channel")
        if c in transactions.columns
    ]
    schema = "customer_id string, " + ", ".join(f"`{c}` double" for c in SUMMARY_COLUMNS)
    workers.ship_by_value()
    compute = workers.summary_bucket(
        workers.release_folder(), cutoff, ["customer_id", *SUMMARY_COLUMNS]
    )
    frame = with_bucket(transactions.select(*columns), buckets)
    return frame.groupBy(BUCKET).applyInPandas(compute, schema)


def feature_function(as_of: Any) -> Callable[[pd.DataFrame, pd.DataFrame | None], pd.DataFrame]:
    """Summary and churn features of the customers in one bucket: one row per customer with
    purchases, ``customer_id`` first, then :data:`SUMMARY_COLUMNS`, then the churn features
    the summary lacks (the same functions as ``cvm score``)."""
    cutoff = end_of_day(as_of)

    def features(transactions: pd.DataFrame, customers: pd.DataFrame | None) -> pd.DataFrame:
        transactions = transactions.drop(columns=[BUCKET], errors="ignore")
        if customers is not None:
            customers = customers.drop(columns=[BUCKET], errors="ignore")
            if customers.empty:
                customers = None
        summary = summarize(transactions, cutoff)
        churn = churn_features(transactions, cutoff, customers, summary=summary)
        extra = [c for c in churn.columns if c not in summary.columns]
        return summary.join(churn[extra]).reset_index()

    return features


def feature_table(
    transactions: Any, customers: Any | None, as_of: Any, buckets: int, example: pd.DataFrame
) -> Any:
    """Summary and churn features of every customer (:func:`feature_function` per bucket).

    ``example``: the function's output on a few customers (computed on the driver), which
    fixes the output schema."""
    from training.spark import workers

    types = {name: spark_type(example[name].dtype) for name in example.columns}
    if customers is not None:  # attributes: the customer table's own types, not a sample's
        for field in customers.schema.fields:
            if field.name in types and field.name not in SUMMARY_COLUMNS:
                kind = field.dataType.simpleString()
                types[field.name] = "string" if kind == "string" else types[field.name]
    schema = ddl(types)
    workers.ship_by_value()
    compute = workers.feature_bucket(workers.release_folder(), end_of_day(as_of), types)
    tx = with_bucket(transactions, buckets)
    if customers is None:
        return tx.groupBy(BUCKET).applyInPandas(compute, schema)
    cust = with_bucket(customers, buckets)
    return tx.groupBy(BUCKET).cogroup(cust.groupBy(BUCKET)).applyInPandas(compute, schema)


__all__ = [
    "BUCKET",
    "arrow_safe",
    "conform",
    "ddl",
    "feature_function",
    "feature_table",
    "n_buckets",
    "spark_type",
    "summary_table",
    "with_bucket",
]
