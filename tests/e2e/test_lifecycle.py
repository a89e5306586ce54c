"""MLOps loop against a real server: train → serve → retrain on shifted data → promote →
the running service answers with the new versions without a restart and without a failed
request; a broken new version keeps the old one serving; rollback returns the old version."""

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import ROOT, running_server, wait_for

pytestmark = pytest.mark.e2e
SUMMARY = {"frequency": 3, "recency": 200, "T": 300, "monetary_value": 50.0}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lifecycle")
    env = {
        **os.environ,
        "CVM_HOME": str(folder),
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db",
    }
    return folder, env


def cvm(env, *args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "training", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def server(home):
    folder, env = home
    trained = cvm(env, "train", "--demo", "--demo-customers", "1500", "--seed", "1")
    assert trained.returncode == 0, trained.stderr
    with running_server({**env, "CVM_RELOAD_INTERVAL": "1"}, folder / "server.log") as base:
        yield base


def served(base):
    return {
        m["family"]: m["version"]
        for m in httpx.get(f"{base}/v1/models", timeout=10).json()["models"]
    }


def test_promote_swaps_versions_live_without_failed_requests(server, home):
    _, env = home
    # the demo trains the uplift family too, from its campaigns
    assert served(server) == {"segmentation": "1", "churn": "1", "clv": "1", "uplift": "1"}
    retrained = cvm(
        env, "retrain", "--demo", "--demo-customers", "1500", "--seed", "9", "--as-of", "2026-03-31"
    )
    assert retrained.returncode == 0, retrained.stderr
    assert "registered cvm-churn version 2 as @challenger" in retrained.stdout
    assert "churn_roc_auc" in retrained.stdout  # the side-by-side comparison
    assert served(server)["churn"] == "1"  # a challenger is not served

    failures, versions, stop = [], set(), threading.Event()

    def hammer():
        payload = {"as_of": "2026-03-31", "customers": [{"customer_id": "x", "summary": SUMMARY}]}
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                response = client.post(f"{server}/v1/customers/score", json=payload)
                if response.status_code != 200:
                    failures.append(response.text)
                else:
                    versions.add(tuple(sorted(response.json()["model_versions"].items())))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        promoted = cvm(env, "promote", "--force", "--reason", "e2e test")
        assert promoted.returncode == 0, promoted.stderr
        wait_for(
            lambda: served(server) == {"segmentation": "2", "churn": "2", "clv": "2", "uplift": "2"}
        )
        time.sleep(1.0)  # keep requests flowing on the new versions
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert (("churn", "1"), ("clv", "1"), ("segmentation", "1")) in versions
    assert (("churn", "2"), ("clv", "2"), ("segmentation", "2")) in versions


def test_broken_new_version_keeps_the_old_one_serving(server, home):
    folder, env = home
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(
        tracking_uri=env["MLFLOW_TRACKING_URI"], registry_uri=env["MLFLOW_TRACKING_URI"]
    )
    current = client.get_model_version_by_alias("cvm-clv", "champion")
    served_version = str(current.version)
    source = Path(
        mlflow.artifacts.download_artifacts(
            client.get_model_version_download_uri("cvm-clv", current.version),
            tracking_uri=env["MLFLOW_TRACKING_URI"],
        )
    )
    broken = folder / "broken_clv"
    shutil.copytree(source, broken)
    for joblib_file in broken.rglob("clv.joblib"):
        joblib_file.write_bytes(b"not a model")
    version = client.create_model_version("cvm-clv", str(broken), run_id=current.run_id)
    client.set_registered_model_alias("cvm-clv", "champion", version.version)
    try:
        body = httpx.post(f"{server}/v1/admin/reload", timeout=120).json()
        assert "clv" in body["errors"]
        assert body["versions"]["clv"] == served_version
        models = httpx.get(f"{server}/v1/models", timeout=10).json()
        assert "clv" in models["errors"]
        payload = {"customers": [{"customer_id": "x", "summary": SUMMARY}]}
        response = httpx.post(f"{server}/v1/customers/score", json=payload, timeout=30)
        assert response.status_code == 200
        assert response.json()["model_versions"]["clv"] == served_version
    finally:
        client.set_registered_model_alias("cvm-clv", "champion", served_version)  # repair


def test_rollback_serves_the_previous_champion_again(server, home):
    _, env = home
    rolled = cvm(env, "rollback", "--family", "churn", "--reason", "e2e test")
    assert rolled.returncode == 0, rolled.stderr
    assert "from v2 to v1" in rolled.stdout
    wait_for(lambda: served(server)["churn"] == "1")
    # churn v1 (as of 2025-12-31) now serves beside v2 of the others (as of 2026-03-31)
    (warning,) = httpx.get(f"{server}/v1/models", timeout=10).json()["warnings"]
    assert (
        "different dates (churn 2025-12-31, clv 2026-03-31, segmentation 2026-03-31, uplift 2026-03-31)"
        in warning
    )


def test_admin_api_promotes_through_the_gate_and_rolls_back(server, home):
    """The same moves over HTTP (CVM_ADMIN_KEYS guards them; this server has no keys):
    served at once, recorded as made by the admin API."""
    _, env = home
    from mlflow import MlflowClient

    uri = env["MLFLOW_TRACKING_URI"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert str(client.get_model_version_by_alias("cvm-churn", "champion").version) == "1"
    client.set_registered_model_alias("cvm-churn", "challenger", "2")  # compared with v1

    refused = httpx.post(
        f"{server}/v1/admin/promote",
        json={"family": "churn", "tolerances": {"churn_roc_auc": -1.0}},
        timeout=120,
    )
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "gate_refused" and "churn_roc_auc" in error["message"]

    promoted = httpx.post(
        f"{server}/v1/admin/promote",
        json={"family": "churn", "force": True, "reason": "api test"},  # as the CLI test did
        timeout=120,
    )
    assert promoted.status_code == 200, promoted.text
    body = promoted.json()
    assert (body["from_version"], body["to_version"]) == ("1", "2")
    assert body["served"]["versions"]["churn"] == "2"  # served before the answer
    assert any("churn_roc_auc" in line for line in body["gate"])
    events = client.get_model_version("cvm-churn", "2").tags
    assert any(
        v.startswith("promoted by admin API") for k, v in events.items() if k.startswith("event.")
    )

    again = httpx.post(f"{server}/v1/admin/promote", json={"family": "churn"}, timeout=120)
    assert again.status_code == 409 and "no @challenger" in again.json()["error"]["message"]

    rolled = httpx.post(f"{server}/v1/admin/rollback", json={"family": "churn"}, timeout=120)
    assert rolled.status_code == 200, rolled.text
    assert (rolled.json()["from_version"], rolled.json()["to_version"]) == ("2", "1")
    assert rolled.json()["served"]["versions"]["churn"] == "1"
    assert served(server)["churn"] == "1"
