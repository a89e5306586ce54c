"""One local[2] Spark session per test process; every Spark test skips with one line where
PySpark or Java is missing."""

from __future__ import annotations

import logging

import pytest

from training.spark.session import EngineUnavailable, check_engine


@pytest.fixture(scope="session")
def spark():
    try:
        check_engine()
    except EngineUnavailable as exc:
        pytest.skip(f"Spark tests skipped: {exc}")
    from training.spark.session import spark_session

    # py4j says INFO when its connection closes at exit, after pytest closed its streams
    logging.getLogger("py4j").setLevel(logging.WARNING)
    session = spark_session(
        "local[2]",
        {
            "spark.driver.memory": "1g",
            "spark.sql.shuffle.partitions": "4",
            "spark.default.parallelism": "2",
        },
        app_name="cvm-tests",
    )
    yield session
    session.stop()
