"""Shared fixtures: reference data, an isolated MLflow store, small trained models."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest

DATA = Path(__file__).parent / "data" / "clv"

# Nothing a test does may write to the user's home or the project's own store.
_ISOLATED = tempfile.mkdtemp(prefix="cvm-tests-")
os.environ["CVM_HOME"] = _ISOLATED
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_ISOLATED}/mlflow.db"
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# The churn booster's OpenMP threads: with two test workers on two cores, more than one each
# oversubscribes the machine and a fit takes minutes instead of seconds (as `make test` sets).
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def cdnow_transactions() -> pd.DataFrame:
    """The raw CDNOW sample purchases as customer_id, timestamp, amount."""
    raw = pd.read_csv(
        DATA / "cdnow_sample_transactions.txt",
        sep=r"\s+",
        header=None,
        names=["master_id", "customer_id", "date", "cds", "amount"],
        dtype={"customer_id": str, "date": str},
    )
    return pd.DataFrame(
        {
            "customer_id": raw["customer_id"].astype(int).astype(str),
            "timestamp": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "amount": raw["amount"].astype(float),
        }
    )


@pytest.fixture(scope="session")
def cdnow_summary() -> pd.DataFrame:
    return pd.read_csv(DATA / "cdnow_sample_summary.csv", dtype={"ID": str}).set_index("ID")


@pytest.fixture(scope="session")
def demo_data():
    """A small synthetic data set (transactions, customers, truth)."""
    from training import synthetic

    return synthetic.generate(1500, seed=7, as_of="2025-12-31")


@pytest.fixture(scope="session")
def trained_store(demo_data, tmp_path_factory):
    """Demo models trained and registered (@champion) in a temporary MLflow store.

    Returns the tracking URI; the environment already points MLflow at it.
    """
    from training import tracking
    from training.data import fingerprint
    from training.pipeline import TrainConfig, train_all

    transactions, customers, _ = demo_data
    result = train_all(
        transactions,
        customers,
        TrainConfig(as_of=pd.Timestamp("2025-12-31")),
        progress=lambda m: None,
    )
    registered = tracking.log_and_register(
        result, data_fingerprint=fingerprint(transactions), progress=lambda m: None
    )
    return {
        "uri": os.environ["MLFLOW_TRACKING_URI"],
        "home": os.environ["CVM_HOME"],
        "registered": registered,
        "result": result,
    }


def purchases(transactions: pd.DataFrame, customer_id: str, *extra: str) -> list[dict]:
    """One demo customer's purchases as API ``transactions`` items (timestamp, amount, and
    the ``extra`` columns: ``cost`` as a number, ``channel`` as text)."""
    rows = transactions[transactions["customer_id"] == customer_id]
    items = []
    for record in rows.to_dict("records"):
        item = {"timestamp": record["timestamp"].isoformat(), "amount": float(record["amount"])}
        for column in extra:
            value = record[column]
            item[column] = float(value) if column == "cost" else value
        items.append(item)
    return items


# One valid cvm-clv input row (the MLflow-compatible route's payload tests).
CLV_ROW = {
    "frequency": 2,
    "recency": 30,
    "T": 90,
    "monetary_value": 20.0,
    "margin_rate": 0.3,
    "tenure_days": 90,
    "total_revenue": 60.0,
}


@pytest.fixture(scope="session")
def uplift_data():
    """A small synthetic data set with randomised campaigns: (transactions, customers,
    campaigns, truth)."""
    from training import synthetic

    transactions, customers, truth = synthetic.generate(2500, seed=11, as_of="2025-12-31")
    transactions, campaigns, truth = synthetic.generate_campaigns(
        transactions, customers, truth, seed=11
    )
    return transactions, customers, campaigns, truth


@pytest.fixture(scope="session")
def uplift_store(uplift_data, tmp_path_factory):
    """The four families (uplift from the campaigns) trained and registered (@champion) in a
    store of their own (the session's ``trained_store`` never sees an uplift model).

    Returns ``{"uri", "registered", "result"}``; MLflow's process-wide URI is put back on the
    session's store afterwards.
    """
    from training import tracking
    from training.data import fingerprint
    from training.pipeline import TrainConfig, train_all

    transactions, customers, campaigns, _ = uplift_data
    folder = tmp_path_factory.mktemp("uplift-store")
    uri = f"sqlite:///{folder}/mlflow.db"
    result = train_all(
        transactions,
        customers,
        TrainConfig(as_of=pd.Timestamp("2025-12-31")),
        progress=lambda m: None,
        campaigns=campaigns,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("CVM_HOME", str(folder))
        registered = tracking.log_and_register(
            result, data_fingerprint=fingerprint(transactions), progress=lambda m: None
        )
    tracking.setup()  # MLflow's process-wide URI back to the session's store
    return {"uri": uri, "home": str(folder), "registered": registered, "result": result}
