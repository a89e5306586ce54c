"""Service settings (environment variables, prefix ``CVM_``; one class, read once)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """What the service serves and how.

    - ``CVM_HOME``: data directory holding the default MLflow store (``mlflow.db``).
    - ``MLFLOW_TRACKING_URI``: a tracking server or database instead of the SQLite file.
    - ``CVM_MODEL_ALIAS``: the registry alias served (default ``champion``).
    - ``CVM_MAX_BATCH``: most customers in one scoring request.
    - ``CVM_PLAYBOOK``: path of a playbook JSON replacing the shipped one.
    """

    model_config = SettingsConfigDict(env_prefix="CVM_", extra="ignore")

    home: Path = Field(default=Path(".cvm"))
    mlflow_tracking_uri: str | None = Field(default=None, validation_alias="MLFLOW_TRACKING_URI")
    model_alias: str = "champion"
    max_batch: int = 10_000
    playbook: str | None = None
    load_on_startup: bool = True

    @property
    def tracking_uri(self) -> str:
        """``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<CVM_HOME>/mlflow.db``."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{Path(os.path.expanduser(self.home)).resolve() / 'mlflow.db'}"


REGISTERED_NAMES = {
    "segmentation": "cvm-segmentation",
    "churn": "cvm-churn",
    "clv": "cvm-clv",
}
