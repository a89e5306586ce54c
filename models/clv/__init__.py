"""Customer lifetime value: the probability models and the CLV estimator the service serves.

- :mod:`models.clv.noncontractual`: BG/NBD and Pareto/NBD purchases, Gamma-Gamma spend,
  :class:`CLVModel` (discounted CLV with its interval).
- :mod:`models.clv.discrete`: BG/BB (discrete opportunities) and the shifted-beta-geometric
  retention model.
- :mod:`models.clv.contractual`: :class:`ContractualCLV` for subscription businesses.
- :mod:`models.clv.periodic`: :class:`DiscreteCLV` (BG/BB per period × Gamma-Gamma) for
  discrete-opportunity businesses (donations, renewals per period).
- :mod:`models.clv._mle`: the maximum-likelihood base class they share.
"""

from models.clv.contractual import ContractualCLV, has_contract_data
from models.clv.discrete import BGBB, ShiftedBetaGeometric
from models.clv.noncontractual import (
    BGNBD,
    CLV_INPUT_COLUMNS,
    PURCHASE_MODELS,
    CLVModel,
    GammaGamma,
    ParetoNBD,
    check_rft,
)
from models.clv.periodic import DiscreteCLV

__all__ = [
    "BGBB",
    "BGNBD",
    "CLV_INPUT_COLUMNS",
    "PURCHASE_MODELS",
    "CLVModel",
    "ContractualCLV",
    "DiscreteCLV",
    "GammaGamma",
    "ParetoNBD",
    "ShiftedBetaGeometric",
    "check_rft",
    "has_contract_data",
]
