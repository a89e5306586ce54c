"""Reading a user's JSON file with the errors the CLI shows (file, what it is, why)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.exceptions import InvalidInputError


def read_json_file(path: str | Path, what: str) -> Any:
    """The JSON document of ``path``; a missing file (``"<path>: <what> not found"``) or a
    file that is not JSON is an :class:`InvalidInputError` naming the path."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{path}: {what} not found", field=str(path))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path}: not a JSON file ({exc})", field=str(path)) from None
