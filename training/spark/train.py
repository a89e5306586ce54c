"""``cvm train --engine spark`` and ``cvm retrain --engine spark``: the same models, runs,
model cards and registry moves as the pandas path, with bounded driver memory.

- The per-customer summary of every customer is computed in Spark (the one feature
  function, :mod:`training.spark.features`) and kept as Parquet in a work folder.
- Churn and segmentation are fitted, and the CLV model chosen, on a random sample of
  customers (``sample_customers``, default 1,000,000), stratified on the churn label (each
  label keeps its share); their holdout metrics come from a separate sample
  (``holdout_customers``). Only these samples' transactions reach the driver.
- The CLV model is then refitted on sufficient statistics of every customer, aggregated in
  Spark: the distinct (frequency, recency, T) with their counts and the distinct
  (frequency, mean spend) of repeat buyers with theirs, never per-customer rows.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import hashlib
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.clv import CLV_INPUT_COLUMNS, CLVModel
from models.exceptions import CVMError, InvalidInputError
from models.features import end_of_day
from training.pipeline import TrainConfig, TrainResult, train_all
from training.spark.features import n_buckets, summary_table

DEFAULT_SAMPLE_CUSTOMERS = 1_000_000
DEFAULT_HOLDOUT_CUSTOMERS = 200_000
_HASH_RANGE = 1 << 40


@dataclass
class SparkInputs:
    """Validated Spark inputs of a training or scoring job (the Spark side of
    :class:`training.inputs.Inputs`)."""

    spark: Any
    transactions: Any  # Spark DataFrame in the data contract
    customers: Any | None
    as_of: pd.Timestamp
    tx_path: str
    cust_path: str | None
    n_transactions: int
    quarantined: list[Path] = field(default_factory=list)
    sample_customers: int = DEFAULT_SAMPLE_CUSTOMERS
    holdout_customers: int = DEFAULT_HOLDOUT_CUSTOMERS
    seed: int = 0
    # the evaluation sample (pandas) once drawn: the retrain comparison reuses it
    _holdout: tuple[pd.DataFrame, pd.DataFrame | None] | None = None
    _sample: tuple[pd.DataFrame, pd.DataFrame | None] | None = None

    def train(
        self,
        config: TrainConfig,
        progress: Callable[[str], None] = print,
        previous: dict[str, Any] | Future | None = None,
    ) -> TrainResult:
        return train_spark(self, config, progress=progress, previous=previous)

    def fingerprint(self) -> str:
        """A digest of the transactions independent of row order (a sum of row hashes)."""
        from pyspark.sql import functions as F

        columns = [F.col(f"`{c}`") for c in self.transactions.columns]
        row = self.transactions.select(F.xxhash64(*columns).cast("decimal(38,0)").alias("h")).agg(
            F.sum("h").alias("s"), F.count(F.lit(1)).alias("n")
        )
        total = row.collect()[0]
        text = f"spark:{','.join(self.transactions.columns)}:{total['n']}:{total['s']}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def holdout_data(self) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """The customers the retrain comparison measures champion and challenger on: the
        separate evaluation sample, else the training sample (small data: every customer)."""
        if self._holdout is not None:
            return self._holdout
        if self._sample is None:
            raise RuntimeError("train first: the samples are drawn by train()")
        return self._sample


def _pandas_of(frame: Any, sort_by: list[str]) -> pd.DataFrame:
    out = frame.toPandas()
    out["customer_id"] = out["customer_id"].astype("str")
    return out.sort_values(sort_by, kind="stable").reset_index(drop=True)


def train_spark(
    inputs: SparkInputs,
    config: TrainConfig,
    progress: Callable[[str], None] = print,
    previous: dict[str, Any] | Future | None = None,
) -> TrainResult:
    """Train every family on Spark inputs (see the module docstring)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    if config.clv_model == "bgbb" or config.clv_period is not None:
        raise CVMError(
            "--model bgbb and --period (BG/BB for discrete-opportunity data) are trained by "
            "the pandas engine only: leave out --engine spark"
        )
    # no BG/BB candidate either: the final CLV fit runs on every customer's statistics,
    # which only the continuous-time models have
    config = dataclasses.replace(config, clv_detect_period=False)
    start = time.perf_counter()

    def step(message: str) -> None:
        progress(f"[{time.perf_counter() - start:6.1f}s] {message}")

    spark, tx = inputs.spark, inputs.transactions
    as_of = end_of_day(config.as_of)
    buckets = n_buckets(inputs.n_transactions)
    step(f"summarising {inputs.n_transactions:,} transactions per customer ({buckets} buckets)")
    # kept by Spark (memory, spilling to the executors' disks) for the passes below: no
    # work folder that a cluster's executors would have to share
    summary = summary_table(tx, as_of, buckets).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        h = config.churn_horizon_days
        # Sampling: a hash of the customer id and the random seed in [0, 1); the churn label
        # (no purchase in the last horizon) is the stratum.
        u = (F.pmod(F.xxhash64("customer_id", F.lit(inputs.seed)), F.lit(_HASH_RANGE))) / F.lit(
            float(_HASH_RANGE)
        )
        labelled = summary.select(
            "customer_id",
            (F.col("days_since_last") >= h).cast("int").alias("_label"),
            u.alias("_u"),
        )
        strata = {
            int(r["_label"]): int(r["count"]) for r in labelled.groupBy("_label").count().collect()
        }
        n_customers = sum(strata.values())
        if n_customers < 20:
            raise InvalidInputError(
                f"only {n_customers} customers with purchases: need at least 20"
            )
        step(
            f"summarised {inputs.n_transactions:,} transactions into {n_customers:,} customers "
            f"({strata.get(1, 0):,} without a purchase in the last {h} days)"
        )
        n_sample = min(inputs.sample_customers, n_customers)
        n_holdout = min(inputs.holdout_customers, n_customers - n_sample)
        chosen = _stratified(labelled, strata, n_sample, n_holdout)
        sample_ids = chosen.filter(F.col("_part") == 0).select("customer_id")
        (sample_tx, sample_cust), (eval_tx, eval_cust) = _collect(inputs, chosen)
        step(
            f"training sample: {sample_tx['customer_id'].nunique():,} customers, "
            f"{len(sample_tx):,} transactions (seed {inputs.seed})"
        )
        inputs._sample = (sample_tx, sample_cust)
        evaluation = None
        if n_holdout >= 20 and len(eval_tx):
            evaluation = (eval_tx, eval_cust)
            inputs._holdout = evaluation
            step(
                f"evaluation sample: {eval_tx['customer_id'].nunique():,} other customers, "
                f"{len(eval_tx):,} transactions"
            )
        result = train_all(
            sample_tx,
            sample_cust,
            config,
            progress=progress,
            previous=previous,
            evaluation=evaluation,
            population=n_customers,
            started=start,
        )
        clv = result.models["clv"]
        if isinstance(clv, CLVModel):
            step(
                f"CLV: refitting {clv.purchase_model} and Gamma-Gamma on all {n_customers:,} customers"
            )
            clv = _refit_clv(spark, summary, config, clv, result, sample_ids)
            _replace_clv(result, clv, n_customers)
            params = ", ".join(f"{k}={v:.3f}" for k, v in clv.purchase_model_.params_.items())
            step(f"CLV: final fit on every customer's sufficient statistics ({params})")
        result.metrics["n_customers"] = float(n_customers)
        result.metrics["n_transactions"] = float(inputs.n_transactions)
        result.metrics["sample_customers"] = float(sample_tx["customer_id"].nunique())
        result.metrics["holdout_sample_customers"] = float(
            evaluation[0]["customer_id"].nunique() if evaluation else 0
        )
        result.params.update(
            {
                "engine": "spark",
                "sample_customers": inputs.sample_customers,
                "holdout_customers": inputs.holdout_customers,
                "sample_seed": inputs.seed,
                "sample_stratified_on": f"no purchase in the last {h} days",
            }
        )
        step("trained")
        return result
    finally:
        summary.unpersist()


def _stratified(labelled: Any, strata: dict[int, int], n_sample: int, n_holdout: int) -> Any:
    """The customer ids of the training sample (``_part`` 0) and of the evaluation sample
    (``_part`` 1). Every stratum is sampled at the same rate (its share of the sample is its
    share of the customers): the customers whose hash falls below the sample's share of all
    customers, then those just above it for the evaluation sample."""
    from pyspark.sql import functions as F

    total = sum(strata.values())
    a = min(1.0, n_sample / total)
    b = min(1.0, a + n_holdout / total)
    part = F.when(F.col("_u") < a, 0).when(F.col("_u") < b, 1)
    chosen = labelled.select("customer_id", part.alias("_part"))
    return chosen.filter(F.col("_part").isNotNull())


Samples = tuple[tuple[pd.DataFrame, pd.DataFrame | None], tuple[pd.DataFrame, pd.DataFrame | None]]


def _collect(inputs: SparkInputs, chosen: Any) -> Samples:
    """The transactions (and customer rows) of both samples as pandas frames, in one pass."""
    tx = _pandas_of(inputs.transactions.join(chosen, "customer_id"), ["customer_id", "timestamp"])
    parts = tx.pop("_part").to_numpy()
    cust = None
    if inputs.customers is not None:
        cust = _pandas_of(inputs.customers.join(chosen, "customer_id"), ["customer_id"])
    out = []
    for number in (0, 1):
        # every customer in the training sample (a base smaller than the sample): no copy
        mine = tx if (parts == number).all() else tx[parts == number].reset_index(drop=True)
        rows = None
        if cust is not None:
            in_part = cust["_part"] == number
            rows = cust if in_part.all() else cust[in_part].reset_index(drop=True)
            rows = rows.drop(columns="_part")
        out.append((mine, rows))
    del tx, cust
    _release_memory()  # the Arrow buffers of the collection, before the fits start
    return out[0], out[1]


def _release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the system (glibc)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _refit_clv(
    spark: Any,
    summary: Any,
    config: TrainConfig,
    chosen: CLVModel,
    result: TrainResult,
    sample_ids: Any,
) -> CLVModel:
    """The chosen CLV model refitted on every customer's sufficient statistics."""
    from pyspark.sql import functions as F

    purchases = summary.groupBy("frequency", "recency", "T").count().toPandas()
    spend = (
        summary.filter((F.col("frequency") > 0) & (F.col("monetary_value") > 0))
        .groupBy("frequency", "monetary_value")
        .count()
        .toPandas()
    )
    if config.margin is not None:
        margin = (float(config.margin), "configured")
    else:
        known = summary.filter(F.col("total_profit").isNotNull() & ~F.isnan("total_profit"))
        row = known.agg(
            F.count(F.lit(1)).alias("n"),
            F.sum("total_profit").alias("profit"),
            F.sum("total_revenue").alias("revenue"),
        ).collect()[0]
        if row["n"]:
            margin = (float(row["profit"]) / max(float(row["revenue"]), 1e-12), "data")
        else:
            margin = (1.0, "none: CLV is revenue, no cost data")
    reference = (
        summary.join(sample_ids, "customer_id").toPandas().set_index("customer_id").sort_index()
    )
    start_from = result.holdout_models.get("clv")
    model = CLVModel(
        purchase_model=chosen.purchase_model,
        time_unit_days=chosen.time_unit_days,
        horizon_days=chosen.horizon_days,
        discount_rate=chosen.discount_rate,
        margin=chosen.margin,
    )
    model.fit_statistics(
        purchases,
        spend,
        margin,
        reference,
        start_from=start_from if isinstance(start_from, CLVModel) else chosen,
    )
    clv = model.predict(reference)["clv"].to_numpy(dtype=float)
    result.metrics["clv_mean"] = float(np.mean(clv))
    result.metrics["clv_sufficient_statistics_rows"] = float(len(purchases) + len(spend))
    return model


def _replace_clv(result: TrainResult, clv: CLVModel, n_customers: int) -> None:
    """Put the refitted CLV model in ``result``: its parameters, likelihoods, examples."""
    result.models["clv"] = clv
    result.metrics["clv_total"] = result.metrics["clv_mean"] * n_customers
    result.params.update({f"clv_{k}": round(v, 6) for k, v in clv.params().items()})
    result.params["margin_source"] = clv.margin_source_
    result.metrics[f"clv_log_likelihood_{clv.purchase_model}"] = clv.purchase_model_.log_likelihood_
    result.metrics["clv_log_likelihood_gg"] = clv.gamma_gamma_.log_likelihood_
    example = result.input_examples["clv"]
    result.output_examples["clv"] = clv.predict(example[CLV_INPUT_COLUMNS])


__all__ = ["DEFAULT_HOLDOUT_CUSTOMERS", "DEFAULT_SAMPLE_CUSTOMERS", "SparkInputs", "train_spark"]


def load_spark_inputs(
    spark: Any,
    transactions: str,
    customers: str | None,
    as_of: pd.Timestamp | None,
    *,
    bad_rows: str = "error",
    keep_duplicates: bool = False,
    progress: Callable[[str], None] = print,
    warn: Callable[[str], None] | None = None,
    command: str = "load",
    sample_customers: int = DEFAULT_SAMPLE_CUSTOMERS,
    holdout_customers: int = DEFAULT_HOLDOUT_CUSTOMERS,
    seed: int = 0,
) -> SparkInputs:
    """Read and validate the named files, folders or globs in Spark (the data contract of
    :mod:`training.spark.data`), with one line per input: read / kept / quarantined."""
    from pyspark.sql import functions as F

    from training.inputs import run_quarantine_dir, say_reports
    from training.spark import data as spark_data

    quarantine_dir = run_quarantine_dir(command)
    tx, tx_report = spark_data.load_transactions(
        spark,
        transactions,
        as_of=as_of,
        bad_rows=bad_rows,
        quarantine_dir=quarantine_dir,
        keep_duplicates=keep_duplicates,
    )
    # the loader returns its kept rows persisted: every later pass reads them from there
    reports = [tx_report]
    cust = None
    if customers:
        cust, cust_report = spark_data.load_customers(
            spark, customers, bad_rows=bad_rows, quarantine_dir=quarantine_dir
        )
        reports.append(cust_report)
    say_reports(reports, progress, warn)
    if as_of is None:
        last = tx.agg(F.max("timestamp").alias("t")).collect()[0]["t"]
        as_of = pd.Timestamp(last).normalize()
        progress(f"--as-of not given: using the last purchase date, {as_of.date()}")
    quarantined = [Path(r.quarantine_path) for r in reports if r.quarantine_path]
    return SparkInputs(
        spark,
        tx,
        cust,
        pd.Timestamp(as_of),
        str(transactions),
        str(customers) if customers else None,
        int(tx_report.n_kept),
        quarantined,
        sample_customers=sample_customers,
        holdout_customers=holdout_customers,
        seed=seed,
    )
