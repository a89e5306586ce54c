"""A throwaway PostgreSQL cluster and an MLflow tracking server on it, for tests.

:class:`PostgresCluster` runs ``initdb`` and ``pg_ctl`` from the PostgreSQL server binaries
(Debian keeps them off ``PATH``, in ``/usr/lib/postgresql/<major>/bin``), in a temporary
directory, on a free port of 127.0.0.1 with its socket in that directory. PostgreSQL refuses
to run as root, so as root they run as the ``postgres`` user (``runuser``), which owns the
directory; as anyone else, as the current user. :class:`MlflowServer` runs ``mlflow server`` on
that cluster with proxied artifacts (``mlflow-artifacts:`` URIs): a trainer or a service needs
only ``MLFLOW_TRACKING_URI=http://127.0.0.1:<port>``. Both stop and start again on the same
port and data (the outage tests).

:func:`skip_reason` says in one line why this cannot run here (no server binaries, no
psycopg2, no unprivileged user), for ``pytest.skip``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.e2e.server import free_port

PG_MAJOR = "15"  # the version the issue names; any other installed one is taken when it is absent
DATABASE = "mlflow"
USER = "cvm"  # the cluster's superuser (trust authentication on 127.0.0.1 and the socket)
TOOLS = ("initdb", "pg_ctl")


def _has_tools(folder: Path) -> bool:
    return all(os.access(folder / tool, os.X_OK) for tool in TOOLS)


def postgres_bindir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: ``CVM_PG_BINDIR``, Debian's
    ``/usr/lib/postgresql/15/bin`` (else the newest other major there), ``pg_config --bindir``,
    then ``PATH``; None when none has both."""
    candidates: list[Path] = []
    if os.environ.get("CVM_PG_BINDIR"):
        candidates.append(Path(os.environ["CVM_PG_BINDIR"]))
    candidates.append(Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin"))
    majors = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [Path(p) for p in sorted(majors, key=lambda p: _major(p), reverse=True)]
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10
            )
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    return next((c for c in candidates if _has_tools(c)), None)


def _major(bindir: str) -> int:
    name = Path(bindir).parent.name
    return int(name) if name.isdigit() else 0


def _run_as() -> list[str]:
    """The command prefix that runs a PostgreSQL tool unprivileged."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def skip_reason() -> str | None:
    """Why a PostgreSQL-backed MLflow server cannot run here, in one line; None when it can."""
    if _bindir_or_none() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin, "
            "pg_config --bindir or PATH (apt-get install postgresql-15, or set CVM_PG_BINDIR)"
        )
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed: pip install -e '.[postgres]' (make install does)"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root without runuser: PostgreSQL cannot run as root"
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run PostgreSQL as"
    return None


def _bindir_or_none() -> Path | None:
    try:
        return postgres_bindir()
    except OSError:
        return None


class PostgresCluster:
    """One cluster in a directory of its own (made with :func:`tempfile.mkdtemp`, so the
    ``postgres`` user can reach it: pytest's temporary folders are root's alone)."""

    def __init__(self, bindir: Path | None = None) -> None:
        found = bindir or postgres_bindir()
        if found is None:
            raise RuntimeError(skip_reason() or "no PostgreSQL binaries")
        self.bindir = found
        self.folder = Path(tempfile.mkdtemp(prefix="cvm-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.folder, user="postgres", group="postgres")
        self.folder.chmod(0o700)
        self._initialized = False

    @property
    def url(self) -> str:
        """The SQLAlchemy URL MLflow takes (``--backend-store-uri``)."""
        return f"postgresql+psycopg2://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _tool(self, tool: str, *args: str, timeout: float = 120) -> None:
        done = subprocess.run(
            [*_run_as(), str(self.bindir / tool), *args],
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{tool} {' '.join(args)} exited {done.returncode}:\n"
                f"{done.stdout[-2000:]}{done.stderr[-2000:]}\n{log}"
            )

    def start(self) -> None:
        """Create the cluster and its database (the first time), then start it."""
        if not self._initialized:
            self._tool(
                "initdb",
                "-D", str(self.data),
                "-U", USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )  # fmt: skip
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._tool(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start"
        )
        if not self._initialized:
            self._create_database()
            self._initialized = True

    def _create_database(self) -> None:
        import psycopg2

        connection = psycopg2.connect(
            host="127.0.0.1", port=self.port, user=USER, dbname="postgres"
        )
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {DATABASE}")
        finally:
            connection.close()

    def stop(self) -> None:
        """Stop at once (``pg_ctl stop -m fast``: open connections are cut)."""
        self._tool("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        done = subprocess.run(
            [*_run_as(), str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"],
            cwd=self.folder,
            capture_output=True,
            timeout=30,
        )
        return done.returncode == 0

    def remove(self) -> None:
        """Stop (when running) and delete the cluster's directory."""
        with contextlib.suppress(RuntimeError, OSError, subprocess.SubprocessError):
            if self.data.exists() and self.running():
                self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class MlflowServer:
    """``mlflow server`` on a database, with proxied artifacts under ``folder/artifacts``, on
    a port of 127.0.0.1 that stays the same across :meth:`stop` and :meth:`start`."""

    def __init__(self, backend_uri: str, folder: Path, workers: int = 2) -> None:
        self.backend_uri = backend_uri
        self.folder = folder
        self.artifacts = folder / "artifacts"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.log = folder / "mlflow-server.log"
        self.port = free_port()
        self.workers = workers
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """What trainers and services set as ``MLFLOW_TRACKING_URI``."""
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        bindir = str(Path(sys.executable).parent)
        env = {
            **os.environ,
            # the server's job runner (huey workers) costs gigabytes; nothing here uses it
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "PATH": os.pathsep.join([bindir, os.environ.get("PATH", "")]),
        }
        env.pop("MLFLOW_TRACKING_URI", None)
        return env

    def start(self, timeout: float = 180.0) -> None:
        """Start and wait until ``/health`` answers; RuntimeError with the log otherwise."""
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "mlflow", "server",
                    "--backend-store-uri", self.backend_uri,
                    "--artifacts-destination", str(self.artifacts),
                    "--serve-artifacts",
                    "--host", "127.0.0.1",
                    "--port", str(self.port),
                    "--workers", str(self.workers),
                ],
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its uvicorn workers are stopped with it (stop)
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(
            f"mlflow server not up in {timeout:.0f} s:\n{self.log.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        """Stop the server and its workers (SIGTERM to its process group, SIGKILL after 5 s:
        its workers may hang in shutdown while the database is gone)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the workers too, when the parent went first
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        # the port is free again once nothing answers on it
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/health", timeout=1)
            except httpx.TransportError:
                return
            time.sleep(0.2)


@contextlib.contextmanager
def mlflow_on_postgres(
    folder: Path, workers: int = 2
) -> Iterator[tuple[PostgresCluster, MlflowServer]]:
    """A running PostgreSQL cluster and an MLflow server on it; both stopped and the cluster
    deleted on exit. ``folder``: the server's artifacts and log (the cluster has its own)."""
    cluster = PostgresCluster()
    server: MlflowServer | None = None
    try:
        cluster.start()
        server = MlflowServer(cluster.url, folder, workers=workers)
        server.start()
        yield cluster, server
    finally:
        if server is not None:
            server.stop()
        cluster.remove()
