"""Credentials out of text: what the service and the CLI say about a store never shows a secret.

A store URI can carry credentials (``http://user:secret@host/``,
``postgresql://user:secret@host/db``, ``...?password=secret``, a libpq DSN with
``password=secret``), and so can every message, log line and traceback that quotes it.
:func:`redact` replaces them with ``***``. Pure string work (no I/O): shared by ``training/`` and
``service/``, which never import each other.
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://userinfo@ : everything between "://" and the last "@" before the host's "/" (a
# password may hold an unencoded "@"); whitespace and quotes end a URL quoted in a message.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/\s'\"<>]+@")
# key=value secrets: query strings (?password=..&), libpq DSNs (password=... host=...)
_SECRET_PARAM = re.compile(
    r"(?i)(?P<key>\b(?:password|passwd|pwd|pass|secret|token|access_token|api_key|apikey)\s*=\s*)"
    r"(?P<value>'[^']*'|\"[^\"]*\"|[^&;\s'\"]+)"
)


def redact(text: object) -> str:
    """``text`` (a URI, a message, a traceback; anything, as ``str``) with credentials masked."""
    out = str(text)
    if "@" in out:
        out = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", out)
    if "=" in out:
        out = _SECRET_PARAM.sub(lambda m: f"{m['key']}{MASK}", out)
    return out


__all__ = ["MASK", "redact"]
