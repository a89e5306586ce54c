"""The playbook: every label of every scheme → readable name, description and actions.

A JSON file (the shipped default is ``models/playbook.json``); users can point to their own
with the same shape::

    {"schemes": {scheme: {"description": "...",
                          "labels": {label: {"name", "description", "actions", ...}}}},
     "recommendation": {...}}

Schemes of the shipped file: ``rfm`` (which also holds the score-to-name
``segment_table``, see :func:`rfm_segment_table`), ``value_matrix``, ``behaviour`` (the
traits behaviour-cluster names are made of, see :func:`describe_cluster`), ``lifecycle``,
``nine_grid`` (each cell also names its ``strategy``), ``nine_grid_strategy`` and
``churn_risk``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from models.exceptions import InvalidInputError

DEFAULT_PLAYBOOK = Path(__file__).with_name("playbook.json")
MAX_CLUSTER_ACTIONS = 4


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
    table = book.get("schemes", {}).get("rfm", {}).get("segment_table")
    if table is not None:
        from models.segments.rfm import check_segment_table  # late: heavy import

        try:
            check_segment_table(table)
        except InvalidInputError as exc:
            raise InvalidInputError(
                f"{source}: schemes.rfm.segment_table: {exc.message}",
                field="schemes.rfm.segment_table",
            ) from exc
    return book


def describe(scheme: str, label: str, playbook: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"label", "name", "description", "actions"}`` (and any extra keys, e.g. a nine-grid
    cell's ``strategy``) for a label of a scheme; a label the playbook lacks gets its own
    text as name and no actions."""
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


def scheme_description(scheme: str, playbook: dict[str, Any] | None = None) -> str:
    """The playbook's description of a scheme ("" when absent)."""
    book = playbook or load_playbook()
    return str(book["schemes"].get(scheme, {}).get("description", ""))


def rfm_segment_table(playbook: dict[str, Any] | None = None) -> list[dict[str, Any]] | None:
    """The RFM score-to-name table of the playbook (``schemes.rfm.segment_table``), or None.

    Pass it to ``RFMSegmenter(segments=...)`` so that a user's playbook can rename segments.
    """
    book = playbook or load_playbook()
    table = book["schemes"].get("rfm", {}).get("segment_table")
    return [dict(rule) for rule in table] if table is not None else None


def describe_cluster(
    cluster_id: int,
    name: str,
    traits: Iterable[str],
    playbook: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A behaviour cluster's entry from the traits its name was made of.

    ``{"label": cluster_id, "name", "description", "actions", "traits"}``: the description
    joins the traits' descriptions, the actions are the traits' actions in order (first
    action of each trait first, duplicates dropped, at most four). ``name`` and ``traits``
    come from the fitted model (``BehaviourClusters.names_`` and ``.traits_``).
    """
    book = playbook or load_playbook()
    traits = list(traits)
    entries = [describe("behaviour", t, book) for t in traits]
    description = " ".join(e["description"] for e in entries if e["description"])
    actions: list[str] = []
    depth = max((len(e["actions"]) for e in entries), default=0)
    for rank in range(depth):  # round-robin: every trait contributes its first action
        for entry in entries:
            if rank < len(entry["actions"]) and entry["actions"][rank] not in actions:
                actions.append(entry["actions"][rank])
    return {
        "label": int(cluster_id),
        "name": name,
        "description": description,
        "actions": actions[:MAX_CLUSTER_ACTIONS],
        "traits": traits,
    }


def missing_labels(
    scheme_labels: Mapping[str, Iterable[str]], playbook: dict[str, Any] | None = None
) -> list[str]:
    """``"scheme.label"`` for every label of ``scheme_labels`` the playbook does not describe
    (e.g. check a user's playbook against ``models.segments.rfm.SCHEME_LABELS``)."""
    book = playbook or load_playbook()
    schemes = book.get("schemes", {})
    return [
        f"{scheme}.{label}"
        for scheme, labels in scheme_labels.items()
        for label in labels
        if label not in schemes.get(scheme, {}).get("labels", {})
    ]


def catalogue(
    models: Mapping[str, Any] | Iterable[Any], playbook: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """The catalogue of schemes and labels with their sizes at training time.

    ``models``: fitted segmentation models (each with ``scheme`` and ``segment_sizes_``),
    as a list or a mapping whose values are the models. Returns ``{scheme: {"description",
    "labels": [{"label", "name", "description", "actions", "size", ...}]}}``; behaviour
    clusters are listed by id with their generated names (:func:`describe_cluster`), and a
    nine-grid also lists its strategies under ``nine_grid_strategy``.
    """
    book = playbook or load_playbook()
    fitted = list(models.values()) if isinstance(models, Mapping) else list(models)
    out: dict[str, dict[str, Any]] = {}
    for model in fitted:
        scheme = model.scheme
        sizes = dict(model.segment_sizes_)
        if hasattr(model, "traits_") and hasattr(model, "names_"):
            labels = [
                {**describe_cluster(c, model.names_[c], model.traits_[c], book), "size": n}
                for c, n in sizes.items()
            ]
        else:
            labels = [{**describe(scheme, str(k), book), "size": n} for k, n in sizes.items()]
        out[scheme] = {"description": scheme_description(scheme, book), "labels": labels}
        if hasattr(model, "strategies_"):
            known = book["schemes"].get("nine_grid_strategy", {}).get("labels", {})
            totals: dict[str, int] = dict.fromkeys(known, 0)
            for cell, n in sizes.items():
                strategy = model.strategies_[cell]
                totals[strategy] = totals.get(strategy, 0) + n
            out["nine_grid_strategy"] = {
                "description": scheme_description("nine_grid_strategy", book),
                "labels": [
                    {**describe("nine_grid_strategy", s, book), "size": n}
                    for s, n in totals.items()
                ],
            }
    return out


def recommend(
    rfm_segment: str,
    churn_band: str | None,
    high_value: bool,
    playbook: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The one recommended action for a customer.

    High value and high churn risk → the retention play (R and F flag the risk,
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
