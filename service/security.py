"""API keys: who may score and who may administer.

Keys come from ``CVM_API_KEYS`` (scoring) and ``CVM_ADMIN_KEYS`` (admin), comma-separated, and
are sent in the ``X-API-Key`` header. Only their SHA-256 digests are kept in memory, and a
presented key is compared with every digest in constant time (``hmac.compare_digest``).

Rules:

- no key configured at all: every route is open (a development set-up; a loud warning is
  logged at start-up); a setting that is empty counts as unset, but one that is present and
  holds no key (``CVM_API_KEYS=","``) is a start-up error, never an open door;
- scoring keys configured: scoring routes need a scoring or an admin key (401 otherwise);
- admin keys configured: admin routes need an admin key (401 without a valid key, 403 with a
  scoring key);
- scoring keys but no admin key: admin routes are disabled (403), never more open than scoring;
- health endpoints and ``/metrics`` are always open.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Literal

from fastapi import Request, Security
from fastapi.security import APIKeyHeader
from pydantic import SecretStr

from models.exceptions import CVMError
from service.config import Settings

log = logging.getLogger("cvm.security")

API_KEY_HEADER = "X-API-Key"
_MAX_KEY_LENGTH = 512

Role = Literal["admin", "scoring", "anonymous"]

# Declares the scheme in the OpenAPI document (the docs' "Authorize" button); the checks below
# do the work, so a missing header is not an error here.
api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    scheme_name="ApiKey",
    description="A scoring key (CVM_API_KEYS) or an admin key (CVM_ADMIN_KEYS).",
)


class AuthError(Exception):
    """401 (no valid key) or 403 (a valid key without the right)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class KeySettingError(CVMError, ValueError):
    """A key setting present but holding no key (a start-up error: ``cvm serve`` exits 2)."""


def _configured_keys(setting: str, value: SecretStr | None) -> list[str]:
    """The keys of one setting. Unset or empty (``CVM_API_KEYS=``, as Docker Compose passes an
    unset variable) means none; anything else must hold at least one key."""
    raw = value.get_secret_value() if value is not None else ""
    keys = parse_keys(raw)
    if raw and not keys:
        raise KeySettingError(
            f"{setting} is set but holds no key (only commas and spaces): list the keys "
            f"separated by commas, or unset {setting}"
        )
    return keys


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def parse_keys(raw: str | None) -> list[str]:
    """The non-empty, stripped keys of a comma-separated setting."""
    return [k.strip() for k in (raw or "").split(",") if k.strip()]


class KeyRing:
    """SHA-256 digests of a set of keys; :meth:`matches` runs in constant time per digest."""

    def __init__(self, keys: list[str]):
        self._digests = [_digest(k) for k in dict.fromkeys(keys)]

    def __len__(self) -> int:
        return len(self._digests)

    def __repr__(self) -> str:  # never the keys, not even their digests
        return f"KeyRing({len(self._digests)} keys)"

    def matches(self, key: str) -> bool:
        presented = _digest(key)
        found = False
        for digest in self._digests:  # no early exit: the time does not tell which key matched
            found |= hmac.compare_digest(presented, digest)
        return found


@dataclass(frozen=True)
class Principal:
    """Who made the request."""

    role: Role


class Guard:
    """The configured key rings and the access rules of the module docstring."""

    def __init__(self, scoring: KeyRing, admin: KeyRing):
        self.scoring = scoring
        self.admin = admin

    @classmethod
    def from_settings(cls, settings: Settings) -> Guard:
        """The guard of ``settings``; :class:`KeySettingError` when a key setting is present
        but holds no key (``","``, ``" , "``): that must not silently open the routes."""
        return cls(
            KeyRing(_configured_keys("CVM_API_KEYS", settings.api_keys)),
            KeyRing(_configured_keys("CVM_ADMIN_KEYS", settings.admin_keys)),
        )

    @property
    def open(self) -> bool:
        """No key configured at all: everything is open."""
        return not self.scoring and not self.admin

    def warnings(self) -> list[str]:
        """What an operator must hear at start-up about the configured access."""
        if self.open:
            return [
                "NO API KEYS CONFIGURED: scoring and admin routes are open to anyone who can "
                "reach this port; set CVM_API_KEYS and CVM_ADMIN_KEYS in production"
            ]
        out = []
        if not self.scoring:
            out.append("CVM_API_KEYS is not set: scoring routes are open without a key")
        if not self.admin:
            out.append("CVM_ADMIN_KEYS is not set: admin routes are disabled")
        return out

    def identify(self, key: str | None) -> Principal | None:
        """The role of a presented key; None when a key is presented that matches nothing."""
        if not key:
            return Principal("anonymous")
        if len(key) > _MAX_KEY_LENGTH:
            return None
        if self.admin and self.admin.matches(key):
            return Principal("admin")
        if self.scoring and self.scoring.matches(key):
            return Principal("scoring")
        return None

    def check_scoring(self, key: str | None) -> Principal:
        principal = self.identify(key)
        if not self.scoring:  # scoring is open
            return principal or Principal("anonymous")
        if principal is None:
            raise AuthError(401, "unauthorized", f"invalid API key in {API_KEY_HEADER}")
        if principal.role == "anonymous":
            raise AuthError(401, "unauthorized", f"an API key is required in {API_KEY_HEADER}")
        return principal

    def check_admin(self, key: str | None) -> Principal:
        if self.open:
            return Principal("admin")
        principal = self.identify(key)
        if principal is None:
            raise AuthError(401, "unauthorized", f"invalid API key in {API_KEY_HEADER}")
        if not self.admin:
            raise AuthError(
                403, "forbidden", "admin routes are disabled: CVM_ADMIN_KEYS is not set"
            )
        if principal.role == "anonymous":
            raise AuthError(
                401, "unauthorized", f"an admin API key is required in {API_KEY_HEADER}"
            )
        if principal.role != "admin":
            raise AuthError(403, "forbidden", "this route needs an admin key")
        return principal


def get_guard(request: Request) -> Guard:
    guard: Guard | None = getattr(request.app.state, "guard", None)
    if guard is None:  # an app built without create_app: derive it once from its settings
        guard = Guard.from_settings(request.app.state.settings)
        request.app.state.guard = guard
    return guard


def _admit(request: Request, principal: Principal) -> Principal:
    request.state.principal = principal  # the access log names who called
    return principal


async def require_api_key(
    request: Request, key: str | None = Security(api_key_header)
) -> Principal:
    """Dependency of the scoring routes (async: no thread hand-off)."""
    return _admit(request, get_guard(request).check_scoring(key))


async def require_admin_key(
    request: Request, key: str | None = Security(api_key_header)
) -> Principal:
    """Dependency of the admin routes (async: no thread hand-off)."""
    return _admit(request, get_guard(request).check_admin(key))


def log_startup_warnings(guard: Guard) -> None:
    for message in guard.warnings():
        log.warning(message)
    if not guard.open:
        log.info(
            "API keys: %d scoring, %d admin (header %s)",
            len(guard.scoring),
            len(guard.admin),
            API_KEY_HEADER,
        )


__all__ = [
    "API_KEY_HEADER",
    "AuthError",
    "Guard",
    "KeyRing",
    "KeySettingError",
    "Principal",
    "log_startup_warnings",
    "parse_keys",
    "require_admin_key",
    "require_api_key",
]
