"""``cvm features``: the input rows of ``/v1/models/{name}/invocations`` built from a
transactions file, so that a caller can score through the MLflow-compatible route (or
``mlflow models serve``) without knowing how the features are engineered.

The features come from the functions training and the service use
(:func:`models.features.summarize`, :func:`models.churn.features.churn_features`): one row
per customer with a purchase on or before ``as_of``, in customer id order. The columns are
the family champion's signature, in its order and with its types (integers as doubles, as
registered), when the registry has a champion; otherwise every column the family's model can
take (``--all-columns`` asks for that anyway).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from models.churn.features import churn_features, churn_features_from_summary
from models.clv import CLV_INPUT_COLUMNS
from models.clv.periodic import PERIOD_COLUMNS, input_columns, with_period_columns
from models.customer_view import CLV_SEGMENT_INPUTS, segmentation_input
from models.exceptions import CVMError, InvalidInputError
from models.features import SUMMARY_COLUMNS, summarize

FAMILIES = ("churn", "clv", "segmentation")
# the segmentation model's inputs: the summary and the CLV model's P(alive) and forecast
SEGMENTATION_COLUMNS = [*SUMMARY_COLUMNS, *CLV_SEGMENT_INPUTS]
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".ndjson": "ndjson"}
SUFFIXES[".jsonl"] = "ndjson"


def engineered(
    family: str,
    transactions: pd.DataFrame,
    customers: pd.DataFrame | None,
    as_of: pd.Timestamp,
    clv_model: Any = None,
) -> pd.DataFrame:
    """Every input column the family's model can take, one row per customer (index
    ``customer_id``). ``clv_model``: the CLV champion, giving segmentation its P(alive); a
    BG/BB one adds its period columns to the CLV rows."""
    if family == "churn":
        return churn_features(transactions, as_of, customers)
    summary = summarize(transactions, as_of)
    # a BG/BB CLV champion reads each customer's periods too (models/clv/periodic.py)
    with_periods = with_period_columns(clv_model, summary, transactions, as_of)
    if family == "clv":
        return with_periods[input_columns(clv_model, CLV_INPUT_COLUMNS)]
    if family == "segmentation":
        if clv_model is None:
            raise CVMError(
                "the segmentation model's inputs include probability_alive and "
                "expected_purchases, which the CLV champion computes: train first (cvm train)"
            )
        return segmentation_input(summary, clv_model.predict(with_periods))[SEGMENTATION_COLUMNS]
    raise InvalidInputError(f"unknown family {family!r}; use one of {', '.join(FAMILIES)}")


def _with_customer_columns(
    frame: pd.DataFrame, customers: pd.DataFrame, as_of: pd.Timestamp, signature: list[Any]
) -> pd.DataFrame:
    """The segmentation rows with the customer-table columns its signature names (the value
    index's indicators), read as the customer view reads them."""
    wanted = [c["name"] for c in signature if c["name"] not in frame.columns]
    if not wanted:
        return frame
    attributes = churn_features_from_summary(frame, customers, as_of)
    found = [c for c in wanted if c in attributes.columns]
    return frame.join(attributes[found].set_axis(frame.index)) if found else frame


def _cast(values: pd.Series, kind: str) -> pd.Series:
    """A column as the signature's type reads it: numbers as numbers, text as text."""
    if kind in ("double", "float"):
        return pd.to_numeric(values, errors="coerce").astype("float64")
    if kind in ("long", "integer"):
        return pd.to_numeric(values, errors="coerce").astype("Int64")
    if kind == "boolean":
        return values.astype("boolean")
    if kind == "string":
        return (
            values.astype(object)
            .where(values.notna(), None)
            .map(lambda v: v if v is None else str(v))
        )
    return values


def fit_signature(
    frame: pd.DataFrame, signature: list[dict[str, Any]]
) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` with the signature's columns, in its order and types; the columns it lacks
    (e.g. an attribute of a customer table not given) are missing values, returned by name."""
    columns, missing = {}, []
    for column in signature:
        name = column["name"]
        if name in frame.columns:
            columns[name] = _cast(frame[name], str(column.get("type", "")))
        else:
            missing.append(name)
            columns[name] = pd.Series(np.nan, index=frame.index, dtype="float64")
    return pd.DataFrame(columns, index=frame.index), missing


def output_format(path: Path) -> str:
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InvalidInputError(
            f"{path}: use a .csv, .parquet or .ndjson file name", field=str(path)
        )
    return kind


def write(frame: pd.DataFrame, path: Path) -> None:
    """CSV, Parquet or NDJSON (one JSON record per line, missing values as null) by the
    file's extension."""
    kind = output_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "csv":
        frame.to_csv(path, index=False)
    elif kind == "parquet":
        frame.to_parquet(path, index=False)
    else:
        records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
        with path.open("wb") as out:
            for record in records:
                out.write(orjson.dumps(record, option=option))


def invocation_features(
    family: str,
    transactions: pd.DataFrame,
    customers: pd.DataFrame | None,
    as_of: pd.Timestamp,
    *,
    all_columns: bool = False,
    with_ids: bool = False,
    say: Callable[[str], None] = print,
) -> pd.DataFrame:
    """The family's invocation rows for these transactions (see the module docstring)."""
    from training import tracking  # mlflow: only for this step

    signature = None if all_columns else tracking.champion_signature(family)
    clv_model = None
    periods = signature is not None and any(c.get("name") in PERIOD_COLUMNS for c in signature[1])
    if family == "segmentation" or (family == "clv" and periods):  # a BG/BB champion
        clv_model = tracking.load_champions().get("clv")
    frame = engineered(family, transactions, customers, as_of, clv_model)
    if signature is None:
        if not all_columns:
            say(f"no {family} champion with a signature in the registry: writing every column")
    else:
        version, columns = signature
        if family == "segmentation" and customers is not None:
            frame = _with_customer_columns(frame, customers, as_of, columns)
        frame, missing = fit_signature(frame, columns)
        say(f"columns of the {family} champion (version {version}): {len(columns)}")
        if missing:
            say(
                f"not in the data, written as missing values: {', '.join(missing)} "
                "(give the customer table with --customers)"
            )
    if with_ids:
        frame = frame.reset_index()
    return frame


__all__ = [
    "FAMILIES",
    "engineered",
    "fit_signature",
    "invocation_features",
    "output_format",
    "write",
]
