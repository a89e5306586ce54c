"""Churn labels without leakage, for non-contractual and contractual data.

- **Non-contractual** data has no churn date, so churn is defined on a time split
  (:func:`time_split`): features from purchases up to ``cutoff = as_of − horizon``, label 1
  when the customer makes no purchase in ``(cutoff, as_of]``.
- **Contractual** data carries the outcome in the customer table (:func:`contract_split`):
  ``churned`` / ``churn_date``; see that function for the rule.

Features and label never share a window: purchases after the cutoff cannot change X.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from models.churn.features import churn_features, churn_features_from_summary
from models.exceptions import InvalidInputError
from models.features import customer_features, end_of_day, summarize

FeatureSet = Literal["summary", "churn"]


def time_split(
    transactions: pd.DataFrame,
    as_of: object,
    *,
    horizon_days: int = 90,
    customers: pd.DataFrame | None = None,
    features: FeatureSet = "summary",
) -> tuple[pd.DataFrame, pd.Series]:
    """Features as of ``as_of − horizon_days`` and the churn label of the following horizon.

    Returns ``(X, y)`` for customers whose first purchase is on or before the cutoff; y = 1
    when they did not buy in ``(cutoff, as_of]``. ``features="summary"`` gives
    :func:`models.features.customer_features`, ``"churn"`` the richer
    :func:`models.churn.features.churn_features`. Purchases after the cutoff cannot change X.
    """
    cutoff = end_of_day(as_of) - pd.Timedelta(days=horizon_days)
    if features == "churn":
        X = churn_features(transactions, cutoff, customers)
    else:
        X = customer_features(summarize(transactions, cutoff), customers)
    stamps = pd.to_datetime(transactions["timestamp"])
    window = (stamps > cutoff) & (stamps <= end_of_day(as_of))
    buyers = transactions.loc[window, "customer_id"].astype(str).unique()
    y = pd.Series((~X.index.astype(str).isin(buyers)).astype(int), index=X.index, name="churned")
    return X, y


def contract_split(
    customers: pd.DataFrame,
    as_of: object,
    *,
    horizon_days: int = 90,
    transactions: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """Contractual labels from the customer table's ``churned`` / ``churn_date``.

    With ``cutoff = as_of − horizon_days`` (end of day):

    - customers who signed up after the cutoff (``signup_date``) are excluded;
    - customers whose ``churn_date`` is on or before the cutoff are excluded (already gone);
    - ``churned`` set but no ``churn_date`` cannot be placed in time: excluded;
    - y = 1 when ``churn_date`` falls in ``(cutoff, as_of]``, else 0 (still a customer at
      ``as_of``, or leaving only after it).

    X is :func:`models.churn.features.churn_features_from_summary` as of the cutoff: the
    purchase summary when ``transactions`` are given (customers without purchases get
    missing summary values) and every customer attribute, outcome columns excluded.
    """
    if "customer_id" not in customers.columns:
        raise InvalidInputError("customers lack the column 'customer_id'", field="customer_id")
    if "churned" not in customers.columns and "churn_date" not in customers.columns:
        raise InvalidInputError(
            "contractual labels need a 'churned' or 'churn_date' column", field="churn_date"
        )
    cutoff = end_of_day(as_of) - pd.Timedelta(days=horizon_days)
    end = end_of_day(as_of)
    table = customers.set_axis(customers["customer_id"].astype(str).rename("customer_id"))
    n = len(table)
    churn_date = (
        pd.to_datetime(table["churn_date"])
        if "churn_date" in table.columns
        else pd.Series(pd.NaT, index=table.index, dtype="datetime64[ns]")
    )
    flag = (
        table["churned"].map(_truthy)
        if "churned" in table.columns
        else pd.Series(False, index=table.index)
    )
    keep = np.ones(n, dtype=bool)
    if "signup_date" in table.columns:
        keep &= ~(pd.to_datetime(table["signup_date"]) > cutoff).to_numpy()
    keep &= ~(churn_date <= cutoff).to_numpy()
    keep &= ~(flag.to_numpy(dtype=bool) & churn_date.isna().to_numpy())
    label = ((churn_date > cutoff) & (churn_date <= end)).to_numpy()
    kept = table.loc[keep]
    if transactions is not None and len(transactions):
        summary = summarize(transactions, cutoff).reindex(kept.index)
    else:
        summary = pd.DataFrame(index=kept.index)
    X = churn_features_from_summary(summary, kept.reset_index(drop=True), cutoff)
    y = pd.Series(label[keep].astype(int), index=kept.index, name="churned")
    return X, y


def _truthy(value: object) -> bool:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return False
    if isinstance(value, str):
        return value.strip().lower() in {"1", "yes", "y", "true", "t", "churned"}
    return bool(value)
