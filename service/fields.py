"""Field types of the customer request bodies.

- Numbers are strict: a JSON number, never ``true``/``false`` or a numeric string (pydantic's
  lax mode would read ``"cost": false`` as 0). Integer fields also take a whole float
  (``4.0``), as they always have.
- Day counts and counts are bounded by the supported date range, so that no value overflows
  a float when the features are built.
- Text must be valid Unicode: Python's JSON parser lets a lone surrogate escape (``"\\ud800"``)
  through, which cannot be encoded later; it is refused here, naming the field. Length-bounded
  ``str`` fields get this check from pydantic itself (in its compiled code, at no cost).
- Customer attributes are text, finite numbers, 64-bit integers, booleans or null.
- Dates and times are ISO 8601 text within the years the models handle (a number is not
  read as a Unix time); the years are in the JSON schema too, as a pattern.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StringConstraints,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

# Dates the models can handle (pandas' nanosecond timestamps end in 2262).
MIN_YEAR, MAX_YEAR = 1900, 2200
# The most days between two dates of that range: a bound on day counts (and on purchase days).
MAX_DAYS = (date(MAX_YEAR, 12, 31) - date(MIN_YEAR, 1, 1)).days
MAX_CHANNELS = 1_000_000
MAX_TEXT = 1_000  # characters of one attribute value
_INT64 = (-(2**63), 2**63 - 1)


def _not_text_or_bool(value: Any) -> Any:
    """An integer field takes numbers only (pydantic's lax mode reads true as 1, "4" as 4)."""
    if isinstance(value, bool | str | bytes):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
Days = Annotated[float, Field(strict=True, ge=0, le=MAX_DAYS, allow_inf_nan=False)]
Share = Annotated[float, Field(strict=True, ge=-1, le=1, allow_inf_nan=False)]
# Integer bounds before the validator: they show in the JSON schema as minimum/maximum.
PurchaseDays = Annotated[int, Field(ge=0, le=MAX_DAYS), BeforeValidator(_not_text_or_bool)]
Channels = Annotated[int, Field(ge=0, le=MAX_CHANNELS), BeforeValidator(_not_text_or_bool)]
Text = Annotated[str, StringConstraints(max_length=200)]  # compiled check: valid Unicode


def _unicode_error() -> PydanticCustomError:
    # pydantic's own wording and type for a string it cannot read as Unicode
    return PydanticCustomError(
        "string_unicode",
        "Input should be a valid string, unable to parse raw data as a unicode string",
    )


def _attribute_value(value: Any) -> Any:
    """An attribute value the features can hold: valid text, a finite number, a 64-bit
    integer, a boolean or null (missing)."""
    kind = type(value)
    if kind is str:
        if len(value) > MAX_TEXT:
            raise PydanticCustomError(
                "string_too_long", "String should have at most {max} characters", {"max": MAX_TEXT}
            )
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _unicode_error() from None
    elif kind is int and not _INT64[0] <= value <= _INT64[1]:
        raise PydanticCustomError(
            "int_range",
            "Input should be an integer between {low} and {high}; send larger numbers as floats",
            {"low": _INT64[0], "high": _INT64[1]},
        )
    elif kind is float and not math.isfinite(value):
        raise PydanticCustomError(
            "finite_number", "Input should be a finite number (send null for a missing value)"
        )
    return value


_NUMBER = re.compile(r"\s*[+-]?[0-9]+(\.[0-9]*)?\s*")


def _iso_text(value: Any) -> Any:
    """Not a number, nor a number as text: pydantic's lax mode reads 1700000000 as a time."""
    if not isinstance(value, str) or _NUMBER.fullmatch(value):
        raise PydanticCustomError(
            "iso_8601", "Input should be ISO 8601 text, e.g. 2025-01-31 or 2025-01-31T10:00:00"
        )
    return value


def _in_range(value: date) -> date:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"must be between the years {MIN_YEAR} and {MAX_YEAR}")
    return value


_YEARS = {"pattern": r"^(19[0-9]{2}|2[01][0-9]{2}|2200)-"}
Timestamp = Annotated[
    datetime, BeforeValidator(_iso_text), AfterValidator(_in_range), Field(json_schema_extra=_YEARS)
]
Day = Annotated[
    date, BeforeValidator(_iso_text), AfterValidator(_in_range), Field(json_schema_extra=_YEARS)
]


def _model_or_day(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """``"model"`` as it is (the served models' data date, resolved per request); any other
    value is a :data:`Day` (its errors name the field itself, not a member of a union)."""
    return value if value == "model" else handler(value)


# A request's as_of: a Day, or "model" (typed as a date: "model" is resolved before use)
AsOf = Annotated[
    Day,
    WrapValidator(_model_or_day),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date", **_YEARS},
                {"type": "string", "enum": ["model"]},
            ]
        }
    ),
]

AttributeName = Annotated[str, StringConstraints(max_length=200)]
AttributeValue = Annotated[str | float | int | bool | None, AfterValidator(_attribute_value)]
