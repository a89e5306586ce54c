"""RFM segmentation: recency, frequency and monetary scores and the named segments.

Recency, frequency and monetary scores 1–5 against the training population: score = 1 +
floor(5 · F(v)), F(v) the share of the training population *strictly below* v. Tied values
always share a score, and the lowest value always scores 1 however many customers share it
(a frequency of 1 shared by 60 % of customers is not split across scores). Recency is scored
on days since the last purchase and reversed (6 − score), in 5 levels, so the
most recent customers always score R = 5. A one-customer training table therefore scores
that customer R5 F1 M1.

Named segments come from a score-to-name table on R and F (R and F flag churn
risk, M ranks who matters): a list of rules ``{"segment", "r", "f"}``, first match wins, no
match → ``"other"``. The default is :data:`DEFAULT_RFM_SEGMENTS`; the shipped playbook holds
the same table under ``schemes.rfm.segment_table``
(:func:`models.playbook.rfm_segment_table`), and users can pass their own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from models.exceptions import InvalidInputError
from models.segments.base import check_fitted, reference_sample, require_columns, values

__all__ = [
    "DEFAULT_RFM_SEGMENTS",
    "RFM_OTHER",
    "RFMSegmenter",
    "check_segment_table",
    "quintile_score",
]

# (segment, R scores, F scores): the widely used RFM map on recency × frequency. Every one
# of the 25 (R, F) pairs is covered, so "other" only appears with a user's partial table.
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
RFM_OTHER = "other"


def _reference(column: np.ndarray) -> np.ndarray:
    """Sorted reference sample of the training values (evenly thinned when large)."""
    return reference_sample(column)


def quintile_score(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Score 1–5: 1 + the number of whole fifths of ``reference`` strictly below the value.

    Tied values share a score, and the lowest value always scores 1 however many customers
    share it (e.g. one-time buyers on frequency).
    """
    below = np.searchsorted(reference, values, side="left") / max(len(reference), 1)
    return np.clip(np.floor(5 * below) + 1, 1, 5).astype(int)


def check_segment_table(table: Any) -> list[dict[str, Any]]:
    """Validate a score-to-name table (list of ``{"segment", "r", "f"}``, scores 1–5)."""
    if not isinstance(table, list) or not table:
        raise InvalidInputError("the RFM segment table must be a non-empty list", field="segments")
    for i, rule in enumerate(table):
        where = f"segments[{i}]"
        if not isinstance(rule, dict) or not {"segment", "r", "f"} <= set(rule):
            raise InvalidInputError(f"{where} needs 'segment', 'r' and 'f'", field=where)
        if not isinstance(rule["segment"], str) or not rule["segment"]:
            raise InvalidInputError(f"{where}.segment must be a non-empty string", field=where)
        for key in ("r", "f"):
            scores = rule[key]
            if not isinstance(scores, list) or not all(
                isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 5 for s in scores
            ):
                raise InvalidInputError(
                    f"{where}.{key} must be a list of scores 1-5", field=f"{where}.{key}"
                )
    return table


class RFMSegmenter(BaseEstimator):
    """RFM scores (1–5) and named segments from the per-customer summary.

    Uses ``days_since_last`` (recency, days), ``n_purchases`` (frequency, purchase days) and
    ``total_revenue`` (monetary, currency). ``segments`` is the score-to-name table (list of
    ``{"segment", "r", "f"}``, first match wins); ``None`` uses :data:`DEFAULT_RFM_SEGMENTS`.

    Fitted: ``references_`` (sorted training samples of the three columns), ``lookup_``
    (6 × 6 array of names by R, F), ``segment_names_`` (the table's names in order, then
    ``"other"``) and ``segment_sizes_`` (name → training customers, every name listed).
    """

    scheme = "rfm"
    label_column = "rfm_segment"
    columns = ("days_since_last", "n_purchases", "total_revenue")

    def __init__(self, segments: list[dict[str, Any]] | None = None):
        self.segments = segments

    def _values(self, summary: pd.DataFrame) -> list[np.ndarray]:
        require_columns(summary, self.columns)
        return [values(summary, c) for c in self.columns]

    def fit(self, summary: pd.DataFrame, y: Any = None) -> RFMSegmenter:
        """Learn the score boundaries from the training population; returns self."""
        table = check_segment_table(
            self.segments if self.segments is not None else DEFAULT_RFM_SEGMENTS
        )
        columns = self._values(summary)
        if len(summary) == 0:
            raise InvalidInputError("cannot fit RFM segments on zero customers")
        self.references_ = [_reference(v) for v in columns]
        lookup = np.full((6, 6), RFM_OTHER, dtype=object)
        for rule in reversed(table):  # reversed: the first matching rule is written last
            for r in rule["r"]:
                for f in rule["f"]:
                    lookup[int(r), int(f)] = rule["segment"]
        self.lookup_ = lookup
        self.segment_names_ = [*dict.fromkeys(rule["segment"] for rule in table), RFM_OTHER]
        counts = self.predict(summary)["rfm_segment"].value_counts()
        self.segment_sizes_ = {
            name: int(counts.get(name, 0))
            for name in self.segment_names_
            if name != RFM_OTHER or counts.get(name, 0) > 0
        }
        return self

    def predict(self, summary: pd.DataFrame) -> pd.DataFrame:
        """Columns ``r_score``, ``f_score``, ``m_score`` (1–5), ``rfm_code`` and ``rfm_segment``.

        A missing recency scores R = 1, a missing frequency or spend scores 1.
        """
        check_fitted(self, "references_")
        recency, frequency, monetary = self._values(summary)
        r = 6 - quintile_score(self.references_[0], np.nan_to_num(recency, nan=np.inf))
        f = quintile_score(self.references_[1], np.nan_to_num(frequency))
        m = quintile_score(self.references_[2], np.nan_to_num(monetary))
        codes = (np.asarray(r) * 100 + np.asarray(f) * 10 + np.asarray(m)).astype(str)
        return pd.DataFrame(
            {
                "r_score": r,
                "f_score": f,
                "m_score": m,
                "rfm_code": pd.array(codes, dtype="str"),
                "rfm_segment": self.lookup_[r, f].astype(str),
            },
            index=summary.index,
        )
