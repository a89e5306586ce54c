"""The Spark session of a ``--engine spark`` job, and one-line errors when PySpark or Java is
missing."""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from models.exceptions import CVMError

DEFAULT_MASTER = "local[*]"
# Settings a job gets unless the user sets them (--spark-conf KEY=VALUE wins).
DEFAULT_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
    # Arrow batches of customers handed to the scoring functions: large batches amortise
    # the per-batch work of spark_udf (a third less time than 20,000 rows)
    "spark.sql.execution.arrow.maxRecordsPerBatch": "100000",
    # pandas writes Parquet timestamps in nanoseconds, which Spark refuses; read them as
    # numbers, turned into timestamps by training.spark.data
    "spark.sql.legacy.parquet.nanosAsLong": "true",
}
# Local mode runs the executors inside the driver's JVM: give it room for the shuffles.
LOCAL_CONF: dict[str, str] = {"spark.driver.memory": "6g", "spark.ui.enabled": "false"}


class EngineUnavailable(CVMError):
    """``--engine spark`` cannot run here (PySpark or Java is missing)."""


def parse_conf(items: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings (``--spark-conf``) as a dict; a malformed one is a clear error."""
    out: dict[str, str] = {}
    for item in items:
        key, sign, value = item.partition("=")
        if not sign or not key.strip():
            raise CVMError(f"--spark-conf {item!r}: use KEY=VALUE, e.g. spark.driver.memory=8g")
        out[key.strip()] = value.strip()
    return out


def java_executable() -> str | None:
    """The ``java`` Spark will start: ``$JAVA_HOME/bin/java``, else ``java`` on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        return str(candidate) if candidate.exists() else None
    return shutil.which("java")


def check_engine() -> None:
    """Raise :class:`EngineUnavailable` naming what to install when Spark cannot start."""
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise EngineUnavailable(
            "--engine spark needs PySpark: pip install 'cvm[spark]' (or pip install pyspark)"
        ) from exc
    if java_executable() is None:
        where = "JAVA_HOME/bin/java" if os.environ.get("JAVA_HOME") else "java on PATH"
        raise EngineUnavailable(
            f"--engine spark needs Java 17 or later and found no {where}: install a JDK or "
            "JRE 17+ (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )


def spark_session(
    master: str = DEFAULT_MASTER, conf: dict[str, str] | None = None, app_name: str = "cvm"
) -> Any:
    """A Spark session for ``master`` (``local[*]``, ``local[2]``, ``spark://...``,
    ``yarn``; under ``spark-submit`` the master it was given wins when ``master`` is None).

    Python workers run this interpreter (``PYSPARK_PYTHON``), a local master binds
    127.0.0.1 (``SPARK_LOCAL_IP``), and pandas 3's "not yet supported" warning from PySpark
    is silenced (the conversions used here are tested with it).
    """
    check_engine()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    local = master is not None and master.startswith("local")
    if local:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    quiet_pyspark_warnings()
    from pyspark.sql import SparkSession

    settings = {**DEFAULT_CONF, **(LOCAL_CONF if local else {}), **(conf or {})}
    if "spark.driver.extraJavaOptions" not in settings:  # Spark's own log: errors only
        quiet = Path(__file__).with_name("log4j2.properties")
        settings["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile={quiet.as_uri()}"
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: say so in one line
        raise EngineUnavailable(f"Spark did not start ({master}): {_first_line(exc)}") from exc
    session.sparkContext.setLogLevel("ERROR")
    return session


def quiet_pyspark_warnings() -> None:
    """PySpark warns on every conversion that pandas >= 3 is "not yet fully supported"."""
    warnings.filterwarnings("ignore", message=".*PySpark does not yet fully support pandas.*")
    warnings.filterwarnings("ignore", category=FutureWarning, module="pyspark")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


__all__ = [
    "DEFAULT_MASTER",
    "EngineUnavailable",
    "check_engine",
    "java_executable",
    "parse_conf",
    "spark_session",
]
