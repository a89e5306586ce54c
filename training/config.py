"""Where training keeps its MLflow store: one data directory, overridable by environment.

- ``CVM_HOME``: the data directory (default ``./.cvm``). Holds ``mlflow.db`` (tracking and
  registry, SQLite), ``artifacts/`` (model files, plots) and ``demo/`` (generated demo data).
- ``MLFLOW_TRACKING_URI``: a tracking server or database to use instead of the SQLite file.
- ``CVM_EXPERIMENT``: the MLflow experiment name (default ``cvm``).
"""

from __future__ import annotations

import os
from pathlib import Path

from models.families import REGISTERED_NAMES

__all__ = ["REGISTERED_NAMES", "artifact_root", "cvm_home", "experiment_name", "tracking_uri"]


def cvm_home() -> Path:
    """The data directory (created when missing)."""
    home = Path(os.environ.get("CVM_HOME", ".cvm")).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else the SQLite file under ``CVM_HOME``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{cvm_home() / 'mlflow.db'}"


def artifact_root() -> str:
    """Artifact location for new experiments (a folder under ``CVM_HOME``)."""
    return (cvm_home() / "artifacts").as_uri()


def experiment_name() -> str:
    return os.environ.get("CVM_EXPERIMENT", "cvm")
