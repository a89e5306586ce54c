"""All segmentation schemes as one estimator: what the ``cvm-segmentation`` model serves.

``CustomerSegments().fit(table).predict(table)`` gives, per customer, the label of every
scheme: RFM segment and scores, value-matrix type, behaviour cluster, lifecycle stage and
nine-grid cell with its strategy, and the AHP value index (0–100,
:mod:`models.segments.value_index`). ``table`` is the per-customer summary of
:func:`models.features.summarize`, plus from the CLV model ``expected_purchases`` (the
nine-grid's growth axis needs it) and ``probability_alive`` when available (the lifecycle
stage uses it), plus the customer-table columns the value index reads.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.base import BaseEstimator

from models import playbook as pb
from models.exceptions import NotFittedError
from models.segments.clusters import BehaviourClusters
from models.segments.lifecycle import LifecycleStage
from models.segments.rfm import RFMSegmenter
from models.segments.value import NineGrid, ValueMatrix
from models.segments.value_index import VALUE_INDEX_COLUMN, ValueIndex, resolve_value_index


class CustomerSegments(BaseEstimator):
    """Every segmentation scheme (docs/METHODS.md, section 5) in one picklable estimator.

    - ``rfm_segments``: RFM score→name table (``None`` = the playbook's / default table).
    - ``cluster_reference``: the previous champion's ``BehaviourClusters.centroid_reference()``;
      when given, cluster ids are matched to it so that "cluster 2" keeps its meaning.
    - ``k_min``, ``k_max``, ``sample_size``: behaviour clustering settings.
    - ``margin``: margin assumed by the value matrix when there is no cost data.
    - ``value_index``: the AHP value index configuration (indicators and pairwise
      comparisons, :func:`models.segments.value_index.check_config`); ``None`` = the default
      for the product's own data. With ``"use_for_nine_grid": true`` the nine-grid's value
      axis is this index.
    - ``horizon_days``: the CLV model's horizon: the period of the ``expected_purchases``
      column that the nine-grid's growth axis compares with the customer's past rate.

    Fitted: one model per scheme (``rfm_``, ``value_matrix_``, ``clusters_``, ``lifecycle_``,
    ``nine_grid_``), ``value_index_`` (:class:`ValueIndex`; absent from models saved before
    it) and ``segment_sizes_``.
    """

    def __init__(
        self,
        rfm_segments: list[dict[str, Any]] | None = None,
        cluster_reference: dict[str, Any] | None = None,
        k_min: int = 2,
        k_max: int = 10,
        sample_size: int = 10_000,
        margin: float | None = None,
        random_state: int = 0,
        value_index: dict[str, Any] | None = None,
        horizon_days: float = 365.0,
    ):
        self.rfm_segments = rfm_segments
        self.cluster_reference = cluster_reference
        self.k_min = k_min
        self.k_max = k_max
        self.sample_size = sample_size
        self.margin = margin
        self.random_state = random_state
        self.value_index = value_index
        self.horizon_days = horizon_days

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("value_index", None)  # models saved before it
        self.__dict__.setdefault("horizon_days", 365.0)  # models saved before it

    def fit(self, table: pd.DataFrame, y: Any = None) -> CustomerSegments:
        """Fit every scheme on the training customers; returns self."""
        self.rfm_ = RFMSegmenter(segments=self.rfm_segments).fit(table)
        self.value_matrix_ = ValueMatrix(margin=self.margin).fit(table)
        self.clusters_ = BehaviourClusters(
            k_min=self.k_min,
            k_max=self.k_max,
            sample_size=self.sample_size,
            random_state=self.random_state,
            reference=self.cluster_reference,
        ).fit(table)
        self.lifecycle_ = LifecycleStage().fit(table)
        config = resolve_value_index(self.value_index)
        self.value_index_ = ValueIndex.from_config(config, source=config["name"]).fit(table)
        axis = VALUE_INDEX_COLUMN if config["use_for_nine_grid"] else None
        grid_table = table
        if axis is not None:
            grid_table = table.assign(**{axis: self.value_index_.predict(table)[axis]})
        self.nine_grid_ = NineGrid(value_axis=axis, horizon_days=self.horizon_days).fit(grid_table)
        self.segment_sizes_ = {m.scheme: dict(m.segment_sizes_) for m in self.schemes().values()}
        return self

    def schemes(self) -> dict[str, Any]:
        """The fitted scheme models by scheme name."""
        if not hasattr(self, "rfm_"):
            raise NotFittedError("CustomerSegments is not fitted; call fit first")
        return {
            "rfm": self.rfm_,
            "value_matrix": self.value_matrix_,
            "behaviour": self.clusters_,
            "lifecycle": self.lifecycle_,
            "nine_grid": self.nine_grid_,
        }

    def predict(self, table: pd.DataFrame) -> pd.DataFrame:
        """Every scheme's output columns side by side (see each scheme's ``predict``), then
        :data:`VALUE_INDEX_COLUMN` (0–100; models saved before the value index lack it)."""
        schemes = self.schemes()
        model = getattr(self, "value_index_", None)
        index = model.predict(table) if model is not None else None
        axis = getattr(self.nine_grid_, "value_axis", None)
        grid_table = table
        if index is not None and axis == VALUE_INDEX_COLUMN:
            grid_table = table.assign(**{axis: index[axis]})
        parts = [m.predict(grid_table if m is self.nine_grid_ else table) for m in schemes.values()]
        if index is not None:
            parts.append(index)
        out = pd.concat(parts, axis=1)
        return out.loc[:, ~out.columns.duplicated()]

    def catalogue(self, playbook: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """Schemes → labels with name, description, actions and size at training time."""
        return pb.catalogue(self.schemes(), playbook)

    def describe_row(
        self, row: pd.Series, playbook: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """One customer's labels, each with name, description and actions (API shape)."""
        book = playbook or pb.load_playbook()
        rfm = pb.describe("rfm", str(row["rfm_segment"]), book)
        cluster = int(row["cluster"])
        nine = pb.describe("nine_grid", str(row["nine_grid"]), book)
        return {
            "rfm": {
                **rfm,
                "r_score": int(row["r_score"]),
                "f_score": int(row["f_score"]),
                "m_score": int(row["m_score"]),
                "code": str(row["rfm_code"]),
            },
            "value_matrix": {
                **pb.describe("value_matrix", str(row["value_type"]), book),
                "basis": str(row["value_basis"]),
            },
            "behaviour": {
                **pb.describe_cluster(
                    cluster, self.clusters_.names_[cluster], self.clusters_.traits_[cluster], book
                ),
                "label": str(cluster),
            },
            "lifecycle": pb.describe("lifecycle", str(row["lifecycle_stage"]), book),
            "nine_grid": {
                **nine,
                "strategy": str(row["nine_grid_strategy"]),
                "value_tier": str(row["value_tier"]),
                "growth_tier": str(row["growth_tier"]),
            },
        }
