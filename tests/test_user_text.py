"""What users read never names our internal source texts: no "seed 00x" and no Chinese terms
in the shipped code, playbook, churn types, README or design document."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INTERNAL = re.compile(r"\bseed 0\d\d|\bseed's\b|[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]", re.I)


def _shipped() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "docs" / "DESIGN.md"]
    for package in ("models", "training", "service"):
        files += sorted(p for p in (ROOT / package).rglob("*") if p.suffix in (".py", ".json"))
    return files


def test_no_internal_source_names_in_what_users_read():
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}"
        for path in _shipped()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if INTERNAL.search(line)
    ]
    assert found == [], "\n".join(found)
