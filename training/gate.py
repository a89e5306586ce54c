"""The promotion gate: is a challenger no worse than the champion on its family's holdout
metrics? Pure (no MLflow, no training pipeline), so the CLI and the service's admin routes
share it; the metrics and default tolerances are in :data:`models.families.FAMILIES`.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.families import FAMILIES


@dataclass
class GateResult:
    family: str
    passed: bool
    reasons: list[str]

    def message(self) -> str:
        verdict = "passes" if self.passed else "fails"
        return f"{self.family}: {verdict} the gate: " + "; ".join(self.reasons)


def gate(
    family: str,
    champion: dict[str, float],
    challenger: dict[str, float],
    tolerances: dict[str, float] | None = None,
) -> GateResult:
    """Is the challenger no worse than the champion on the family's gate metrics?
    ``tolerances`` overrides the default allowed worsening per metric."""
    tolerances = tolerances or {}
    reasons, passed = [], True
    for rule in FAMILIES[family].gate:
        metric = rule.metric
        if metric not in champion or metric not in challenger:
            reasons.append(f"{metric} not measured on both, not gated")
            continue
        tolerance = tolerances.get(metric, rule.tolerance)
        old, new = champion[metric], challenger[metric]
        higher = rule.better == "higher"
        worse = (old - new) if higher else (new - old)
        ok = worse <= tolerance
        passed &= ok
        reasons.append(
            f"{metric} {new:.4f} vs champion {old:.4f} "
            f"({'ok' if ok else 'WORSE'}: needs {'≥' if higher else '≤'} champion "
            f"{'-' if higher else '+'} {tolerance:g})"
        )
    return GateResult(family, passed, reasons)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def comparison_table(
    champion: dict[str, dict[str, float]], challenger: dict[str, dict[str, float]]
) -> str:
    """Side-by-side text table of the gate metrics per family."""
    lines = [f"{'family':<13} {'metric':<22} {'champion':>10} {'challenger':>11}"]
    for family in FAMILIES.values():
        for rule in family.gate:
            old = champion.get(family.name, {}).get(rule.metric)
            new = challenger.get(family.name, {}).get(rule.metric)
            lines.append(
                f"{family.name:<13} {rule.metric:<22} {_number(old):>10} {_number(new):>11}"
            )
    return "\n".join(lines)


__all__ = ["GateResult", "comparison_table", "gate"]
