"""The SQLite registry file as it is now, checked before each reload of the model store.

MLflow keeps one SQLAlchemy engine per database URI for the life of the process (the
tracking and registry stores' ``_engine_map``) and one store object per URI (its store
registries' ``lru_cache``). Pooled connections stay on the file they opened: a database
replaced with ``mv`` (a new file under the same name) would never be seen, and a deleted one
would keep answering from the unlinked file. MLflow also makes each SQLite session wait up
to 20 s on a locked file (``PRAGMA busy_timeout = 20000``), so three families took a minute.

:class:`SqliteRegistry` checks the file before a reload: missing, locked or unreadable stops
the reload with its cause (:class:`RegistryFileError`); another file than last time gets
fresh engines; and the engines it installs wait at most ``timeout`` seconds on a lock. MLflow
is imported here, late, like in ``service/model_store.py`` (the only other service module
that imports it).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from models.registry_errors import unreadable_database

log = logging.getLogger("cvm.models")


class RegistryFileError(Exception):
    """The registry database file cannot be read now (missing, locked or not a database)."""


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI; None for other stores and in-memory ones."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///").split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)


class SqliteRegistry:
    """One SQLite registry file, as the model store's reloads see it."""

    def __init__(self, uri: str, path: Path, timeout: float):
        self.uri = uri
        self.path = path
        self.timeout = timeout
        self._identity: tuple[int, int] | None = None  # (device, inode) the engines read

    def check(self) -> None:
        """Raise :class:`RegistryFileError` when the file is missing, locked or unreadable;
        install fresh engines when it is another file than at the last check."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            if self._identity is not None:
                self._identity = None
                _drop_engines(self.uri)  # stop answering from the unlinked file
            raise RegistryFileError(
                f"the registry database {self.path} does not exist: train first "
                "(cvm train --demo), put the file back, or point MLFLOW_TRACKING_URI at your "
                "registry"
            ) from None
        identity = (stat.st_dev, stat.st_ino)
        if identity != self._identity:
            try:
                _install_engine(self.uri, self.timeout)
            except Exception as exc:  # MLflow's internals moved: load as MLflow would
                log.warning(
                    "cannot renew MLflow's database engines (%s: %s): a replaced registry "
                    "file is seen after a restart only, and a lock may hold a reload 20 s",
                    type(exc).__name__,
                    exc,
                )
            self._identity = identity
        self._probe()

    def _probe(self) -> None:
        """One read under the same wait bound as the engines (a held write lock blocks it)."""
        try:
            conn = sqlite3.connect(
                f"file:{quote(str(self.path))}?mode=rw", uri=True, timeout=self.timeout
            )
        except sqlite3.Error as exc:
            raise RegistryFileError(
                f"the registry database {self.path} cannot be opened: {exc}"
            ) from None
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise RegistryFileError(
                    f"the registry database {self.path} is locked by another process "
                    f"(waited {self.timeout:g} s); the next reload tries again"
                ) from None
            raise RegistryFileError(unreadable_database(self.uri, str(exc))) from None
        finally:
            conn.close()


def _store_classes() -> tuple[Any, ...]:
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as Registry
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as Tracking

    return Tracking, Registry


def _forget_stores() -> None:
    """Drop MLflow's cached store objects (they hold the engine they were built with)."""
    from mlflow.tracking._model_registry.registry import ModelRegistryStoreRegistry
    from mlflow.tracking._tracking_service.registry import TrackingStoreRegistry

    for registry in (TrackingStoreRegistry, ModelRegistryStoreRegistry):
        clear = getattr(registry._get_store_with_resolved_uri, "cache_clear", None)
        if clear is not None:
            clear()


def _swap_engine(uri: str, engine: Any | None) -> None:
    """Put ``engine`` (None: nothing) in MLflow's engine caches for ``uri``; dispose the old."""
    old = []
    for store in _store_classes():
        with store._engine_map_lock:
            old.append(store._engine_map.pop(uri, None))
            if engine is not None:
                store._engine_map[uri] = engine
    _forget_stores()
    for previous in {id(e): e for e in old if e is not None and e is not engine}.values():
        previous.dispose()


def _drop_engines(uri: str) -> None:
    try:
        _swap_engine(uri, None)
    except Exception as exc:  # MLflow's internals moved: nothing cached to drop
        log.warning("cannot drop MLflow's database engines: %s: %s", type(exc).__name__, exc)


def _install_engine(uri: str, timeout: float) -> None:
    """A new engine for ``uri`` (MLflow's own, with its SQLite functions) whose connections
    wait at most ``timeout`` on a lock, for both the tracking and the registry store."""
    from mlflow.store.db.utils import create_sqlalchemy_engine
    from sqlalchemy import event

    engine = create_sqlalchemy_engine(uri)
    pragma = f"PRAGMA busy_timeout = {max(1, int(timeout * 1000))};"

    @event.listens_for(engine, "connect")
    def _bounded_wait(dbapi_conn: Any, record: Any) -> None:
        dbapi_conn.execute(pragma)

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _keep_bound(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> tuple[str, Any]:
        # MLflow sets a 20 s wait at the start of every session: keep ours instead
        if statement.startswith("PRAGMA busy_timeout"):
            return pragma, parameters
        return statement, parameters

    _swap_engine(uri, engine)
