"""Validation of business times and IANA time zone names."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.errors import InvalidInputError


def utc_instant(field: str, value: datetime) -> datetime:
    """Return `value` as an aware UTC datetime; naive datetimes are rejected, not guessed."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(field, "must include a UTC offset")
    return value.astimezone(UTC)


def zone_name(field: str, value: str) -> str:
    """Return `value` if it names an IANA time zone."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(field, f"unknown IANA time zone {value!r}") from None
    return value
