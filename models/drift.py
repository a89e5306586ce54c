"""Input drift: reference distributions at training time, population stability index (PSI).

PSI = Σ_bins (actual − expected) · ln(actual / expected) over the training deciles of each
feature (plus a bin for missing values). Rule of thumb, used by ``/v1/models``: below 0.1 the
population is stable, 0.1–0.2 it has shifted moderately, above 0.2 (:data:`RETRAIN_PSI`) it
has shifted enough to retrain.

A PSI of a few rows is noise: with ``n`` rows spread over ``k`` bins it is about ``(k − 1) / n``
even when nothing changed (six customers gave PSI 3–8). So a monitor stays silent until it has
seen :data:`MIN_ROWS` rows (configurable): its report then says "not enough data yet", shows no
PSI and never asks for a retrain.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from models._columns import as_float

RETRAIN_PSI = 0.2
# Rows (customers) a monitor needs before it reports PSI: about 0.02 of noise with 11 bins.
MIN_ROWS = 500
PENDING_ROWS = 2048  # rows of update_columns binned at once
_EPS = 1e-4  # floor for empty bins, so that the logarithm stays finite


def reference_distribution(
    frame: pd.DataFrame, columns: list[str], bins: int = 10
) -> dict[str, Any]:
    """``{column: {"edges": [...], "expected": [...]}}``: inner decile edges and the share of
    training rows per bin (the last bin holds missing values)."""
    out: dict[str, Any] = {}
    for column in columns:
        if column not in frame.columns:
            continue
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            continue
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))
        counts = _counts(values, edges)
        out[column] = {"edges": edges.tolist(), "expected": (counts / counts.sum()).tolist()}
    return out


def _counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    idx = np.searchsorted(edges, values[finite], side="right")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(float)
    return np.append(counts, float((~finite).sum()))


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two bin-share vectors."""
    e = np.maximum(np.asarray(expected, dtype=float), _EPS)
    a = np.maximum(np.asarray(actual, dtype=float), _EPS)
    return float(np.sum((a - e) * np.log(a / e)))


class DriftMonitor:
    """Running bin counts of what is scored, against a training reference (thread-safe);
    silent until ``min_rows`` rows were scored."""

    def __init__(self, reference: dict[str, Any], min_rows: int = MIN_ROWS):
        if min_rows < 1:
            raise ValueError(f"min_rows must be at least 1, not {min_rows}")
        self.reference = reference
        self.min_rows = int(min_rows)
        self._edges = {c: np.asarray(r["edges"], dtype=float) for c, r in reference.items()}
        self._counts = {c: np.zeros(len(e) + 2) for c, e in self._edges.items()}
        self._lock = threading.Lock()
        self.rows = 0
        # values of update_columns not yet counted (binned in bulk: a served request often
        # holds one customer, and binning one value per column costs more than scoring it)
        self._pending: dict[str, list[np.ndarray]] = {c: [] for c in self._edges}
        self._pending_rows = 0

    def update(self, frame: pd.DataFrame) -> None:
        """Add the rows of ``frame`` (columns missing from it are skipped)."""
        increments = {}
        for column, edges in self._edges.items():
            if column in frame.columns:
                increments[column] = _counts(as_float(frame[column]), edges)
        with self._lock:
            for column, counts in increments.items():
                self._counts[column] += counts
            self.rows += len(frame)

    def update_columns(self, columns: Mapping[str, Any], n: int) -> None:
        """:meth:`update` from ``{column: array or list}`` of ``n`` rows (the served
        customer view's columns; no DataFrame). The values are binned in bulk, every
        :data:`PENDING_ROWS` rows and before a report: the counts are the same."""
        numbers = {}
        for column in self._edges:
            if column in columns:
                values = columns[column]
                if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
                    numbers[column] = values.astype(float)
                else:
                    numbers[column] = as_float(pd.Series(values))
        with self._lock:
            for column, values in numbers.items():
                self._pending[column].append(values)
            self.rows += n
            self._pending_rows += n
            if self._pending_rows >= PENDING_ROWS:
                self._flush()

    def _flush(self) -> None:
        """Bin the pending values of :meth:`update_columns` (the lock held)."""
        for column, parts in self._pending.items():
            if parts:
                values = np.concatenate(parts) if len(parts) > 1 else parts[0]
                self._counts[column] += _counts(values, self._edges[column])
                parts.clear()
        self._pending_rows = 0

    def report(self) -> dict[str, Any]:
        """``{"rows", "min_rows", "status", "psi": {column: value}, "threshold", "retrain"}``;
        before ``min_rows`` rows: ``status`` "not enough data yet ...", no PSI, no retrain."""
        with self._lock:
            self._flush()
            counts = {c: v.copy() for c, v in self._counts.items()}
            rows = self.rows
        if rows < self.min_rows:
            return {
                "rows": rows,
                "min_rows": self.min_rows,
                "status": f"not enough data yet: {rows:,} of {self.min_rows:,} customers scored",
                "psi": {},
                "threshold": RETRAIN_PSI,
                "retrain": False,
            }
        values = {
            c: psi(self.reference[c]["expected"], v / v.sum())
            for c, v in counts.items()
            if v.sum() > 0
        }
        return {
            "rows": rows,
            "min_rows": self.min_rows,
            "status": "ok",
            "psi": values,
            "threshold": RETRAIN_PSI,
            "retrain": any(v > RETRAIN_PSI for v in values.values()),
        }
