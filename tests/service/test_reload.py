"""Hot reload sees the registry as it is now: a database replaced with ``mv`` or deleted, a
locked one (bounded wait), and it swaps every changed family in one step."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from service.model_store import ModelStore
from tests.service.store_copies import copy_store, db_path, register_again

ALL_ONE = {"segmentation": "1", "churn": "1", "clv": "1"}


def served(store: ModelStore) -> dict[str, str]:
    return {f: m.version for f, m in store.snapshot().items()}


@pytest.fixture
def live(trained_store, tmp_path):
    """A copy of the trained store that a test may replace, delete or lock."""
    return copy_store(trained_store["uri"], tmp_path / "live")


def test_reload_sees_a_database_replaced_with_mv(live, tmp_path):
    store = ModelStore(Settings(mlflow_tracking_uri=live, reload_interval=0))
    assert store.refresh() == {f: "none -> 1" for f in ALL_ONE}
    replacement = copy_store(live, tmp_path / "new")
    assert register_again(replacement, "churn") == "2"  # only in the new file
    os.rename(db_path(replacement), db_path(live))  # what `mv new/mlflow.db live/` does

    assert store.refresh() == {"churn": "1 -> 2"}
    assert served(store) == {**ALL_ONE, "churn": "2"}
    assert store.errors == {}


def test_a_deleted_database_is_reported_and_the_versions_in_memory_keep_serving(live, tmp_path):
    path = db_path(live)
    app = create_app(Settings(mlflow_tracking_uri=live, reload_interval=0))
    with TestClient(app) as client:
        assert app.state.store.wait(120), app.state.store.error
        path.rename(tmp_path / "aside.db")

        reload = client.post("/v1/admin/reload")
        missing = (
            f"the registry database {path} does not exist: train first (cvm train --demo), "
            "put the file back, or point MLFLOW_TRACKING_URI at your registry"
        )
        assert reload.status_code == 200
        assert reload.json() == {
            "changed": {},
            "versions": ALL_ONE,
            "errors": {"registry": missing},
        }
        assert not path.exists()  # not recreated empty
        models = client.get("/v1/models").json()
        assert models["errors"] == {"registry": missing}
        assert models["error"] == f"registry: {missing}"
        ready = client.get("/health/ready")
        assert ready.status_code == 200  # documented: the versions in memory still answer
        assert ready.json() == {
            "status": "ready",
            "models": ALL_ONE,
            "errors": {"registry": missing},
        }

        (tmp_path / "aside.db").rename(path)  # back: the next reload clears the error
        assert client.post("/v1/admin/reload").json()["errors"] == {}
        assert client.get("/health/ready").json() == {"status": "ready", "models": ALL_ONE}


def test_a_locked_database_holds_the_reload_for_the_registry_timeout_only(live):
    store = ModelStore(Settings(mlflow_tracking_uri=live, reload_interval=0, registry_timeout=1))
    store.refresh()
    lock = sqlite3.connect(db_path(live), isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # another process writing, or stuck mid-write
    try:
        started = time.monotonic()
        assert store.refresh() == {}
        took = time.monotonic() - started
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert 0.9 < took < 3.0, took
    assert store.errors == {
        "registry": (
            f"the registry database {db_path(live)} is locked by another process (waited 1 s); "
            "the next reload tries again"
        )
    }
    assert served(store) == ALL_ONE
    assert store.refresh() == {} and store.errors == {}


def test_a_lock_taken_after_the_check_bounds_each_registry_query(live, monkeypatch):
    """MLflow's own sessions wait 20 s on a lock; the store's engines wait the timeout."""
    from service.sqlite_registry import SqliteRegistry

    store = ModelStore(Settings(mlflow_tracking_uri=live, reload_interval=0, registry_timeout=1))
    store.refresh()
    monkeypatch.setattr(SqliteRegistry, "_probe", lambda self: None)  # locked right after it
    lock = sqlite3.connect(db_path(live), isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        assert store.refresh() == {}
        took = time.monotonic() - started
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert took < 6.0, took  # one bounded wait per family (3 s), not 3 x 20 s
    assert set(store.errors) == {"segmentation", "churn", "clv"}
    assert served(store) == ALL_ONE


def test_admin_reloads_waiting_on_a_slow_reload_do_not_starve_other_requests(live, monkeypatch):
    """Reloads queued behind a slow one (a big model loading, a slow disk) must not take the
    worker threads that /health/ready and /v1/models answer on."""
    app = create_app(Settings(mlflow_tracking_uri=live, reload_interval=0))
    with TestClient(app) as client:
        store = app.state.store
        assert store.wait(120), store.error
        register_again(live, "clv")
        release, loading = threading.Event(), threading.Event()
        load = store._load

        def slow_load(*args):
            loading.set()
            release.wait(30)
            return load(*args)

        monkeypatch.setattr(store, "_load", slow_load)
        with ThreadPoolExecutor(60) as pool:
            first = pool.submit(client.post, "/v1/admin/reload")
            assert loading.wait(30)
            queued = [pool.submit(client.post, "/v1/admin/reload") for _ in range(50)]
            time.sleep(1.0)  # the queued reloads are waiting now
            timer = threading.Timer(8.0, release.set)  # ends the test if the probe hangs
            timer.start()
            started = time.monotonic()
            ready = client.get("/health/ready")
            took = time.monotonic() - started
            release.set()
            timer.cancel()
            answers = [first.result(60), *(f.result(60) for f in queued)]
        assert ready.status_code == 200 and took < 2.0, took
        assert {a.status_code for a in answers} == {200}
        assert answers[0].json()["changed"] == {"clv": "1 -> 2"}
        assert {a.json()["versions"]["clv"] for a in answers} == {"2"}


def test_a_reload_swaps_every_changed_family_in_one_step(live, monkeypatch):
    store = ModelStore(Settings(mlflow_tracking_uri=live, reload_interval=0))
    store.refresh()
    register_again(live, "segmentation")
    register_again(live, "churn")
    seen: list[dict[str, str]] = []  # what a request starting during each load would get
    load = store._load

    def watched_load(client, family, version, alias):
        seen.append(served(store))
        return load(client, family, version, alias)

    monkeypatch.setattr(store, "_load", watched_load)
    assert store.refresh() == {"segmentation": "1 -> 2", "churn": "1 -> 2"}
    assert seen == [ALL_ONE, ALL_ONE]  # churn loaded while segmentation v1 still served
    assert served(store) == {"segmentation": "2", "churn": "2", "clv": "1"}


def test_requests_racing_a_reload_never_get_mixed_versions(live):
    store = ModelStore(Settings(mlflow_tracking_uri=live, reload_interval=0))
    store.refresh()
    register_again(live, "segmentation")
    register_again(live, "churn")
    register_again(live, "clv")
    seen, stop = set(), threading.Event()

    def requests() -> None:
        while not stop.is_set():
            seen.add(tuple(sorted(served(store).items())))

    racer = threading.Thread(target=requests)
    racer.start()
    try:
        assert len(store.refresh()) == 3
    finally:
        stop.set()
        racer.join()
    assert seen <= {
        tuple(sorted(ALL_ONE.items())),
        (("churn", "2"), ("clv", "2"), ("segmentation", "2")),
    }, seen


def test_the_app_started_twice_keeps_one_loader_and_answers_every_reload(live):
    """Schemathesis runs the app's lifespan a second time on an app a TestClient started:
    two loader threads answered tickets out of order and an admin reload hung."""
    store = ModelStore(Settings(mlflow_tracking_uri=live, reload_interval=0))
    before = {t.ident for t in threading.enumerate() if t.name == "model-loader"}
    store.start_loading()
    store.start_loading()
    try:
        loaders = [t for t in threading.enumerate() if t.name == "model-loader"]
        assert len([t for t in loaders if t.ident not in before]) == 1
        assert store.wait(120), store.error
        for _ in range(20):
            ticket = store.request_reload()
            deadline = time.monotonic() + 30
            while (outcome := store.reload_outcome(ticket)) is None:
                assert time.monotonic() < deadline, "reload never answered"
                time.sleep(0.005)
            assert outcome == {}
    finally:
        store.stop()
    store._loop._thread.join(10)
    with pytest.raises(LookupError):  # stopped: the caller reloads itself
        store.reload_outcome((ticket[0] + 1, 0))
    assert store.request_reload() is None
    store.start_loading()  # a lifespan started again after a stop reloads again
    try:
        assert store.request_reload() is not None
    finally:
        store.stop()


def test_the_store_still_loads_when_mlflow_engine_caches_move(live, monkeypatch, caplog):
    """The engine renewal reaches into MLflow's internals: if a release moves them, models
    still load (as MLflow itself would), with a warning."""
    from service import sqlite_registry

    def moved():
        raise AttributeError("type object 'SqlAlchemyStore' has no attribute '_engine_map'")

    monkeypatch.setattr(sqlite_registry, "_store_classes", moved)
    store = ModelStore(Settings(mlflow_tracking_uri=live, reload_interval=0))
    assert store.refresh() == {f: "none -> 1" for f in ALL_ONE}
    assert store.errors == {}
    assert "cannot renew MLflow's database engines (AttributeError" in caplog.text
