"""Churn: who will stop buying, why, and what it costs.

- :mod:`models.churn.classifier`: :class:`ChurnClassifier` (gradient boosting for raw CRM
  tables, calibrated when it helps) and the risk bands.
- :mod:`models.churn.labels`: leak-free labels (time split, contract split).
- :mod:`models.churn.features`: the churn model's features from the per-customer summary.
- :mod:`models.churn.encoding`: raw customer-table columns to model inputs.
- :mod:`models.churn.evaluation`: baselines, calibration and gains.
- :mod:`models.churn.leakage`: the single-column leak check.
- :mod:`models.churn.reasons`, :mod:`models.churn.rules`: per-customer reasons, churn types
  and early-warning rules.
- :mod:`models.churn.kpi`: churn-rate and churn-loss KPIs.
- :mod:`models.churn.fast_predict`: the serving fast path (compiled trees and blend).
"""

from models.churn.classifier import ChurnClassifier
from models.churn.labels import contract_split, time_split
from models.churn.risk import RISK_BANDS, risk_band

__all__ = ["RISK_BANDS", "ChurnClassifier", "contract_split", "risk_band", "time_split"]
