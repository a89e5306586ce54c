"""Churn risk bands (low / medium / high) from the data, not from fixed probabilities.

A business whose base churn rate is 80 % has most customers above any fixed threshold such as
0.6, so a fixed "high" band holds nearly everyone and is useless as an audience. The bands are
therefore cut at **quantiles of the model's own scores** on the customers it was trained for:
by default the lowest half is ``low``, the next 30 % ``medium`` and the top 20 % ``high``
(``DEFAULT_QUANTILES``). The cut points are recorded on the fitted model
(``risk_thresholds_``, ``risk_basis_``), logged with the run and shown in the catalogue.
Fixed probabilities remain available (``basis="probability"``, e.g. 0.3 and 0.6), and a model
saved before bands were fitted uses those (``LEGACY_THRESHOLDS``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.exceptions import InvalidInputError

# The bands, in increasing order of risk.
BAND_NAMES: tuple[str, ...] = ("low", "medium", "high")
# (band, lowest churn probability in it) of models saved before the bands came from the data.
LEGACY_THRESHOLDS: tuple[float, float] = (0.3, 0.6)
RISK_BANDS: tuple[tuple[str, float], ...] = (
    ("low", 0.0),
    ("medium", LEGACY_THRESHOLDS[0]),
    ("high", LEGACY_THRESHOLDS[1]),
)
DEFAULT_QUANTILES: tuple[float, float] = (0.5, 0.8)


def risk_band(probability: Any, thresholds: tuple[float, float] | None = None) -> np.ndarray:
    """The band of each churn probability: ``low`` below ``thresholds[0]``, ``high`` from
    ``thresholds[1]`` on, ``medium`` between (a missing probability is ``low``).
    ``thresholds`` None: :data:`LEGACY_THRESHOLDS`."""
    low, high = thresholds if thresholds is not None else LEGACY_THRESHOLDS
    p = np.asarray(probability, dtype=float)
    above = (p >= low).astype(int) + (p >= high).astype(int)
    return np.array(BAND_NAMES)[above]


def thresholds_of(model: Any) -> tuple[float, float]:
    """The band thresholds a fitted churn model carries (older models: the fixed ones)."""
    fitted = getattr(model, "risk_thresholds_", None)
    if fitted is None:
        return LEGACY_THRESHOLDS
    return float(fitted[0]), float(fitted[1])


def band_of(model: Any, probability: Any) -> np.ndarray:
    """:func:`risk_band` with the model's own thresholds."""
    return risk_band(probability, thresholds_of(model))


def parse_bands(text: str) -> tuple[str, tuple[float, float]]:
    """``"quantile:0.5,0.8"`` (shares of customers) or ``"probability:0.3,0.6"`` (fixed
    churn probabilities); a bare ``"0.5,0.8"`` is quantiles. Returns (basis, cut points)."""
    basis, _, values = text.strip().rpartition(":")
    basis = basis or "quantile"
    if basis not in ("quantile", "probability"):
        raise InvalidInputError(
            f"risk bands {text!r}: use quantile:LOW,HIGH (e.g. quantile:0.5,0.8) or "
            "probability:LOW,HIGH (e.g. probability:0.3,0.6)",
            field="risk_bands",
        )
    try:
        low, high = (float(v) for v in values.split(","))
    except ValueError:
        raise InvalidInputError(
            f"risk bands {text!r}: give two numbers, LOW,HIGH (e.g. {basis}:0.5,0.8)",
            field="risk_bands",
        ) from None
    if not 0 < low < high < 1:
        raise InvalidInputError(f"risk bands {text!r}: need 0 < LOW < HIGH < 1", field="risk_bands")
    return basis, (low, high)


def fit_thresholds(
    scores: Any, basis: str = "quantile", cuts: tuple[float, float] = DEFAULT_QUANTILES
) -> tuple[float, float]:
    """The probability thresholds of the bands for these ``scores`` (the model's
    probabilities on the customers it serves): quantiles of them, or ``cuts`` as they are."""
    if basis == "probability":
        return float(cuts[0]), float(cuts[1])
    p = np.asarray(scores, dtype=float)
    p = p[np.isfinite(p)]
    if p.size == 0:
        return LEGACY_THRESHOLDS
    low, high = (float(v) for v in np.quantile(p, cuts))
    if high <= low:  # many equal scores: keep the bands apart
        high = float(np.nextafter(low, 1.0))
    return low, high


def fit_bands(
    model: Any,
    scores: Any,
    basis: str = "quantile",
    cuts: tuple[float, float] = DEFAULT_QUANTILES,
    population: int | None = None,
) -> tuple[float, float]:
    """Fit the bands of ``model`` on its ``scores`` for the customers it serves: sets
    ``risk_thresholds_``, ``risk_basis_`` (in words) and ``risk_band_sizes_``; returns the
    thresholds. ``population``: how many customers the ``scores`` are a sample of (the band
    sizes are scaled to it; None: the scores are all of them)."""
    thresholds = fit_thresholds(scores, basis, cuts)
    model.risk_thresholds_ = thresholds
    if basis == "probability":
        model.risk_basis_ = f"fixed churn probabilities {cuts[0]:g} and {cuts[1]:g}"
    else:
        model.risk_basis_ = (
            f"the {100 * cuts[0]:g}th and {100 * cuts[1]:g}th percentiles of the model's scores "
            "on the customers it was trained for"
        )
    bands = risk_band(scores, thresholds)
    scale = 1.0 if population is None else population / max(len(bands), 1)
    model.risk_band_sizes_ = {
        band: int(round((bands == band).sum() * scale)) for band in BAND_NAMES
    }
    return thresholds


def band_table(probability: Any, churned: Any, thresholds: tuple[float, float]) -> dict[str, float]:
    """Share of customers and observed churn rate per band (``churn_band_<band>_share`` and
    ``churn_band_<band>_rate``): whether the high band really churns more than the low one."""
    bands = risk_band(probability, thresholds)
    y = np.asarray(churned, dtype=float)
    out: dict[str, float] = {}
    for band in BAND_NAMES:
        member = bands == band
        out[f"churn_band_{band}_share"] = float(member.mean()) if len(bands) else 0.0
        out[f"churn_band_{band}_rate"] = float(y[member].mean()) if member.any() else float("nan")
    return out


_BAND_TEXT = {
    "low": ("Low churn risk", "below {low:.3f}", ["No retention spend; the usual programme"]),
    "medium": (
        "Medium churn risk",
        "from {low:.3f} to below {high:.3f}",
        ["Watch: early-warning alerts, light re-engagement"],
    ),
    "high": (
        "High churn risk",
        "{high:.3f} or more",
        ["Retention play sized to the value at risk (P(churn) x CLV)"],
    ),
}


def churn_risk_scheme(model: Any) -> dict[str, Any]:
    """The churn-risk bands of a fitted churn model as a catalogue scheme (the shape of the
    segmentation schemes' entries): each band's probability range and training-time size."""
    low, high = thresholds_of(model)
    basis = getattr(model, "risk_basis_", None) or "fixed probabilities (a model from before "
    "the bands were fitted to the data)"
    sizes = getattr(model, "risk_band_sizes_", None) or {}
    labels = []
    for band in BAND_NAMES:
        name, span, actions = _BAND_TEXT[band]
        labels.append(
            {
                "label": band,
                "name": name,
                "description": f"P(churn) {span.format(low=low, high=high)}.",
                "actions": actions,
                "size": int(sizes.get(band, 0)),
            }
        )
    return {"description": f"Churn risk bands; thresholds from {basis}.", "labels": labels}


__all__ = [
    "BAND_NAMES",
    "DEFAULT_QUANTILES",
    "LEGACY_THRESHOLDS",
    "RISK_BANDS",
    "band_of",
    "band_table",
    "churn_risk_scheme",
    "fit_bands",
    "fit_thresholds",
    "parse_bands",
    "risk_band",
    "thresholds_of",
]
