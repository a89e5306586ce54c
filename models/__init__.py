"""Pure modelling code (numpy, scipy, scikit-learn): no MLflow, no web framework.

One package per model family (:mod:`models.clv`, :mod:`models.churn`,
:mod:`models.segments`); the modules at this level are shared by all of them (features,
exceptions, drift, the customer view, the playbook).
"""

from typing import Any

from models import _legacy

# The layout of the fitted estimators' pickled state. Registered versions carry it as the
# ``cvm_model_format`` tag, and the service refuses, with a clear message, a version saved
# in a format it cannot read (versions without the tag are loaded as before). Bump it with
# any change that makes an earlier pickle unloadable or silently different.
# 2: the model families became packages (``models.segments.bundle.CustomerSegments``, ...).
MODEL_FORMAT = 2
# Older formats this code still reads: format 1 pickles name the module paths from before
# the packages, which :mod:`models._legacy` maps to where the code is now.
LEGACY_FORMATS: tuple[int, ...] = (1,)

_legacy.install()


def check_model_format(name: str, version: Any, tags: dict[str, str] | None) -> None:
    """Refuse a version whose pickled estimators are in a layout this code cannot read (its
    ``cvm_model_format`` tag: this release's format or an older one it still reads; versions
    from before the tag existed are tried as usual)."""
    saved = (tags or {}).get("cvm_model_format")
    if saved is None or saved in {str(f) for f in (MODEL_FORMAT, *LEGACY_FORMATS)}:
        return
    raise ValueError(
        f"{name} v{version} was saved in model format {saved}; this service reads format "
        f"{MODEL_FORMAT}. Retrain with this release (cvm retrain, then cvm promote), or serve "
        "that version with the release that trained it"
    )
