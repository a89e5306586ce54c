"""Customer segmentation: every scheme of docs/METHODS.md, with labels marketing can use.

One import gives the whole public API (class → playbook scheme → label column of
``predict``):

- :class:`RFMSegmenter` → ``rfm`` → ``rfm_segment`` (:mod:`models.segments.rfm`)
- :class:`ValueMatrix` → ``value_matrix`` → ``value_type`` (:mod:`models.segments.value`)
- :class:`BehaviourClusters` → ``behaviour`` (its labels are the traits cluster names are
  made of) → ``cluster`` (stable id) and ``cluster_name`` (:mod:`models.segments.clusters`)
- :class:`LifecycleStage` → ``lifecycle`` → ``lifecycle_stage`` (:mod:`models.segments.lifecycle`)
- :class:`NineGrid` → ``nine_grid`` and ``nine_grid_strategy`` → ``nine_grid`` and
  ``nine_grid_strategy`` (:mod:`models.segments.value`)
- :class:`ValueIndex` → the AHP-weighted value index (0–100) → ``ahp_value_index``
  (:mod:`models.segments.value_index`; not a labelling scheme: one number per customer)
- :class:`CustomerSegments` (:mod:`models.segments.bundle`): all of them as the one estimator
  the ``cvm-segmentation`` model serves.

Each is a scikit-learn style estimator (``__init__`` stores settings, ``fit(table)`` returns
self, learned state ends in ``_``, picklable) whose ``fit``/``predict`` take the
per-customer table of :func:`models.features.summarize`; each fitted model has
``segment_sizes_`` (label → customers at training time). The scheme names, label columns and
labels are in :mod:`models.segments.schemes`.
"""

from models.segments.bundle import CustomerSegments
from models.segments.clusters import BEHAVIOUR_TRAITS, DEFAULT_BEHAVIOUR_FEATURES, BehaviourClusters
from models.segments.lifecycle import LIFECYCLE_STAGES, LifecycleStage
from models.segments.rfm import DEFAULT_RFM_SEGMENTS, RFM_OTHER, RFMSegmenter, quintile_score
from models.segments.schemes import LABEL_COLUMNS, SCHEME_COLUMNS, SCHEME_LABELS, SCHEMES
from models.segments.value import (
    DEFAULT_NINE_GRID_STRATEGIES,
    GROWTH_TIERS,
    NINE_GRID_CELLS,
    NINE_GRID_STRATEGIES,
    VALUE_TIERS,
    VALUE_TYPES,
    NineGrid,
    ValueMatrix,
)
from models.segments.value_index import (
    BANK_TEMPLATE,
    DEFAULT_VALUE_INDEX,
    RANDOM_INDEX,
    VALUE_INDEX_COLUMN,
    AHPWeights,
    ValueIndex,
    ahp_weights,
    load_value_index,
    resolve_value_index,
)

__all__ = [
    "BANK_TEMPLATE",
    "DEFAULT_VALUE_INDEX",
    "RANDOM_INDEX",
    "VALUE_INDEX_COLUMN",
    "AHPWeights",
    "ValueIndex",
    "ahp_weights",
    "load_value_index",
    "resolve_value_index",
    "BEHAVIOUR_TRAITS",
    "DEFAULT_BEHAVIOUR_FEATURES",
    "DEFAULT_NINE_GRID_STRATEGIES",
    "DEFAULT_RFM_SEGMENTS",
    "GROWTH_TIERS",
    "LABEL_COLUMNS",
    "LIFECYCLE_STAGES",
    "NINE_GRID_CELLS",
    "NINE_GRID_STRATEGIES",
    "RFM_OTHER",
    "SCHEMES",
    "SCHEME_COLUMNS",
    "SCHEME_LABELS",
    "VALUE_TIERS",
    "VALUE_TYPES",
    "BehaviourClusters",
    "CustomerSegments",
    "LifecycleStage",
    "NineGrid",
    "RFMSegmenter",
    "ValueMatrix",
    "quintile_score",
]
