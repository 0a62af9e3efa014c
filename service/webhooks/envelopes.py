"""Incoming webhook envelopes: the schemas of every event type, and parsing to plain values."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import isodate
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from domain.identity import KEY_PATTERN, PROMISE_KEY_PATTERN
from domain.person import CLOCK_TIME
from domain.promise import MAX_CATEGORY, MAX_REMINDERS, MAX_TEXT, MAX_TITLE
from service.webhooks.plain_envelopes import plain_envelope


class PayloadError(Exception):
    """A signed payload that is not a valid envelope; `errors` maps field paths to messages."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        super().__init__("invalid payload")
        self.errors = dict(errors)


KEY_MESSAGE: Final = "must be 1-128 characters of letters, digits and ._:@-"
PROMISE_KEY_MESSAGE: Final = (
    KEY_MESSAGE + " (or a recurring commitment's id, / and an occurrence date)"
)


def whole(pattern: re.Pattern[str], message: str) -> Callable[[str], None]:
    """A validator matching the whole value (marshmallow's Regexp only anchors the start)."""

    def check(value: str) -> None:
        if pattern.fullmatch(value) is None:
            raise ValidationError(message)

    return check


def documented(pattern: re.Pattern[str]) -> dict[str, str]:
    """The pattern as OpenAPI shows it (ECMA regex, anchored at both ends)."""
    source = pattern.pattern
    return {"pattern": f"^(?:{source})$" if "|" in source else f"^{source}$"}


def key_field(**kwargs: Any) -> fields.String:
    """A client id: 1-128 of `[A-Za-z0-9._:@-]`."""
    metadata = {**documented(KEY_PATTERN), **kwargs.pop("metadata", {})}
    return fields.String(validate=whole(KEY_PATTERN, KEY_MESSAGE), metadata=metadata, **kwargs)


def promise_key_field(**kwargs: Any) -> fields.String:
    """A promise id: a client id, or a recurring commitment's `<commitment_id>/<date>`."""
    metadata = {**documented(PROMISE_KEY_PATTERN), **kwargs.pop("metadata", {})}
    return fields.String(
        validate=whole(PROMISE_KEY_PATTERN, PROMISE_KEY_MESSAGE), metadata=metadata, **kwargs
    )


def _text(maximum: int = MAX_TEXT) -> fields.String:
    return fields.String(validate=validate.Length(max=maximum), allow_none=True)


class Duration(fields.Field[timedelta]):
    """An ISO-8601 duration such as `PT1H` or `P1D` (no years or months: they vary in length)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> timedelta:
        if not isinstance(value, str):
            raise ValidationError("must be an ISO-8601 duration such as PT1H")
        try:
            parsed = isodate.parse_duration(value)
        except (isodate.ISO8601Error, ValueError):
            raise ValidationError("must be an ISO-8601 duration such as PT1H") from None
        if not isinstance(parsed, timedelta):
            raise ValidationError("years and months are not fixed durations; use days")
        if parsed <= timedelta(0):
            raise ValidationError("must be a positive duration")
        return parsed

    def _serialize(self, value: timedelta | None, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else isodate.duration_isoformat(value)


class TimeZoneName(fields.String):
    """An IANA time zone name such as `Europe/Berlin`."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        name = super()._deserialize(value, attr, data, **kwargs)
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError("must be an IANA time zone such as Europe/Berlin") from None
        return name


class StrictSchema(Schema):
    """Unknown fields are errors, so typos never pass silently."""

    class Meta:
        unknown = RAISE


class PromiseMadeSchema(StrictSchema):
    """`promise.made`: a promise was made."""

    promise_id = promise_key_field(required=True)
    promiser = key_field(required=True)
    promisee = key_field(allow_none=True)
    title = fields.String(required=True, validate=validate.Length(min=1, max=MAX_TITLE))
    details = _text()
    category = fields.String(validate=validate.Length(min=1, max=MAX_CATEGORY), allow_none=True)
    due_at = fields.AwareDateTime(allow_none=True)
    timezone = TimeZoneName(allow_none=True)
    reminders = fields.List(Duration(), validate=validate.Length(max=MAX_REMINDERS))

    @validates("title")
    def _title_not_blank(self, value: str, **_: Any) -> None:
        if not value.strip():
            raise ValidationError("must not be blank")


class PromiseKeptSchema(StrictSchema):
    """`promise.kept`: the promise was kept at `at` (default: the envelope timestamp)."""

    promise_id = promise_key_field(required=True)
    at = fields.AwareDateTime()
    note = _text()
    reported_by = key_field(allow_none=True)


class PromiseBrokenSchema(StrictSchema):
    """`promise.broken`: the promise was broken at `at` (default: the envelope timestamp)."""

    promise_id = promise_key_field(required=True)
    at = fields.AwareDateTime()
    reason = _text()
    reported_by = key_field(allow_none=True)


class PromiseRenegotiatedSchema(StrictSchema):
    """`promise.renegotiated`: a new due time, agreed before the current one."""

    promise_id = promise_key_field(required=True)
    due_at = fields.AwareDateTime(required=True)
    reason = _text()


class PromiseReleasedSchema(StrictSchema):
    """`promise.released`: the promisee released the promiser."""

    promise_id = promise_key_field(required=True)
    at = fields.AwareDateTime()
    reason = _text()


class OutcomeCorrectedSchema(StrictSchema):
    """`promise.outcome_corrected`: the current outcome is replaced."""

    promise_id = promise_key_field(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(["kept", "broken"]))
    at = fields.AwareDateTime(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=MAX_TEXT))


class QuietHoursSchema(StrictSchema):
    """Daily local quiet hours, e.g. 22:00 to 08:00."""

    start = fields.String(
        required=True, validate=whole(CLOCK_TIME, "must be HH:MM"), metadata=documented(CLOCK_TIME)
    )
    end = fields.String(
        required=True, validate=whole(CLOCK_TIME, "must be HH:MM"), metadata=documented(CLOCK_TIME)
    )


class PersonUpdatedSchema(StrictSchema):
    """`person.updated`: a person's time zone and/or quiet hours (null clears them)."""

    person = key_field(required=True)
    timezone = TimeZoneName()
    quiet_hours = fields.Nested(QuietHoursSchema, allow_none=True)


DATA_SCHEMAS: Final[dict[str, type[Schema]]] = {
    "promise.made": PromiseMadeSchema,
    "promise.kept": PromiseKeptSchema,
    "promise.broken": PromiseBrokenSchema,
    "promise.renegotiated": PromiseRenegotiatedSchema,
    "promise.released": PromiseReleasedSchema,
    "promise.outcome_corrected": OutcomeCorrectedSchema,
    "person.updated": PersonUpdatedSchema,
}


class EnvelopeSchema(StrictSchema):
    """A Standard Webhooks envelope: `{"type", "timestamp", "data"}` (`id` in batches)."""

    id = key_field(metadata={"description": "idempotency key of a batch line"})
    type = fields.String(required=True, validate=validate.OneOf(list(DATA_SCHEMAS)))
    timestamp = fields.AwareDateTime(required=True)
    data = fields.Dict(required=True, keys=fields.String())


@dataclass(frozen=True)
class Envelope:
    """A valid envelope: its type, business timestamp and type-checked data."""

    type: str
    timestamp: datetime
    data: dict[str, Any]
    id: str | None = None


def parse_envelope(raw: bytes | str | Mapping[str, Any]) -> Envelope:
    """Parse and validate one envelope; PayloadError names every bad field."""
    if isinstance(raw, bytes | str):
        try:
            raw = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise PayloadError({"body": ["must be a JSON object"]}) from None
    if not isinstance(raw, Mapping):
        raise PayloadError({"body": ["must be a JSON object"]})
    plain = plain_envelope(raw)
    if plain is not None:
        return Envelope(*plain)
    return load_envelope(raw)


def load_envelope(raw: Mapping[str, Any]) -> Envelope:
    """Load one decoded envelope through the schemas; PayloadError names every bad field."""
    try:
        envelope: dict[str, Any] = _schema(EnvelopeSchema).load(raw)
    except ValidationError as error:
        raise PayloadError(_flatten(error.messages)) from None
    try:
        data = _schema(DATA_SCHEMAS[envelope["type"]]).load(envelope["data"])
    except ValidationError as error:
        raise PayloadError(_flatten(error.messages, "data.")) from None
    return Envelope(
        type=envelope["type"], timestamp=envelope["timestamp"], data=data, id=envelope.get("id")
    )


@cache
def _schema(kind: type[Schema]) -> Schema:
    # Building a marshmallow schema deep-copies its fields; loading with a shared instance
    # is thread-safe, and this is the hot path of every webhook.
    return kind()


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    if isinstance(messages, list):
        return {prefix.rstrip(".") or "body": [str(m) for m in messages]}
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        flat.update(_flatten(value, f"{prefix}{key}."))
    return flat
