"""Schemas of the commitments API: a recurring commitment in, its state and occurrences out."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from service.webhooks.envelopes import Duration, TimeZoneName, key_field


class CommitmentInSchema(Schema):
    """A recurring commitment: each occurrence becomes a promise `<commitment_id>:<date>`."""

    class Meta:
        unknown = RAISE

    commitment_id = key_field(
        required=True, metadata={"description": "at most 117 characters (room for the date)"}
    )
    promiser = key_field(required=True)
    promisee = key_field(allow_none=True, load_default=None)
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    schedule = fields.String(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={
            "description": "an RFC 5545 RRULE such as `FREQ=WEEKLY;BYDAY=TU` (needs "
            "`due_time`) or a 5-field cron line such as `0 20 * * 2`, in `timezone`'s local "
            "time; at most one occurrence per local day"
        },
    )
    timezone = TimeZoneName(required=True)
    due_time = fields.String(
        allow_none=True,
        load_default=None,
        metadata={"description": "local time of day each occurrence is due (RRULE only)"},
    )
    starts_on = fields.Date(
        allow_none=True,
        load_default=None,
        metadata={"description": "first local date occurrences may fall on (default: today)"},
    )
    reminders = fields.List(Duration(), load_default=list, validate=validate.Length(max=10))


class CommitmentSchema(Schema):
    """A recurring commitment and where its scheduling stands."""

    commitment_id = fields.String(required=True)
    promiser = fields.String(required=True)
    promisee = fields.String(allow_none=True)
    title = fields.String(required=True)
    schedule = fields.String(required=True)
    timezone = fields.String(required=True)
    due_time = fields.String(allow_none=True)
    starts_on = fields.Date(required=True)
    reminders = fields.List(Duration())
    status = fields.String(required=True, metadata={"description": "active, paused or ended"})
    created_at = fields.AwareDateTime(required=True)
    scheduled_through = fields.AwareDateTime(
        required=True, metadata={"description": "occurrences due up to here are made"}
    )
    position = fields.Integer(required=True)


class OccurrenceSchema(Schema):
    """One occurrence: made as a promise (with its status once the views have it) or coming."""

    promise_id = fields.String(required=True)
    local_date = fields.Date(required=True)
    due_at = fields.AwareDateTime(required=True)
    status = fields.String(
        required=True,
        metadata={"description": "upcoming (not made yet), or the promise's status"},
    )


class OccurrenceQuerySchema(Schema):
    """How many past and coming occurrences to list."""

    class Meta:
        unknown = RAISE

    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class OccurrencePageSchema(Schema):
    """The latest made occurrences and the next upcoming ones, by due time."""

    items = fields.List(fields.Nested(OccurrenceSchema), required=True)
