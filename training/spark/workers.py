"""The functions Spark runs in its Python workers, shipped by value.

``mlflow.pyfunc.spark_udf`` loads a registered version in a Python worker and puts that
version's own copy of ``models/`` and ``training/`` (logged with it) first on the worker's
``sys.path``. Spark reuses workers, so a later feature or scoring function in the same worker
would import the model's copy, which may be an older release. These functions therefore
travel by value (nothing of this package is imported to unpickle them) and, before importing
anything of the product, put this release's folder first and drop modules loaded from a
model's copy (:func:`use_release`). The models already loaded keep working: they hold their
own modules.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

PACKAGES = ("models", "training")


def release_folder() -> str:
    """The folder holding this release's ``models`` and ``training`` packages (on the driver)."""
    from pathlib import Path

    import training

    return str(Path(training.__file__).resolve().parent.parent)


def use_release(folder: str) -> None:
    """Make ``import models``/``import training`` give the release in ``folder``."""
    import os

    if not sys.path or sys.path[0] != folder:
        sys.path.insert(0, folder)
    prefix = os.path.join(folder, "")
    for name in [n for n in sys.modules if n.split(".")[0] in PACKAGES]:
        module = sys.modules.get(name)
        location = getattr(module, "__file__", None)
        if location is not None and not os.path.abspath(location).startswith(prefix):
            del sys.modules[name]


def summary_bucket(folder: str, cutoff: Any, columns: list[str]) -> Callable[[Any], Any]:
    """One bucket's transactions → :func:`models.features.summarize` (``columns`` out)."""

    def compute(rows: Any) -> Any:
        use_release(folder)
        from models.features import summarize
        from training.spark.features import BUCKET, arrow_safe

        summary = summarize(rows.drop(columns=[BUCKET]), cutoff)
        out = summary.reset_index()[columns]
        return arrow_safe(out.astype({c: "float64" for c in columns[1:]}))

    return compute


def feature_bucket(folder: str, cutoff: Any, types: dict[str, str]) -> Callable[..., Any]:
    """One bucket's transactions (and customer rows) → summary and churn features, conformed
    to ``types`` (:func:`training.spark.features.feature_function`)."""

    def compute(rows: Any, attributes: Any = None) -> Any:
        use_release(folder)
        import pandas as pd

        from training.spark.features import conform, feature_function

        if rows.empty:
            return conform(pd.DataFrame(columns=list(types)), types)
        return conform(feature_function(cutoff)(rows, attributes), types)

    return compute


def finish_scores(
    folder: str, threshold: float, columns: list[str]
) -> Callable[..., Iterator[Any]]:
    """Batches of segment, CLV and churn columns (and the summary columns of the value in
    three parts) → the rest of the pandas scoring's columns (the value in three parts, value
    at risk, high value, recommended action, label notes), in ``columns`` order."""

    def compute(batches: Iterator[Any]) -> Iterator[Any]:
        use_release(folder)
        from models.customer_value import with_value
        from models.customer_view import with_churn
        from training.batch import with_actions
        from training.spark.features import arrow_safe

        for frame in batches:
            out = frame.drop(columns=["churn_probability", "risk_band"]).set_index("customer_id")
            out = with_churn(
                with_value(out, out),
                frame["churn_probability"].to_numpy(dtype=float),
                frame["risk_band"].to_numpy(),
                threshold,
            )
            yield arrow_safe(with_actions(out).reset_index()[columns])

    return compute


def ship_by_value() -> None:
    """Have Spark's cloudpickle send this module's functions by value."""
    from pyspark import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])


__all__ = [
    "feature_bucket",
    "finish_scores",
    "release_folder",
    "ship_by_value",
    "summary_bucket",
    "use_release",
]
