"""The promotion gate: is a challenger no worse than the champion on its family's holdout
metrics? Pure (no MLflow, no training pipeline), so the CLI and the service's admin routes
share it; the metrics and default tolerances are in :data:`models.families.FAMILIES`.

A tolerance is absolute, in the metric's units (``0.02``, ``"0.02"``), or relative to the
champion's value (``"5%"``: the challenger may be worse by 5 % of the champion's value).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from models.exceptions import InvalidInputError
from models.families import FAMILIES, GateMetric


@dataclass(frozen=True)
class Tolerance:
    """How much worse than the champion a challenger may be: ``value`` in the metric's units,
    or with ``relative`` a fraction of the champion's value."""

    value: float
    relative: bool = False

    @classmethod
    def parse(cls, value: object, metric: str = "tolerance") -> Tolerance:
        """``0.02`` / ``"0.02"`` (absolute) or ``"5%"`` (relative); anything else is an
        :class:`InvalidInputError` naming both forms."""
        if isinstance(value, Tolerance):
            return value
        relative = isinstance(value, str) and value.strip().endswith("%")
        text = value.strip().removesuffix("%") if isinstance(value, str) else value
        try:
            number = float(text)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            number = math.nan
        if isinstance(value, bool) or not math.isfinite(number):
            raise InvalidInputError(
                f"tolerance of {metric} must be a number in the metric's units (0.02) or a "
                f"percentage of the champion's value ('5%'), got {value!r}",
                field=metric,
            )
        return cls(number / 100 if relative else number, relative)

    @classmethod
    def of(cls, rule: GateMetric) -> Tolerance:
        return cls(rule.tolerance, rule.relative)

    def allowed(self, champion: float) -> float:
        """The worsening allowed against a champion at ``champion``."""
        return self.value * abs(champion) if self.relative else self.value

    def __str__(self) -> str:
        return f"{100 * self.value:g}%" if self.relative else f"{self.value:g}"


@dataclass
class GateResult:
    family: str
    passed: bool
    reasons: list[str]

    def message(self) -> str:
        verdict = "passes" if self.passed else "fails"
        return f"{self.family}: {verdict} the gate: " + "; ".join(self.reasons)


def parse_tolerances(values: Mapping[str, object] | None) -> dict[str, Tolerance]:
    """Per-metric tolerances (numbers, ``"0.02"`` or ``"5%"``) as :class:`Tolerance`."""
    return {metric: Tolerance.parse(value, metric) for metric, value in (values or {}).items()}


def gate(
    family: str,
    champion: dict[str, float],
    challenger: dict[str, float],
    tolerances: Mapping[str, object] | None = None,
) -> GateResult:
    """Is the challenger no worse than the champion on the family's gate metrics?
    ``tolerances`` overrides the default allowed worsening per metric (a number, absolute, or
    a :class:`Tolerance`, or text: ``"0.02"``, ``"5%"``)."""
    chosen = parse_tolerances(tolerances)
    reasons, passed = [], True
    for rule in FAMILIES[family].gate:
        metric = rule.metric
        if metric not in champion or metric not in challenger:
            reasons.append(f"{metric} not measured on both, not gated")
            continue
        tolerance = chosen.get(metric, Tolerance.of(rule))
        old, new = champion[metric], challenger[metric]
        higher = rule.better == "higher"
        worse = (old - new) if higher else (new - old)
        allowed = tolerance.allowed(old)
        ok = worse <= allowed
        passed &= ok
        limit = f"{tolerance}" + (f" = {allowed:.4f}" if tolerance.relative else "")
        reasons.append(
            f"{metric} {new:.4f} vs champion {old:.4f} "
            f"({'ok' if ok else 'WORSE'}: needs {'≥' if higher else '≤'} champion "
            f"{'-' if higher else '+'} {limit})"
        )
    reasons += _notes(family, champion, challenger)
    return GateResult(family, passed, reasons)


def _notes(family: str, champion: dict[str, float], challenger: dict[str, float]) -> list[str]:
    """The family's context metrics beside the verdict (not gated)."""
    out = []
    for metric in FAMILIES[family].gate_notes:
        if metric in champion or metric in challenger:
            old, new = champion.get(metric), challenger.get(metric)
            shown = f"{_number(new, metric)} vs champion {_number(old, metric)}"
            out.append(f"{metric} {shown} (not gated)")
    return out


def _number(value: float | None, metric: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.0f}" if "n_clusters" in metric else f"{value:.4f}"


def comparison_table(
    champion: dict[str, dict[str, float]], challenger: dict[str, dict[str, float]]
) -> str:
    """Side-by-side text table of the gate metrics (and their notes) per family (an optional
    family only when one side has its metrics)."""
    lines = [f"{'family':<13} {'metric':<26} {'champion':>10} {'challenger':>11}"]
    for family in FAMILIES.values():
        if not family.required and not (champion.get(family.name) or challenger.get(family.name)):
            continue  # an optional family (uplift) neither side has
        metrics = [rule.metric for rule in family.gate] + list(family.gate_notes)
        for metric in metrics:
            old = champion.get(family.name, {}).get(metric)
            new = challenger.get(family.name, {}).get(metric)
            if metric in family.gate_notes and old is None and new is None:
                continue
            shown = f"{_number(old, metric):>10} {_number(new, metric):>11}"
            lines.append(f"{family.name:<13} {metric:<26} {shown}")
    return "\n".join(lines)


__all__ = ["GateResult", "Tolerance", "comparison_table", "gate", "parse_tolerances"]
