"""The production topology against a real PostgreSQL: an MLflow tracking server on a throwaway
PostgreSQL cluster, with proxied artifacts, and trainers and a service that know only its URL
(``MLFLOW_TRACKING_URI=http://...``).

- Two ``cvm train`` runs at once: both recorded, versions distinct and consecutive, the lower
  version of each family @champion and the higher @challenger, as each trainer says.
- The registry down while the service runs (the tracking server stopped, then its database):
  every scoring request succeeds, ``/v1/models`` and ``/health/ready`` say what failed, and a
  promotion made once it is back is served within the reload interval.

One cluster and one server for the module (tests/e2e/postgres.py); skipped, with the reason in
one line, where the PostgreSQL server binaries or psycopg2 are missing.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e import postgres
from tests.e2e.server import ROOT, running_server, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WORKERS = 2  # cvm serve --workers
RELOAD_INTERVAL = 2  # seconds (CVM_RELOAD_INTERVAL)
# every family `cvm train --demo` registers (the uplift family from the demo's campaigns)
FAMILIES = {
    "segmentation": "cvm-segmentation",
    "churn": "cvm-churn",
    "clv": "cvm-clv",
    "uplift": "cvm-uplift",
}
SUMMARY = {"frequency": 3, "recency": 200, "T": 300, "monetary_value": 50.0}
REGISTERED = re.compile(r"^registered (cvm-\w+) version (\d+) as @(\w+)$", re.MULTILINE)
RUN = re.compile(r"^MLflow run (\w+) in ", re.MULTILINE)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """(cluster, server): PostgreSQL and an MLflow tracking server on it, for the module."""
    reason = postgres.skip_reason()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("mlflow-postgres")
    with postgres.mlflow_on_postgres(folder, workers=1) as (cluster, server):
        yield cluster, server


def environment(server: postgres.MlflowServer, home: Path, **more: str) -> dict[str, str]:
    """A trainer's or a service's environment: the server's URL is all it knows of the
    registry (``CVM_HOME`` holds the demo data only)."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.url, "CVM_HOME": str(home), **more}
    for name in ("CVM_EXPERIMENT", "CVM_API_KEYS", "CVM_ADMIN_KEYS", "MLFLOW_REGISTRY_URI"):
        env.pop(name, None)
    return env


def cvm(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "training", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def client_of(server: postgres.MlflowServer):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=server.url, registry_uri=server.url)


@pytest.fixture(scope="module")
def trained(registry, tmp_path_factory):
    """Two ``cvm train --demo`` at once against the empty server: their outputs."""
    _, server = registry
    trainers = []
    for seed in (1, 2):
        home = tmp_path_factory.mktemp(f"trainer{seed}")
        trainers.append(
            cvm(
                environment(server, home),
                "train",
                "--demo",
                "--demo-customers",
                "1500",
                "--seed",
                str(seed),
            )  # fmt: skip
        )
    outputs = [trainer.communicate(timeout=600) for trainer in trainers]
    for trainer, (stdout, stderr) in zip(trainers, outputs, strict=True):
        assert trainer.returncode == 0, f"{stdout[-2000:]}\n{stderr[-3000:]}"
    return [stdout for stdout, _ in outputs]


def test_two_trainers_at_once_record_both_runs_with_consistent_aliases(registry, trained):
    _, server = registry
    client = client_of(server)
    run_ids = [RUN.search(stdout).group(1) for stdout in trained]
    assert len(set(run_ids)) == 2

    experiment = client.get_experiment_by_name("cvm")
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # the server's proxy
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_id for r in runs) == sorted(run_ids)
    assert {r.info.status for r in runs} == {"FINISHED"}

    said = {}  # (name, version) -> the alias the trainer printed
    for stdout in trained:
        lines = REGISTERED.findall(stdout)
        assert sorted(name for name, _, _ in lines) == sorted(FAMILIES.values()), stdout
        said.update({(name, version): alias for name, version, alias in lines})

    for name in FAMILIES.values():
        versions = sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: v.version)
        # distinct, consecutive, one from each run
        assert [int(v.version) for v in versions] == [1, 2]
        assert sorted(v.run_id for v in versions) == sorted(run_ids)
        # the lower version is the champion, whichever trainer got it, and each says so
        assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
        assert str(client.get_model_version_by_alias(name, "challenger").version) == "2"
        assert said[(name, "1")] == "champion" and said[(name, "2")] == "challenger"
        for version in versions:
            events = [v for k, v in version.tags.items() if k.endswith(".registered")]
            assert events == [f"registered as @{said[(name, str(version.version))]} by training"]


def test_the_alias_rule_reads_versions_and_events_through_the_server(registry, trained):
    """The interleaving two trainers can meet, forced: both versions registered before either
    chooses. Through the REST API the rule sees the undecided lower version (and later its
    event), so v1 is the champion whichever chooses first."""
    from training import tracking

    _, server = registry
    client = client_of(server)
    name = "cvm-alias-rule-test"
    client.create_registered_model(name)
    model = client.get_model_version("cvm-churn", "1")  # a source the server accepts

    def register() -> str:
        version = client.create_model_version(
            name, model.source, run_id=model.run_id, model_id=model.source.rsplit("/", 1)[-1]
        )
        return str(version.version)

    first, second = register(), register()
    assert tracking.initial_alias(client, name, second) == "challenger"
    assert tracking.initial_alias(client, name, first) == "champion"
    client.set_registered_model_alias(name, "champion", first)
    client.set_model_version_tag(name, first, "event.x.registered", "registered as @champion")
    third = register()
    client.delete_registered_model_alias(name, "champion")  # v1 decided, no champion left
    client.set_model_version_tag(name, second, "event.y.registered", "registered as @challenger")
    assert tracking.initial_alias(client, name, third) == "champion"
    client.delete_registered_model(name)


# --- the registry down while the service runs --------------------------------------------------


def models_of(base: str) -> dict:
    return httpx.get(f"{base}/v1/models", timeout=10).json()


def served(base: str) -> dict[str, str]:
    return {m["family"]: m["version"] for m in models_of(base)["models"]}


def workers_serve(base: str, versions: dict[str, str]) -> bool:
    """Every worker (``/v1/models``' ``workers``) serves ``versions``."""
    workers = models_of(base)["workers"] or []
    return len(workers) == WORKERS and all(w["versions"] == versions for w in workers)


def all_ready(base: str) -> bool:
    """Every worker has loaded the same versions of every family."""
    workers = models_of(base)["workers"] or []
    return (
        len(workers) == WORKERS
        and all(w["ready"] and len(w["versions"]) == len(FAMILIES) for w in workers)
        and len({tuple(sorted(w["versions"].items())) for w in workers}) == 1
    )


def workers_report_errors(base: str) -> bool:
    """Every worker's latest reload failed (its status lists errors)."""
    workers = models_of(base)["workers"] or []
    return len(workers) == WORKERS and all(w["errors"] for w in workers)


def workers_without_errors(base: str) -> bool:
    workers = models_of(base)["workers"] or []
    return len(workers) == WORKERS and not any(w["errors"] for w in workers)


def worker_error(base: str) -> str:
    """The errors of every worker, one line each (they fail alike)."""
    return "\n".join(
        "; ".join(f"{f}: {t}" for f, t in w["errors"].items())
        for w in models_of(base)["workers"] or []
    )


class Load:
    """Scoring requests in a loop (one thread): every answer that is not a 200 is a failure."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        payload = {"customers": [{"customer_id": "x", "summary": SUMMARY}]}
        with httpx.Client(timeout=30) as http:
            while not self._stop.is_set():
                try:
                    response = http.post(f"{self.base}/v1/customers/score", json=payload)
                except httpx.TransportError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                if response.status_code == 200:
                    self.ok += 1
                else:
                    self.failures.append(f"{response.status_code} {response.text[:300]}")
                time.sleep(0.02)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def answered_more(self, than: int) -> bool:
        return self.ok > than


def registry_error(base: str) -> str | None:
    """The registry errors ``/v1/models`` reports, one line (None: no error)."""
    errors = models_of(base)["errors"]
    return "; ".join(f"{family}: {text}" for family, text in errors.items()) or None


def test_registry_outage_keeps_serving_and_a_later_promotion_is_picked_up(
    registry, trained, tmp_path
):
    cluster, server = registry
    env = environment(server, tmp_path, CVM_RELOAD_INTERVAL=str(RELOAD_INTERVAL))
    args = ("--workers", str(WORKERS)) if WORKERS > 1 else ()
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(running_server(env, tmp_path / "serve.log", args=args))
        # ready means one worker is: wait for every worker before the load starts (a worker
        # still loading answers 503, which the load would count as a failure)
        wait_for(lambda: workers_serve(base, dict.fromkeys(FAMILIES, "1")), timeout=120)
        load = stack.enter_context(Load(base))
        assert served(base) == dict.fromkeys(FAMILIES, "1")
        assert registry_error(base) is None

        # 1. the tracking server stops
        server.stop()
        wait_for(lambda: workers_report_errors(base), timeout=90)
        error = worker_error(base)
        assert f"the model registry at {server.url} is unreachable (connection refused)" in error
        ready = httpx.get(f"{base}/health/ready", timeout=10)
        # README: ready while every family has a version in memory; `errors` says what failed
        assert ready.status_code == 200, ready.text
        assert ready.json()["models"] == dict.fromkeys(FAMILIES, "1")
        assert ready.json()["errors"]
        at = load.ok
        wait_for(lambda: load.answered_more(at + 20), timeout=60)  # still scoring

        # 2. it is back, on a database that then goes down and comes back too
        server.start()
        wait_for(lambda: workers_without_errors(base), timeout=90)
        cluster.stop()
        wait_for(lambda: workers_report_errors(base), timeout=90)
        database_error = worker_error(base)
        assert f"the tracking server at {server.url} answers but cannot use its database" in (
            database_error
        )
        assert httpx.get(f"{base}/health/ready", timeout=10).status_code == 200
        at = load.ok
        wait_for(lambda: load.answered_more(at + 20), timeout=60)
        cluster.start()
        wait_for(lambda: workers_without_errors(base), timeout=90)
        assert served(base) == dict.fromkeys(FAMILIES, "1")

        # 3. a promotion made now (by another process) is served within the reload interval
        promoter = cvm(env, "promote", "--family", "churn", "--force", "--reason", "back")
        stdout, stderr = promoter.communicate(timeout=300)
        assert promoter.returncode == 0, f"{stdout}\n{stderr}"
        promoted_at = time.monotonic()
        after = {**dict.fromkeys(FAMILIES, "1"), "churn": "2"}
        wait_for(lambda: workers_serve(base, after))
        picked_up_after = time.monotonic() - promoted_at
        at = load.ok
        wait_for(lambda: load.answered_more(at + 5), timeout=60)
    assert load.failures == [], load.failures[:5]
    print(
        f"\nregistry error: {error}\ndatabase error: {database_error}\n"
        f"{load.ok} scoring requests, 0 failed; promotion served after {picked_up_after:.1f} s"
    )


def test_retrain_and_promote_under_load_reach_every_worker(registry, trained, tmp_path):
    """Serve with WORKERS workers, retrain, promote every family while requests flow: no
    request fails, and every worker ends on the new versions (an admin reload asked of one
    worker has them all reload)."""
    _, server = registry
    env = environment(server, tmp_path, CVM_RELOAD_INTERVAL="30")
    args = ("--workers", str(WORKERS)) if WORKERS > 1 else ()
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(running_server(env, tmp_path / "serve.log", args=args))
        wait_for(lambda: all_ready(base), timeout=120)  # ready means one worker is
        load = stack.enter_context(Load(base))  # once every worker is
        before = served(base)
        assert workers_serve(base, before)
        retrain = cvm(env, "retrain", "--demo", "--demo-customers", "1500", "--seed", "5")
        stdout, stderr = retrain.communicate(timeout=600)
        assert retrain.returncode == 0, f"{stdout[-2000:]}\n{stderr[-3000:]}"
        new = {f: _registered(stdout, n) for f, n in FAMILIES.items()}
        assert all(int(new[f]) > int(before[f]) for f in FAMILIES), (before, new)
        assert workers_serve(base, before)  # a challenger is not served
        promoter = cvm(env, "promote", "--force", "--reason", "under load")
        stdout, stderr = promoter.communicate(timeout=300)
        assert promoter.returncode == 0, f"{stdout}\n{stderr}"
        # ask one worker: every worker reloads before it answers
        answer = httpx.post(f"{base}/v1/admin/reload", timeout=120).json()
        assert "pending" not in answer, answer
        assert [w["versions"] for w in answer["workers"]] == [new] * WORKERS
        assert workers_serve(base, new)
        at = load.ok
        wait_for(lambda: load.answered_more(at + 20), timeout=60)
    assert load.failures == [], load.failures[:5]
    assert load.ok > 0


def _registered(stdout: str, name: str) -> str:
    versions = [v for n, v, _ in REGISTERED.findall(stdout) if n == name]
    assert len(versions) == 1, stdout[-2000:]
    return versions[0]
