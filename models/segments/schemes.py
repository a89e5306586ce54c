"""The segmentation schemes: their names, the output column holding each one's label, and
every label of the fixed schemes. The one place these facts live: the estimators, the
customer view, the audience selection, the playbook checks and the API schemas import them.
"""

from __future__ import annotations

from models.segments.clusters import BEHAVIOUR_TRAITS
from models.segments.lifecycle import LIFECYCLE_STAGES
from models.segments.rfm import DEFAULT_RFM_SEGMENTS, RFM_OTHER
from models.segments.value import NINE_GRID_CELLS, NINE_GRID_STRATEGIES, VALUE_TYPES

# Scheme → the column of ``CustomerSegments.predict`` that holds its label, in response order.
SCHEME_COLUMNS: dict[str, str] = {
    "rfm": "rfm_segment",
    "value_matrix": "value_type",
    "behaviour": "cluster",
    "lifecycle": "lifecycle_stage",
    "nine_grid": "nine_grid",
}
SCHEMES: tuple[str, ...] = tuple(SCHEME_COLUMNS)

# Every labelled output a marketer can select on: the schemes plus the nine-grid strategy.
LABEL_COLUMNS: dict[str, str] = {**SCHEME_COLUMNS, "nine_grid_strategy": "nine_grid_strategy"}

# Every label of every fixed scheme (the playbook describes each). Behaviour clusters are
# data-driven: their playbook labels are the traits a cluster's generated name is made of.
SCHEME_LABELS: dict[str, tuple[str, ...]] = {
    "rfm": (*dict.fromkeys(rule["segment"] for rule in DEFAULT_RFM_SEGMENTS), RFM_OTHER),
    "value_matrix": VALUE_TYPES,
    "behaviour": BEHAVIOUR_TRAITS,
    "lifecycle": LIFECYCLE_STAGES,
    "nine_grid": NINE_GRID_CELLS,
    "nine_grid_strategy": NINE_GRID_STRATEGIES,
}

__all__ = ["LABEL_COLUMNS", "SCHEMES", "SCHEME_COLUMNS", "SCHEME_LABELS"]
