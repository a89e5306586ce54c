"""Import aliases for the module paths of model format 1 (release 0.1.0).

Pickled estimators name their classes by module, e.g. ``models.segment_bundle.CustomerSegments``.
Format 1 was written when each model family was a set of files with a prefix
(``churn_*.py``, ``clv_*.py``, ``segment_*.py``); the families are packages now. So that
versions registered by that release keep loading, importing an old path gives the module that
holds the code today (the same module object, not a copy). ``models.churn`` and ``models.clv``
kept their names as packages and re-export the classes those pickles name.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

# Old module path → the module that holds its code now.
MOVED: dict[str, str] = {
    "models._mle": "models.clv._mle",
    "models.clv_discrete": "models.clv.discrete",
    "models.clv_contractual": "models.clv.contractual",
    "models.churn_encoding": "models.churn.encoding",
    "models.churn_eval": "models.churn.evaluation",
    "models.churn_features": "models.churn.features",
    "models.churn_kpi": "models.churn.kpi",
    "models.churn_labels": "models.churn.labels",
    "models.churn_leakage": "models.churn.leakage",
    "models.churn_reasons": "models.churn.reasons",
    "models.churn_rules": "models.churn.rules",
    "models.fast_predict": "models.churn.fast_predict",
    "models.segment_base": "models.segments.base",
    "models.segment_bundle": "models.segments.bundle",
    "models.segment_value": "models.segments.value",
    "models.segmentation": "models.segments",
    "models.clusters": "models.segments.clusters",
    "models.lifecycle": "models.segments.lifecycle",
}


class _Alias(importlib.abc.Loader):
    """Loads an old path as the module that holds its code now."""

    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the target module is already imported."""


class LegacyPaths(importlib.abc.MetaPathFinder):
    """Finds the old module paths of :data:`MOVED` (and nothing else)."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(new))


def install() -> None:
    """Put the finder on ``sys.meta_path`` once."""
    if not any(isinstance(finder, LegacyPaths) for finder in sys.meta_path):
        sys.meta_path.append(LegacyPaths())
