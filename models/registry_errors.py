"""What went wrong when the model store read the registry, in words an operator can act on.

The store keeps one message per family (``/health/ready``, ``/v1/models``, the log). It says
what really happened and never shows the store's credentials (:func:`models.redact.redact`):

- the registry cannot be reached (connection refused, timed out, unknown host);
- the registry refused the credentials in ``MLFLOW_TRACKING_URI``;
- the registry database is locked by another process, or cannot be read;
- no such registered model, alias or version: train first (the store raises a
  :class:`LookupError` with that message itself, see :func:`is_missing`).

Shared by the service (model store, admin routes) and the ``cvm`` commands. No MLflow
import here: exceptions are told apart by MLflow's ``error_code``, the exception
types in the chain (by name) and the driver's message.
"""

from __future__ import annotations

import re

from models.redact import redact

_MISSING_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})
_AUTH_CODES = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"})
_UNREACHABLE = (
    ("connection refused", "connection refused"),
    ("timed out", "timed out"),
    ("timeout", "timed out"),
    ("name or service not known", "unknown host"),
    ("nodename nor servname", "unknown host"),
    ("temporary failure in name resolution", "unknown host"),
    ("failed to resolve", "unknown host"),
    ("no route to host", "no route to host"),
    ("network is unreachable", "network unreachable"),
    ("failed to establish a new connection", "no connection"),
    ("could not connect", "no connection"),
    ("connection reset", "connection reset"),
    ("remote end closed connection", "connection closed"),
)
_UNREACHABLE_TYPES = frozenset(
    {"ConnectionError", "ConnectTimeout", "ReadTimeout", "Timeout", "NewConnectionError"}
)
_DATABASE_TYPES = frozenset({"OperationalError", "DatabaseError", "InterfaceError"})
_MAX_REASON = 300


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes / contexts (MLflow raises its own exception inside ``except``)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def is_missing(exc: BaseException) -> bool:
    """The registry answered that the model, alias or version does not exist."""
    code = getattr(exc, "error_code", None)
    if code in _MISSING_CODES:
        return True
    # "Registered model alias champion not found." comes as INVALID_PARAMETER_VALUE
    return code == "INVALID_PARAMETER_VALUE" and "not found" in str(exc).lower()


def _unreachable(chain: list[BaseException], text: str) -> str | None:
    for needle, reason in _UNREACHABLE:
        if needle in text:
            return reason
    if any(type(e).__name__ in _UNREACHABLE_TYPES for e in chain):
        return "no connection"
    return None


def _refused_credentials(exc: BaseException, text: str) -> bool:
    if getattr(exc, "error_code", None) in _AUTH_CODES:
        return True
    return any(f"error code {status}" in text for status in (401, 403)) or "unauthorized" in text


def _driver_message(chain: list[BaseException]) -> str:
    """The database driver's own words (SQLAlchemy keeps them in ``.orig``), first line."""
    for e in chain:
        orig = getattr(e, "orig", None)
        if orig is not None:
            return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    first = str(chain[-1]).strip().splitlines()
    return first[0] if first else type(chain[-1]).__name__


def _database_problem(chain: list[BaseException]) -> bool:
    codes = {getattr(e, "error_code", None) for e in chain}
    return "TEMPORARILY_UNAVAILABLE" in codes or any(
        type(e).__name__ in _DATABASE_TYPES for e in chain
    )


_SERVER_ERROR = re.compile(r"too many (5\d\d) error responses")


def _server_database_problem(text: str, uri: str) -> str | None:
    """What a tracking server (``http(s)://``) answered on every try when it could not use
    its database: MLflow's server answers 503 (500 for other failures), and MLflow's client
    retries until its retries run out ("too many 503 error responses"). None for anything
    else. Its error names the database, often "connection refused": the server itself is not
    unreachable, and the message must not say so."""
    if not uri.lower().startswith(("http://", "https://")):
        return None
    status = _SERVER_ERROR.search(text)
    return f"HTTP {status.group(1)} on every try" if status else None


def describe(exc: BaseException, uri: str) -> str:
    """One line saying what went wrong reading the registry at ``uri``, and what to do."""
    if type(exc) in (LookupError, ValueError):  # the store's own messages, written for people
        return redact(exc)[: _MAX_REASON * 2]
    where = redact(uri)
    chain = _chain(exc)
    text = " ".join(str(e) for e in chain).lower()
    if "database is locked" in text:
        return (
            f"the registry database at {where} is locked by another process (a training run "
            "or a long write): try again when it is free (POST /v1/admin/reload, or wait for "
            "the next reload)"
        )
    server_side = _server_database_problem(text, uri)
    if server_side is not None:
        return (
            f"the tracking server at {where} answers but cannot use its database "
            f"({redact(server_side)[:_MAX_REASON]}): check the database the server stores "
            "into (its --backend-store-uri) and the server's log"
        )
    reason = _unreachable(chain, text)
    if reason is not None:
        return (
            f"the model registry at {where} is unreachable ({reason}): check "
            "MLFLOW_TRACKING_URI and that the tracking server is running"
        )
    if _refused_credentials(exc, text):
        return (
            f"the model registry at {where} refused the service's credentials: check the user "
            "and password in MLFLOW_TRACKING_URI (or MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD)"
        )
    if _database_problem(chain):
        return unreadable_database(uri, _driver_message(chain))
    return f"{type(exc).__name__}: {redact(exc)[: _MAX_REASON * 2]}"


def unreadable_database(uri: str, detail: str) -> str:
    """The registry database at ``uri`` answered, but not as an MLflow database should."""
    return (
        f"the registry database at {redact(uri)} cannot be read "
        f"({redact(detail)[:_MAX_REASON]}): check MLFLOW_TRACKING_URI (or CVM_HOME), that the "
        "file is an MLflow database and that the service may read it"
    )


def is_registry_problem(exc: BaseException) -> bool:
    """The registry could not be read or written (unreachable, locked, refused, broken, or an
    MLflow error): worth a retry later, unlike a bug of ours."""
    chain = _chain(exc)
    text = " ".join(str(e) for e in chain).lower()
    names = {cls.__name__ for e in chain for cls in type(e).__mro__}  # MLflow's subclasses too
    return bool(
        names & (_DATABASE_TYPES | _UNREACHABLE_TYPES | {"MlflowException"})
        or "database is locked" in text
        or _unreachable(chain, text) is not None
    )


__all__ = ["describe", "is_missing", "is_registry_problem", "unreadable_database"]
