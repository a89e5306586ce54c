"""Customer-view request bodies read with orjson straight into the fast path's columns.

pydantic (:mod:`service.request_body`) builds an object per purchase, about 22 ms for 1,000
customers of 10 purchases; here orjson reads the body (about 5 ms) and one pass over it checks
every field as the request models do and fills the purchase columns of
:class:`models.fast_view.Purchases`. Only well-formed requests in the usual shapes are read
here: anything unusual (a type error, an unknown or missing field, a timestamp in another ISO
8601 form, a value out of range, JSON orjson refuses) gives None, and the caller parses the
body with pydantic as before, so that a 422 names the field exactly as it always has.
:func:`parse` gives the same values as pydantic does (tests/service/test_fast_view.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import chain, repeat
from typing import Any

import numpy as np
import orjson
from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from models import fast_view as fv
from models.customer_view import AUDIENCE_COLUMNS
from service.fields import MAX_YEAR, MIN_YEAR, _attribute_value
from service.request_body import is_json
from service.schemas import Summary

_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_REQUEST_KEYS = frozenset({"as_of", "keep_duplicates", "customers"})
_AUDIENCE_KEYS = _REQUEST_KEYS | {"scheme", "label"}
_CUSTOMER_KEYS = frozenset({"customer_id", "transactions", "summary", "attributes"})
_TRANSACTION_KEYS = frozenset({"timestamp", "amount", "cost", "channel"})
_MAX_TRANSACTIONS = 100_000  # CustomerIn.transactions
_MAX_ID = 200  # CustomerIn.customer_id, attribute names, channels
_MAX_LABEL = 100  # AudienceRequest.label
_NUMBERS = frozenset({int, float})
_OPTIONAL_NUMBERS = frozenset({int, float, type(None)})
_OPTIONAL_TEXT = frozenset({str, type(None)})


class _Unusual(Exception):
    """The body is not in a shape read here: pydantic reads it."""


@dataclass(slots=True)
class FastCustomer:
    """What the fast path reads of a customer (as :class:`service.schemas.CustomerIn`);
    ``transactions`` is the list as sent: its purchases are in the request's columns."""

    customer_id: str
    transactions: list[Any] | None
    summary: Summary | None
    attributes: dict[str, Any] | None


class FastCustomers(list[FastCustomer]):
    """The request's customers, with their purchases as columns (None: no customer sent
    purchases)."""

    purchases: fv.Purchases | None = None


@dataclass(slots=True)
class FastRequest:
    """A customer-view request (as ``ScoreRequest`` / ``AudienceRequest``)."""

    customers: FastCustomers
    as_of: date | str | None
    keep_duplicates: bool
    scheme: str | None = None
    label: str | None = None


def _text(value: Any, longest: int) -> str:
    if type(value) is not str or not 0 < len(value) <= longest:
        raise _Unusual
    return value


def _as_of(value: Any) -> date | str | None:
    """``fields.AsOf``: null, "model" or YYYY-MM-DD within the supported years."""
    if value is None or value == "model":
        return value
    if type(value) is not str or len(value) != 10 or value[4] != "-" or value[7] != "-":
        raise _Unusual
    day = date.fromisoformat(value)  # ValueError: pydantic names the field
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise _Unusual
    return day


def _micros(value: Any) -> int:
    """``fields.Timestamp`` as microseconds since 1970 in UTC (naive times are UTC), for
    YYYY-MM-DD and YYYY-MM-DDTHH:MM:SS with Z or ±HH:MM, or nothing (other forms: pydantic)."""
    if type(value) is not str:
        raise _Unusual
    n = len(value)
    if n == 10:
        if value[4] != "-" or value[7] != "-":
            raise _Unusual
    elif (
        n not in (19, 20, 25)
        or value[10] != "T"
        or value[4] != "-"
        or value[7] != "-"
        or value[13] != ":"
        or value[16] != ":"
        or (n == 20 and value[19] != "Z")
        or (n == 25 and (value[19] not in "+-" or value[22] != ":"))
    ):
        raise _Unusual
    stamp = datetime.fromisoformat(value)  # ValueError: pydantic names the field
    if not MIN_YEAR <= stamp.year <= MAX_YEAR:
        raise _Unusual
    return (stamp - (_EPOCH if stamp.tzinfo is None else _EPOCH_UTC)) // _MICROSECOND


def _attributes(value: Any) -> dict[str, Any] | None:
    """``CustomerIn.attributes``: names of up to 200 characters, values as
    :func:`service.fields._attribute_value` takes them."""
    if value is None:
        return None
    if type(value) is not dict:
        raise _Unusual
    for name, item in value.items():
        if len(name) > _MAX_ID or type(item) not in (str, int, float, bool, type(None)):
            raise _Unusual
        _attribute_value(item)  # PydanticCustomError: pydantic names the field
    return value


# The positions of the separators in YYYY-MM-DDTHH:MM:SS, and of its digits.
_SEPARATORS = {4: "-", 7: "-", 10: "T", 13: ":", 16: ":"}
_DIGITS = [i for i in range(19) if i not in _SEPARATORS]
_VECTOR_TIMES = 32  # purchases from which their times are read as one numpy pass
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _plain_micros(stamps: list[Any]) -> np.ndarray | None:
    """Microseconds since 1970 of timestamps all in the form YYYY-MM-DDTHH:MM:SS (naive: UTC)
    with valid dates and times, computed from their digits at once; None when any is not."""
    if set(map(type, stamps)) != {str} or set(map(len, stamps)) != {19}:
        return None
    grid = np.array(stamps, dtype="U19").view(np.uint32).reshape(len(stamps), 19)
    if not all((grid[:, i] == ord(c)).all() for i, c in _SEPARATORS.items()):
        return None
    digits = grid[:, _DIGITS].astype(np.int64) - ord("0")
    if not ((digits >= 0) & (digits <= 9)).all():
        return None
    year = digits[:, 0] * 1000 + digits[:, 1] * 100 + digits[:, 2] * 10 + digits[:, 3]
    month, day, hour, minute, second = (
        digits[:, k] * 10 + digits[:, k + 1] for k in range(4, 14, 2)
    )
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    valid = (year >= MIN_YEAR) & (year <= MAX_YEAR) & (month >= 1) & (month <= 12)
    if not valid.all():
        return None
    days_in_month = _DAYS_IN_MONTH[month] + (leap & (month == 2))
    if not (
        (day >= 1) & (day <= days_in_month) & (hour < 24) & (minute < 60) & (second < 60)
    ).all():
        return None
    # days since 1970-01-01 of the proleptic Gregorian date (H. Hinnant's days_from_civil)
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return ((days * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000


def _purchases(owners: list[int], lists: list[list[Any]], out: FastCustomers) -> fv.Purchases:
    """The purchase columns of the customers at ``owners`` (their ``lists`` of purchases), as
    ``service.fast_scoring._purchases`` builds them from the objects pydantic makes."""
    txs = list(chain.from_iterable(lists))
    if set(map(type, txs)) != {dict}:
        raise _Unusual
    n = len(txs)
    # no other field: timestamp and amount are in each (their types are checked), cost and
    # channel where sent
    sent = 2 * n + sum(map(dict.__contains__, txs, repeat("cost")))
    sent += sum(map(dict.__contains__, txs, repeat("channel")))
    if sum(map(len, txs)) != sent:
        raise _Unusual
    stamps = list(map(dict.get, txs, repeat("timestamp")))
    amounts = list(map(dict.get, txs, repeat("amount")))
    costs = list(map(dict.get, txs, repeat("cost")))
    names = list(map(dict.get, txs, repeat("channel")))
    if not set(map(type, amounts)) <= _NUMBERS or not set(map(type, costs)) <= _OPTIONAL_NUMBERS:
        raise _Unusual  # never a bool; finite (orjson reads no NaN or Infinity)
    amount = np.array(amounts, dtype=float)
    if not (amount >= 0).all():
        raise _Unusual
    kinds = set(map(type, names))
    if not kinds <= _OPTIONAL_TEXT:
        raise _Unusual
    seen = dict.fromkeys(names)  # in order of first use, as the channel codes
    seen.pop(None, None)
    channels: list[str] = list(seen)  # type: ignore[arg-type]
    if channels and max(map(len, channels)) > _MAX_ID:
        raise _Unusual
    codes: dict[str | None, int] = {name: code for code, name in enumerate(channels)}
    codes[None] = -1
    # a few timestamps are read one by one faster than numpy sets up its pass
    micros = _plain_micros(stamps) if n >= _VECTOR_TIMES else None
    if micros is None:
        micros = np.array([_micros(stamp) for stamp in stamps], dtype=np.int64)
    ids = [c.customer_id for c in out]
    rank = np.empty(len(ids), dtype=np.int64)
    rank[sorted(range(len(ids)), key=ids.__getitem__)] = np.arange(len(ids))
    return fv.Purchases(
        np.repeat(np.array(owners, dtype=np.int64), np.array(list(map(len, lists)))),
        micros * 1000,
        amount,
        np.array(costs, dtype=float),  # None → NaN
        np.array(list(map(codes.__getitem__, names)), dtype=np.int64),
        channels,
        len(out),
        customer_rank=rank,
    )


def _customers(items: Any) -> FastCustomers:
    if type(items) is not list or not items:
        raise _Unusual
    out = FastCustomers()
    owners: list[int] = []
    lists: list[list[Any]] = []
    for i, item in enumerate(items):
        if type(item) is not dict or not item.keys() <= _CUSTOMER_KEYS:
            raise _Unusual
        customer_id = _text(item.get("customer_id"), _MAX_ID)
        transactions, summary = item.get("transactions"), item.get("summary")
        if (transactions is None) == (summary is None):
            raise _Unusual
        if transactions is not None:
            if type(transactions) is not list or not 0 < len(transactions) <= _MAX_TRANSACTIONS:
                raise _Unusual
            owners.append(i)
            lists.append(transactions)
        else:
            if type(summary) is not dict:
                raise _Unusual
            summary = Summary.model_validate(summary)
        attributes = _attributes(item.get("attributes"))
        out.append(FastCustomer(customer_id, transactions, summary, attributes))
    if owners:
        out.purchases = _purchases(owners, lists, out)
    return out


def parse(raw: bytes, content_type: str | None, audience: bool = False) -> FastRequest | None:
    """The body of a customer-view request (``audience``: of ``/v1/segments/audience``), or
    None when pydantic must read it (see the module docstring)."""
    if not raw or not is_json(content_type):
        return None
    try:
        body = orjson.loads(raw)
        if type(body) is not dict or not body.keys() <= (
            _AUDIENCE_KEYS if audience else _REQUEST_KEYS
        ):
            raise _Unusual
        keep = body.get("keep_duplicates", False)
        if type(keep) is not bool:
            raise _Unusual
        request = FastRequest(_customers(body.get("customers")), _as_of(body.get("as_of")), keep)
        if audience:
            scheme = body.get("scheme")
            if type(scheme) is not str or scheme not in AUDIENCE_COLUMNS:
                raise _Unusual
            request.scheme, request.label = scheme, _text(body.get("label"), _MAX_LABEL)
    except (_Unusual, orjson.JSONDecodeError, ValueError, ValidationError, PydanticCustomError):
        return None
    return request


__all__ = ["FastCustomer", "FastCustomers", "FastRequest", "parse"]
