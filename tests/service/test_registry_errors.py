"""When the registry cannot be read, the service says what happened and never shows a secret.

The registry is attacked as an operator would meet it: a tracking server URI with credentials
and nothing listening, a server refusing the credentials, a locked or broken SQLite file, an
alias or pinned version that does not exist.
"""

from __future__ import annotations

import http.server
import logging
import socket
import sqlite3
import threading

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from service.model_store import ModelStore
from service.observability import JsonFormatter, TextFormatter

FAMILIES = ("segmentation", "churn", "clv")
ADVICE_UNREACHABLE = "check MLFLOW_TRACKING_URI and that the tracking server is running"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def no_retries(monkeypatch):
    # MLflow retries a refused connection for minutes by default
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


def _joined(message: str) -> str:
    return "; ".join(f"{family}: {message}" for family in FAMILIES)


def test_unreachable_registry_is_named_and_its_password_never_shown(no_retries, caplog):
    port = _closed_port()
    uri = f"http://cvm-user:hunter2-secret@127.0.0.1:{port}/"
    settings = Settings(
        mlflow_tracking_uri=uri, reload_interval=0, api_keys="score-k", admin_keys="admin-k"
    )
    app = create_app(settings)
    with caplog.at_level(logging.INFO), TestClient(app) as c:
        assert app.state.store.wait(60) is False
        ready = c.get("/health/ready")  # open route: no key
        models = c.get("/v1/models", headers={"X-API-Key": "score-k"})
        reload = c.post("/v1/admin/reload", headers={"X-API-Key": "admin-k"})
        moves = [
            c.post(f"/v1/admin/{move}", json={"family": "churn"}, headers={"X-API-Key": "admin-k"})
            for move in ("promote", "rollback")
        ]
        metrics = c.get("/metrics")
    expected = (
        f"the model registry at http://***@127.0.0.1:{port}/ is unreachable (connection "
        f"refused): {ADVICE_UNREACHABLE}"
    )
    assert ready.status_code == 503
    assert ready.json() == {
        "error": {"code": "not_ready", "message": _joined(expected), "details": []}
    }
    assert models.status_code == 200
    assert models.json()["errors"] == dict.fromkeys(FAMILIES, expected)
    assert models.json()["error"] == _joined(expected)
    assert reload.status_code == 200 and reload.json()["errors"] == dict.fromkeys(
        FAMILIES, expected
    )
    for move in moves:  # an alias move the registry cannot make now: 503, nothing moved
        assert move.status_code == 503 and move.headers["Retry-After"] == "5"
        assert move.json() == {
            "error": {
                "code": "registry_unavailable",
                "message": f"nothing moved: {expected}",
                "details": [],
            }
        }
    started = [r.getMessage() for r in caplog.records if r.name == "cvm.service"]
    assert f"loading models @champion from http://***@127.0.0.1:{port}/" in started
    failed = [r.getMessage() for r in caplog.records if r.name == "cvm.models"]
    assert f"loading churn failed, serving nothing: {expected}" in failed
    lines = [JsonFormatter().format(r) for r in caplog.records]
    lines += [TextFormatter().format(r) for r in caplog.records]
    texts = (ready.text, models.text, reload.text, metrics.text, *(m.text for m in moves))
    for text in (*texts, *lines):
        assert "hunter2" not in text and "cvm-user" not in text


def test_the_service_bounds_mlflow_retries_so_a_down_server_is_reported_in_seconds(
    monkeypatch,
):
    """MLflow retries a refused connection 7 times with doubling back-off (minutes of
    "loading"); the service retries CVM_REGISTRY_RETRIES times, unless MLflow's own variables
    are set."""
    for name in ("MAX_RETRIES", "BACKOFF_FACTOR", "TIMEOUT"):
        monkeypatch.setenv(f"MLFLOW_HTTP_REQUEST_{name}", "")  # restored after the test
        monkeypatch.delenv(f"MLFLOW_HTTP_REQUEST_{name}")
    uri = f"http://127.0.0.1:{_closed_port()}/"
    store = ModelStore(Settings(mlflow_tracking_uri=uri, reload_interval=0, registry_retries=1))
    import os

    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1"
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "1"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "15"
    store.refresh()  # one retry after 1 s per family; MLflow's default: minutes
    assert set(store.errors) == set(FAMILIES)
    assert "is unreachable (connection refused)" in store.errors["churn"]
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the user's setting wins
    ModelStore(Settings(mlflow_tracking_uri=uri, reload_interval=0, registry_retries=5))
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"


def test_cvm_commands_name_an_unreachable_registry_without_its_password(no_retries, capsys):
    from training import cli

    uri = f"http://cvm-user:hunter2-secret@127.0.0.1:{_closed_port()}/"
    import os

    previous = os.environ["MLFLOW_TRACKING_URI"]
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        codes = [cli.main(argv) for argv in (["promote"], ["rollback", "--family", "churn"])]
    finally:
        os.environ["MLFLOW_TRACKING_URI"] = previous
    err = capsys.readouterr().err
    assert codes == [cli.EXIT_UNAVAILABLE] * 2
    where = uri.replace("cvm-user:hunter2-secret", "***")
    line = f"error: the model registry at {where} is unreachable (connection refused): "
    assert err.count(line) == 2, err
    assert "hunter2" not in err and "Traceback" not in err


def test_log_lines_mask_credentials_in_messages_and_tracebacks():
    try:
        raise RuntimeError("API request to http://u:hunter2@mlflow.example/api failed")
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "mlflow", logging.ERROR, __file__, 1, "store %s", ("postgresql://u:pw@db/x",), None
        )
        record.exc_info = sys.exc_info()
    for formatter in (JsonFormatter(), TextFormatter()):
        line = formatter.format(record)
        assert "hunter2" not in line and "u:pw" not in line, line
        assert "postgresql://***@db/x" in line and "http://***@mlflow.example/api" in line


class _Refusing(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # every request: wrong credentials
        self.send_response(401)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"You are not authenticated. Please provide valid credentials.")

    def log_message(self, *args):
        pass


def test_refused_credentials_are_named(no_retries):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        store = ModelStore(
            Settings(mlflow_tracking_uri=f"http://me:wrong-pw@127.0.0.1:{port}", reload_interval=0)
        )
        store.refresh()
    finally:
        server.shutdown()
        server.server_close()
    assert store.errors == dict.fromkeys(
        FAMILIES,
        f"the model registry at http://***@127.0.0.1:{port} refused the service's credentials: "
        "check the user and password in MLFLOW_TRACKING_URI (or MLFLOW_TRACKING_USERNAME and "
        "MLFLOW_TRACKING_PASSWORD)",
    )


def test_a_file_that_is_not_a_database_is_named(tmp_path):
    path = tmp_path / "mlflow.db"
    path.write_bytes(b"not an sqlite file " * 100)
    store = ModelStore(Settings(mlflow_tracking_uri=f"sqlite:///{path}", reload_interval=0))
    store.refresh()
    assert store.models == {}
    assert store.errors == {
        "registry": f"the registry database at sqlite:///{path} cannot be read (file is not a "
        "database): check MLFLOW_TRACKING_URI (or CVM_HOME), that the file is an MLflow "
        "database and that the service may read it"
    }


def _locked_error(path):
    """The exception MLflow's SQLAlchemy store raises when another process holds the lock
    (mlflow/store/db/utils.py wraps SQLAlchemy's OperationalError; the driver's error is real,
    from a database locked here, without MLflow's wait for the lock)."""
    import sqlalchemy
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE registered_models (name TEXT)")
    holder.execute("BEGIN EXCLUSIVE")  # another process writing
    engine = sqlalchemy.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT name FROM registered_models"))
    except sqlalchemy.exc.OperationalError as exc:
        try:
            raise MlflowException(message=exc, error_code=TEMPORARILY_UNAVAILABLE) from exc
        except MlflowException as wrapped:
            return wrapped
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        engine.dispose()
    raise AssertionError("the database was not locked")


class _LockedClient:
    def __init__(self, error):
        self.error = error

    def get_model_version_by_alias(self, name, alias):
        raise self.error


def test_a_locked_database_is_named_not_blamed_on_training(tmp_path, monkeypatch):
    path = tmp_path / "mlflow.db"
    error = _locked_error(path)
    assert "database is locked" in str(error)
    uri = f"sqlite:///{path}"
    store = ModelStore(Settings(mlflow_tracking_uri=uri, reload_interval=0))
    monkeypatch.setattr(store, "_client", lambda: _LockedClient(error))
    store.refresh()
    assert store.errors == dict.fromkeys(
        FAMILIES,
        f"the registry database at {uri} is locked by another process (a training run or a "
        "long write): try again when it is free (POST /v1/admin/reload, or wait for the next "
        "reload)",
    )


def test_missing_alias_or_version_says_train_first_or_check_the_pin(trained_store):
    uri = trained_store["uri"]
    store = ModelStore(
        Settings(mlflow_tracking_uri=uri, reload_interval=0, model_alias="nosuch", churn_model="99")
    )
    store.refresh()
    assert store.models == {}
    assert store.errors == {
        "segmentation": f"no 'cvm-segmentation@nosuch' in the registry at {uri}: train first "
        "(cvm train --demo)",
        "churn": f"cvm-churn has no version 99 in the registry at {uri}: check CVM_CHURN_MODEL",
        "clv": f"no 'cvm-clv@nosuch' in the registry at {uri}: train first (cvm train --demo)",
    }


class _DatabaseDown(http.server.BaseHTTPRequestHandler):
    """A tracking server whose PostgreSQL is down: MLflow's server answers so."""

    def do_GET(self):
        body = (
            b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "(psycopg2.OperationalError) '
            b'connection to server at \\"10.0.0.5\\", port 5432 failed: Connection refused\\n'
            b'(Background on this error at: https://sqlalche.me/e/21/e3q8)"}'
        )
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("retries", ["0", "1"])
def test_a_tracking_server_without_its_database_is_not_called_unreachable(retries, monkeypatch):
    """Its 503 says the database refused the connection: the server itself answers, and that
    is what the message says, with or without MLflow's retries (both end in "too many 503
    error responses")."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", retries)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _DatabaseDown)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        store = ModelStore(
            Settings(mlflow_tracking_uri=f"http://127.0.0.1:{port}", reload_interval=0)
        )
        store.refresh()
    finally:
        server.shutdown()
        server.server_close()
    assert store.errors == dict.fromkeys(
        FAMILIES,
        f"the tracking server at http://127.0.0.1:{port} answers but cannot use its database "
        "(HTTP 503 on every try): check the database the server stores into (its --backend-store-uri) and "
        "the server's log",
    )
