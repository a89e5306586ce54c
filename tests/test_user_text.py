"""What users read never names our internal source texts: no "seed 00x", no reference to the
internal digest (DOMAIN.md), no Chinese terms and none of the internal case figures, in the
shipped code, playbook, churn types, README or any file under docs/.

"Seed" as a random seed is fine: write ``random_state``, ``--seed`` or "the random seed",
never a bare "the seed", which this test reads as a source text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INTERNAL = re.compile(
    "|".join(
        (
            r"\bseeds? 0[0-9x]{2}",  # "seed 001", "seeds 001, 004", "seed 00x"
            r"\bseed's\b",
            r"\bthe seeds?\b",  # "as the seed does", "the signals of the seeds"
            r"\(seeds?:",  # "(seed: lost / end)"
            r"\bDOMAIN\.md\b",
            r"\bsource texts?\b",
            r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]",  # CJK
            # figures of the internal case studies
            r"\b63\.8 ?%",
            r"\$1,883|\$1,020|\$492",
            r"\bSears\b",
            r"\blurkers?\b",
            r"\bbank case\b",
            r"\bChina Mobile\b",
        )
    ),
    re.I,
)


def _shipped() -> list[Path]:
    files = [ROOT / "README.md"]
    files += sorted(p for p in (ROOT / "docs").rglob("*") if p.is_file())
    for package in ("models", "training", "service"):
        files += sorted(
            p for p in (ROOT / package).rglob("*") if p.suffix in (".py", ".json", ".md")
        )
    return files


def test_every_docs_file_is_checked():
    checked = set(_shipped())
    docs = [p for p in (ROOT / "docs").rglob("*") if p.is_file()]
    assert ROOT / "docs" / "METHODS.md" in docs
    assert ROOT / "docs" / "DESIGN.md" in docs
    assert set(docs) <= checked
    assert not (ROOT / "docs" / "DOMAIN.md").exists()  # the internal digest is not shipped


@pytest.mark.parametrize(
    "line",
    [
        "RFM (seed 001): recency in five levels",
        "Lifecycle stage (seeds 001, 004)",
        "see seed 00x",
        "the lurkers of seed's case",
        "divides by the customers at the end, as the seed does",
        "``churn_rate`` (seed: lost / end)",
        "DOMAIN.md §2: 3,000 / 500 new / 3,300",
        "every scheme of the source texts",
        "Nine-grid 九宫格",
        "63.8 % of lurkers opened the app",
        "store+catalog customers spent $1,883 a year",
    ],
)
def test_internal_wording_is_caught(line):
    assert INTERNAL.search(line)


@pytest.mark.parametrize(
    "line",
    [
        "--seed 1",
        "random_state: K-means restarts and seed (fits are reproducible).",
        "seed: seed of ``numpy.random.default_rng``; same arguments give identical frames.",
        "generating 5,000 customers (seed 1) ...",
        "Seeded synthetic customer data whose generating truth is known.",
        "Dwyer (1997): lost for good and always a share; see docs/METHODS.md.",
    ],
)
def test_random_seeds_and_method_names_pass(line):
    assert not INTERNAL.search(line)


def test_no_internal_source_names_in_what_users_read():
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}"
        for path in _shipped()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if INTERNAL.search(line)
    ]
    assert found == [], "\n".join(found)
