"""Copies of the session's trained store, for tests that move aliases, register broken
versions or replace the database file (the session's store itself stays as trained)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from mlflow import MlflowClient

from models.families import REGISTERED_NAMES


def db_path(uri: str) -> Path:
    assert uri.startswith("sqlite:///"), uri
    return Path(uri.removeprefix("sqlite:///"))


def copy_store(uri: str, folder: Path) -> str:
    """A copy of the SQLite tracking/registry database in ``folder`` (artifacts stay where
    they are: the copy points at them)."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / "mlflow.db"
    source, target = sqlite3.connect(db_path(uri)), sqlite3.connect(copy)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return f"sqlite:///{copy}"


def registry(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def broken_copy(uri: str, family: str, folder: Path) -> Path:
    """The champion's model folder copied to ``folder`` with its pickled estimator replaced
    by bytes that do not unpickle."""
    import mlflow

    client = registry(uri)
    name = REGISTERED_NAMES[family]
    champion = client.get_model_version_by_alias(name, "champion")
    source = Path(
        mlflow.artifacts.download_artifacts(
            client.get_model_version_download_uri(name, champion.version), tracking_uri=uri
        )
    )
    shutil.copytree(source, folder)
    pickles = list(folder.rglob("*.joblib"))
    assert pickles, f"no pickled estimator under {folder}"
    for pickled in pickles:
        pickled.write_bytes(b"not a model")
    return folder


def register_again(
    uri: str,
    family: str,
    *,
    alias: str = "champion",
    source: Path | None = None,
    previous_champion: bool = True,
) -> str:
    """Register the family's champion again as a new version (its own artifacts, or
    ``source``), point ``alias`` at it and return its number. A new champion gets the
    ``previous_champion`` tag as ``cvm promote`` sets it."""
    client = registry(uri)
    name = REGISTERED_NAMES[family]
    champion = client.get_model_version_by_alias(name, "champion")
    tags = {
        k: v
        for k, v in champion.tags.items()
        if not k.startswith("event.") and k != "previous_champion"
    }
    if alias == "champion" and previous_champion:
        tags["previous_champion"] = str(champion.version)
    version = client.create_model_version(
        name, str(source) if source else champion.source, run_id=champion.run_id, tags=tags
    )
    client.set_registered_model_alias(name, alias, version.version)
    return str(version.version)
