"""JSON as MLflow's scoring server reads it: orjson's strictness, plus Python's ``NaN``,
``Infinity`` and ``-Infinity`` literals, which MLflow writes (e.g. missing values in the
``serving_input_example.json`` of a model) and its server accepts.

``NaN`` is read as ``None``, a missing value; an infinity as :class:`NonFinite`, a float of
a type no column takes, so that the column check names it as an error. orjson reads every
body first: only one it refuses that holds such a literal is read again, so ordinary bodies
cost nothing extra.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

# A JSON string (skipped) or one of Python's non-finite literals outside strings.
_LITERAL = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|(-?Infinity|NaN)', re.DOTALL)


class NonFinite(float):
    """An ``Infinity`` or ``-Infinity`` literal, read only to be named as an error."""


_LITERALS = {"NaN": None, "Infinity": NonFinite(math.inf), "-Infinity": NonFinite(-math.inf)}


def loads(raw: bytes) -> Any:
    """JSON as orjson reads it, plus MLflow's ``NaN`` (→ None, a missing value), ``Infinity``
    and ``-Infinity`` (→ :class:`NonFinite`); raises orjson's error for anything else orjson
    refuses. A body orjson accepts is read once."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if b"NaN" not in raw and b"Infinity" not in raw:
            raise
        error = exc
    found: list[bytes] = []

    def null(match: re.Match[bytes]) -> bytes:
        if match.group(1) is None:
            return match.group(0)
        found.append(match.group(1))
        return b"null"

    nulled = _LITERAL.sub(null, raw)
    if not found:
        raise error
    try:  # everything but the literals, as strictly as ever
        value = orjson.loads(nulled)
    except orjson.JSONDecodeError:
        raise error from None
    if all(literal == b"NaN" for literal in found):
        return value
    # An infinity, always an error: read the (valid) body again to know where it is.
    try:
        return json.loads(raw.decode(), parse_constant=_LITERALS.__getitem__, parse_int=_int)
    except (ValueError, RecursionError):
        raise error from None


def _int(text: str) -> int | float:
    """An integer as orjson reads it: beyond 64 bits, a float."""
    value = int(text)
    return value if -(2**63) <= value < 2**64 else float(value)
