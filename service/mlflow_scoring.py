"""Scoring for ``POST /v1/models/{name}/invocations``: a parsed MLflow payload through the
served estimator, dispatched as the pyfunc wrapper does (training/pyfunc.py ``score``), and
the answer in MLflow's shape, ``{"predictions": [{column: value, ...}, ...]}`` (or NDJSON).

A prediction is never a NaN written as null where the model always has a number: a row whose
churn probability, or whose CLV figures (all but the interval, ``clv_lower`` and
``clv_upper``, null when it cannot be computed), are not finite numbers cannot be scored (its
values are too large for the model), and is a 422 naming the row. The segmentation model's
numbers are null where an input they come from is missing, as in MLflow's server.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd

from models.churn.risk import band_of
from models.exceptions import InvalidInputError
from models.uplift.model import model_input
from service import mlflow_csv, mlflow_payload
from service.input_schema import InputSchema

# The parsers of the bodies that are not streamed, by media type.
PARSERS = {"json": mlflow_payload.parse_columns, "csv": mlflow_csv.parse_csv}
# Per family, the predictions that are always numbers (see the module docstring).
ALWAYS_NUMBERS = {
    "churn": ("churn_probability",),
    "clv": ("expected_purchases", "probability_alive", "expected_spend", "clv", "margin"),
}


def predict(
    family: str, estimator: Any, columns: dict[str, Any], n: int, fast_path: bool = True
) -> dict[str, Any]:
    """The pyfunc's output for the input ``columns``, column by column. The churn estimator's
    ``predict_proba_columns`` gets the arrays directly, with no DataFrame built per request,
    unless ``fast_path`` is False (the model store found it differing from the pyfunc when it
    loaded the version)."""
    if family == "churn":
        fast = getattr(estimator, "predict_proba_columns", None) if fast_path else None
        if fast is not None:
            p = np.asarray(fast(columns, n))[:, 1]
        else:
            names = list(estimator.feature_names_in_)
            p = estimator.predict_proba(pd.DataFrame(columns, columns=names))[:, 1]
        return {"churn_probability": p, "risk_band": band_of(estimator, p)}
    if family in ("segmentation", "clv"):
        out = estimator.predict(pd.DataFrame(columns, columns=list(columns)))
        return {str(c): out[c].to_numpy() for c in out.columns}
    if family == "uplift":  # the pyfunc's columns: retention, then spend when modelled
        frame = estimator.predict_frame(
            model_input(estimator, pd.DataFrame(columns, columns=list(columns)))
        )
        return {str(c): frame[c].to_numpy() for c in frame.columns}
    raise LookupError(f"unknown model family {family!r}")


def records(columns: dict[str, Any]) -> list[dict[str, Any]]:
    """Prediction columns as one record per row, in plain Python values (NaN stays NaN;
    orjson writes it as null, as MLflow's server does)."""
    names = list(columns)
    lists = [np.asarray(v).tolist() for v in columns.values()]
    return [dict(zip(names, row, strict=True)) for row in zip(*lists, strict=True)]


def render(columns: dict[str, Any]) -> bytes:
    """``{"predictions": [records]}`` as MLflow's server writes it."""
    return orjson.dumps({"predictions": records(columns)})


def render_lines(columns: dict[str, Any]) -> bytes:
    """The same records as NDJSON, one per line."""
    return b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in records(columns))


def score_body(
    raw: bytes, family: str, loaded: Any, schema: InputSchema, max_rows: int, media: str = "json"
) -> tuple[bytes, int]:
    """A JSON (or, with ``media="csv"``, CSV) body scored: ``(the answer, rows)``."""
    features, n = PARSERS[media](raw, schema, max_rows)
    return render(_predict_checked(family, loaded, features, n)), n


def score_lines(
    lines: list[bytes], offset: int, family: str, loaded: Any, schema: InputSchema
) -> tuple[bytes, int]:
    """One chunk of an NDJSON stream (rows ``offset`` on) as NDJSON predictions."""
    features, n = mlflow_payload.parse_lines(lines, schema, offset)
    return render_lines(_predict_checked(family, loaded, features, n, offset)), n


def _predict_checked(
    family: str, loaded: Any, features: dict[str, Any], n: int, offset: int = 0
) -> dict[str, Any]:
    try:
        out = predict(family, loaded.estimator, features, n, getattr(loaded, "fast_path", True))
    except InvalidInputError:  # the model's own check, naming the column and the rows
        raise
    except ValueError as exc:  # e.g. values the estimator cannot use; never a traceback
        message = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise InvalidInputError(f"the model could not score these rows: {message}") from exc
    check_numbers(family, out, offset)
    return out


def check_numbers(family: str, out: dict[str, Any], offset: int = 0) -> None:
    """The predictions of :data:`ALWAYS_NUMBERS` finite in every row (rows counted from
    ``offset``); else a 422 naming the rows that are not."""
    for name in ALWAYS_NUMBERS.get(family, ()):
        finite = np.isfinite(np.asarray(out[name], dtype=float))
        if finite.all():
            continue
        rows = (np.flatnonzero(~finite) + offset).tolist()
        which = f"row {rows[0]}" if len(rows) == 1 else f"rows {', '.join(map(str, rows[:10]))}"
        which += "" if len(rows) <= 10 else f" and {len(rows) - 10} more"
        their = "its" if len(rows) == 1 else "their"
        raise InvalidInputError(
            f"{which} cannot be scored: {their} values are too large for the model ({name} "
            "would not be a finite number)",
            field=f"rows.{rows[0]}",
            rows=rows,
        )
