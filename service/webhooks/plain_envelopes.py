"""The common envelopes recognised by hand, before the marshmallow schemas.

Loading an envelope through its two marshmallow schemas costs more than everything else
a batch line needs before its insert. Most envelopes are plain: a handful of strings and
ISO-8601 times. `plain_envelope` accepts exactly those, checking each field as its schema
would and giving the same values; anything else (a field it does not know, a value it is
not sure of, any error) returns None, and the schemas load it and name every bad field.
tests/unit/service/test_plain_envelopes.py checks the two agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final

from domain.identity import KEY_PATTERN, PROMISE_KEY_PATTERN
from domain.promise import MAX_CATEGORY, MAX_TEXT, MAX_TITLE

PlainEnvelope = tuple[str, datetime, dict[str, Any], str | None]


class _NotPlainError(Exception):
    """The value needs the schema: it may be invalid, or of a kind not checked here."""


def _key(value: Any) -> str:
    if type(value) is not str or KEY_PATTERN.fullmatch(value) is None:
        raise _NotPlainError
    return value


def _promise_key(value: Any) -> str:
    if type(value) is not str or PROMISE_KEY_PATTERN.fullmatch(value) is None:
        raise _NotPlainError
    return value


def _optional_key(value: Any) -> str | None:
    return None if value is None else _key(value)


def _title(value: Any) -> str:
    if type(value) is not str or not 1 <= len(value) <= MAX_TITLE or not value.strip():
        raise _NotPlainError
    return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) is not str or len(value) > MAX_TEXT:
        raise _NotPlainError
    return value


def _category(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) is not str or not 1 <= len(value) <= MAX_CATEGORY:
        raise _NotPlainError
    return value


def _instant(value: Any) -> datetime:
    # marshmallow's AwareDateTime parses with datetime.fromisoformat, then needs an offset.
    if type(value) is not str:
        raise _NotPlainError
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _NotPlainError from None
    if parsed.tzinfo is None or parsed.tzinfo.utcoffset(parsed) is None:
        raise _NotPlainError
    return parsed


def _optional_instant(value: Any) -> datetime | None:
    return None if value is None else _instant(value)


def _no_reminders(value: Any) -> list[Any]:
    if type(value) is not list or value:
        raise _NotPlainError
    return []


def _no_timezone(value: Any) -> None:
    if value is not None:
        raise _NotPlainError


Check = Callable[[Any], Any]

# Per type: each field's check and whether it is required. Types not listed, and fields
# whose values are checked here only in their simplest form, fall back to the schemas.
PLAIN_FIELDS: Final[dict[str, dict[str, tuple[Check, bool]]]] = {
    "promise.made": {
        "promise_id": (_promise_key, True),
        "promiser": (_key, True),
        "promisee": (_optional_key, False),
        "title": (_title, True),
        "details": (_text, False),
        "category": (_category, False),
        "due_at": (_optional_instant, False),
        "timezone": (_no_timezone, False),
        "reminders": (_no_reminders, False),
    },
    "promise.kept": {
        "promise_id": (_promise_key, True),
        "at": (_instant, False),
        "note": (_text, False),
        "reported_by": (_optional_key, False),
    },
    "promise.broken": {
        "promise_id": (_promise_key, True),
        "at": (_instant, False),
        "reason": (_text, False),
        "reported_by": (_optional_key, False),
    },
}
ENVELOPE_FIELDS: Final = frozenset({"id", "type", "timestamp", "data"})


def plain_envelope(raw: Mapping[str, Any]) -> PlainEnvelope | None:
    """(type, timestamp, data, id) of a plain valid envelope, or None to use the schemas."""
    try:
        if not raw.keys() <= ENVELOPE_FIELDS:
            return None
        kind = raw.get("type")
        if not isinstance(kind, str):
            return None
        fields = PLAIN_FIELDS.get(kind)
        data = raw.get("data")
        if fields is None or type(data) is not dict or not data.keys() <= fields.keys():
            return None
        loaded = {}
        for name, (check, is_required) in fields.items():
            if name in data:
                loaded[name] = check(data[name])
            elif is_required:
                return None
        msg_id = _key(raw["id"]) if "id" in raw else None
        return kind, _instant(raw.get("timestamp")), loaded, msg_id
    except _NotPlainError:
        return None
