"""The playbook: every label of every scheme → readable name, description and actions.

A JSON file (the shipped default is ``models/playbook.json``); users can point to their own
with the same shape: ``{"schemes": {scheme: {"labels": {label: {"name", "description",
"actions"}}}}, "recommendation": {...}}``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from models.exceptions import InvalidInputError

DEFAULT_PLAYBOOK = Path(__file__).with_name("playbook.json")


@lru_cache(maxsize=8)
def load_playbook(path: str | None = None) -> dict[str, Any]:
    """Read and check a playbook file (the shipped default when ``path`` is None)."""
    source = Path(path) if path else DEFAULT_PLAYBOOK
    try:
        book = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInputError(
            f"{source}: cannot read the playbook: {exc}", field=str(source)
        ) from exc
    for scheme, body in book.get("schemes", {}).items():
        for label, entry in body.get("labels", {}).items():
            for key in ("name", "description", "actions"):
                if key not in entry:
                    raise InvalidInputError(
                        f"{source}: schemes.{scheme}.labels.{label} lacks '{key}'",
                        field=f"schemes.{scheme}.labels.{label}.{key}",
                    )
    return book


def describe(scheme: str, label: str, playbook: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"label", "name", "description", "actions"}`` for a label of a scheme."""
    book = playbook or load_playbook()
    entry = book["schemes"].get(scheme, {}).get("labels", {}).get(label)
    if entry is None:
        return {
            "label": label,
            "name": label.replace("_", " ").capitalize(),
            "description": "",
            "actions": [],
        }
    return {"label": label, **entry}


def recommend(
    rfm_segment: str,
    churn_band: str | None,
    high_value: bool,
    playbook: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The one recommended action for a customer.

    High value and high churn risk → the retention play (seed 001: R and F flag the risk,
    M ranks it); otherwise the first action of the customer's RFM segment.
    """
    book = playbook or load_playbook()
    if churn_band == "high" and high_value:
        play = book["recommendation"]["high_value_high_risk"]
        return {
            "action": play["actions"][0],
            "reason": play["description"],
            "source": "high_value_high_risk",
        }
    entry = describe("rfm", rfm_segment, book)
    action = entry["actions"][0] if entry["actions"] else "No action defined"
    return {"action": action, "reason": entry["description"], "source": f"rfm:{rfm_segment}"}
