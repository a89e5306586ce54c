"""Domain errors, raised once with a clear message and mapped to HTTP/CLI exits in one place."""

from __future__ import annotations


class CVMError(Exception):
    """Base class of every error the product raises on purpose."""


class InvalidInputError(CVMError, ValueError):
    """Input that a model cannot use (wrong type, impossible value, missing field).

    ``field`` names what is wrong (a column, a JSON path); ``rows`` lists offending row
    indices where there are any.
    """

    def __init__(self, message: str, *, field: str | None = None, rows: list[int] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.rows = rows or []


class NotFittedError(CVMError, RuntimeError):
    """A model was asked to predict before it was fitted."""


class ConvergenceError(CVMError, RuntimeError):
    """A maximum-likelihood fit did not converge."""


class RegistryError(CVMError):
    """A registry move that cannot be made: no challenger to promote, nothing to roll back
    to, or a comparison made against another champion."""
