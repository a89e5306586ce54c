"""Uplift models: per customer and offer, the change in retention (or spend) an offer causes
over no contact, learnt from randomised campaign history (see :mod:`.learners`,
:mod:`.metrics` and :class:`.model.UpliftModel`)."""

from models.uplift.learners import CONTROL, DRLearner, TLearner, XLearner
from models.uplift.metrics import auuc, qini_coefficient, qini_curve, uplift_at, uplift_curve
from models.uplift.model import LEARNERS, UpliftModel, uplift_matrix

__all__ = [
    "CONTROL",
    "LEARNERS",
    "DRLearner",
    "TLearner",
    "UpliftModel",
    "XLearner",
    "auuc",
    "qini_coefficient",
    "qini_curve",
    "uplift_at",
    "uplift_curve",
    "uplift_matrix",
]
