"""Customer segmentation: RFM scores 1–5 and named RFM segments.

Scores are quantile-based against the training population, using mid-ranks so that tied
values always get the same score (a frequency of 1 shared by 60 % of customers is not split
across scores): score = 1 + floor(5 · F(v)), where F(v) is the share of the training
population strictly below v. Recency is scored on days since the last purchase, reversed
(recent → 5), in 5 levels as in seed 001.

Named segments come from a rule table on the R and F scores (first match wins). The default
table is :data:`DEFAULT_RFM_SEGMENTS`; the shipped playbook file holds the same table, and a
user can pass their own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from models.exceptions import InvalidInputError, NotFittedError

# (segment, R scores, F scores): the widely used RFM map on recency × frequency.
DEFAULT_RFM_SEGMENTS: list[dict[str, Any]] = [
    {"segment": "champions", "r": [5], "f": [4, 5]},
    {"segment": "loyal", "r": [3, 4], "f": [4, 5]},
    {"segment": "potential_loyalist", "r": [4, 5], "f": [2, 3]},
    {"segment": "new", "r": [5], "f": [1]},
    {"segment": "promising", "r": [4], "f": [1]},
    {"segment": "need_attention", "r": [3], "f": [3]},
    {"segment": "about_to_sleep", "r": [3], "f": [1, 2]},
    {"segment": "cant_lose", "r": [1, 2], "f": [5]},
    {"segment": "at_risk", "r": [1, 2], "f": [3, 4]},
    {"segment": "hibernating", "r": [1, 2], "f": [2]},
    {"segment": "lost", "r": [1, 2], "f": [1]},
]

_MAX_REFERENCE = 20_000


def _reference(values: np.ndarray) -> np.ndarray:
    """Sorted reference sample of the training values (evenly thinned when large)."""
    ordered = np.sort(values[np.isfinite(values)])
    if len(ordered) > _MAX_REFERENCE:
        ordered = ordered[np.linspace(0, len(ordered) - 1, _MAX_REFERENCE).round().astype(int)]
    return ordered


def quintile_score(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Score 1–5: 1 + the number of whole fifths of ``reference`` strictly below the value.

    Tied values share a score, and the lowest value always scores 1 however many customers
    share it (e.g. one-time buyers on frequency).
    """
    below = np.searchsorted(reference, values, side="left") / max(len(reference), 1)
    return np.clip(np.floor(5 * below) + 1, 1, 5).astype(int)


class RFMSegmenter(BaseEstimator):
    """RFM scores (1–5) and named segments from the per-customer summary.

    Uses ``days_since_last`` (recency, days), ``n_purchases`` (frequency, purchase days) and
    ``total_revenue`` (monetary, currency). ``segments`` is the rule table (list of
    ``{"segment", "r", "f"}``); ``None`` uses :data:`DEFAULT_RFM_SEGMENTS`.
    """

    columns = ("days_since_last", "n_purchases", "total_revenue")

    def __init__(self, segments: list[dict[str, Any]] | None = None):
        self.segments = segments

    def _values(self, summary: pd.DataFrame) -> list[np.ndarray]:
        missing = [c for c in self.columns if c not in summary.columns]
        if missing:
            raise InvalidInputError(f"missing the column '{missing[0]}'", field=missing[0])
        return [summary[c].to_numpy(dtype=float) for c in self.columns]

    def fit(self, summary: pd.DataFrame, y: Any = None) -> RFMSegmenter:
        """Learn the score boundaries from the training population; returns self."""
        if len(summary) == 0:
            raise InvalidInputError("cannot fit RFM segments on zero customers")
        self.references_ = [_reference(v) for v in self._values(summary)]
        table = self.segments if self.segments is not None else DEFAULT_RFM_SEGMENTS
        lookup = np.full((6, 6), "other", dtype=object)
        for rule in reversed(table):  # reversed: the first matching rule is written last
            for r in rule["r"]:
                for f in rule["f"]:
                    lookup[int(r), int(f)] = rule["segment"]
        self.lookup_ = lookup
        self.segment_names_ = list(dict.fromkeys(rule["segment"] for rule in table))
        labelled = self.predict(summary)
        self.segment_sizes_ = labelled["rfm_segment"].value_counts().to_dict()
        return self

    def predict(self, summary: pd.DataFrame) -> pd.DataFrame:
        """Columns ``r_score``, ``f_score``, ``m_score`` (1–5), ``rfm_code`` and ``rfm_segment``."""
        if not hasattr(self, "references_"):
            raise NotFittedError("RFMSegmenter is not fitted; call fit first")
        recency, frequency, monetary = self._values(summary)
        r = 6 - quintile_score(self.references_[0], np.nan_to_num(recency, nan=np.inf))
        f = quintile_score(self.references_[1], np.nan_to_num(frequency))
        m = quintile_score(self.references_[2], np.nan_to_num(monetary))
        codes = [f"{a}{b}{c}" for a, b, c in zip(r, f, m, strict=True)]
        return pd.DataFrame(
            {
                "r_score": r,
                "f_score": f,
                "m_score": m,
                "rfm_code": codes,
                "rfm_segment": self.lookup_[r, f].astype(str),
            },
            index=summary.index,
        )
