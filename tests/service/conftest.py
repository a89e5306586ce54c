"""A test client on the session's trained models (one app per test module; no registry polling)."""

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings


@pytest.fixture(scope="module")
def client(trained_store):
    app = create_app(Settings(mlflow_tracking_uri=trained_store["uri"], reload_interval=0))
    with TestClient(app) as c:
        assert app.state.store.wait(120), app.state.store.error
        yield c
