"""The serving process does not load the training stack: an admin alias move imports the
registry moves and the gate, never the pipeline, tracking, the trainers or matplotlib."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
from fastapi.testclient import TestClient
from service.app import create_app
from service.config import Settings

app = create_app(Settings(mlflow_tracking_uri=sys.argv[1], reload_interval=0))
with TestClient(app) as client:
    app.state.store.wait(60)
    answer = client.post("/v1/admin/rollback", json={"family": "churn", "reason": "test"})
    promote = client.post("/v1/admin/promote", json={"family": "churn"})
print(json.dumps({
    "rollback": [answer.status_code, answer.json()],
    "promote": [promote.status_code, promote.json()],
    "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("training", "matplotlib")),
}))
"""

TRAINING_STACK = (
    "matplotlib",
    "training.pipeline",
    "training.tracking",
    "training.pyfunc",
    "training.compare",
    "training.evaluate",
    "training.retrain",
    "training.train_churn",
    "training.train_clv",
    "training.train_segments",
    "training.cli",
)


def test_admin_routes_do_not_import_the_training_stack(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CVM_LOG_LEVEL": "WARNING"}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, f"sqlite:///{tmp_path / 'empty.db'}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=240,
        check=True,
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    # the routes ran through the registry moves (nothing registered: a 409 naming the model)
    for route in ("rollback", "promote"):
        status, body = seen[route]
        assert status == 409, seen[route]
        assert body["error"]["code"] == "registry_conflict"
        assert "cvm-churn" in body["error"]["message"]
    assert "training.registry" in seen["modules"]
    loaded = [m for m in seen["modules"] if m.startswith(TRAINING_STACK)]
    assert loaded == [], loaded
