"""Response schemas shared by the HTTP API (requests are validated where they arrive)."""

from __future__ import annotations

from marshmallow import Schema, fields

from service.webhooks.envelopes import Duration


class ProblemSchema(Schema):
    """RFC 9457 problem details."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "messages per offending field (422)"},
    )
    promise_id = fields.String(metadata={"description": "the promise not made yet (409)"})


class EventAnswerSchema(Schema):
    """What was recorded for one webhook: the subject, the event type and its log position."""

    promise_id = fields.String()
    person = fields.String()
    event = fields.String(required=True)
    position = fields.Integer(
        required=True,
        metadata={"description": "notification id to pass as ?after= for read-your-writes"},
    )


class BatchLineSchema(Schema):
    """The answer for one NDJSON line."""

    line = fields.Integer(required=True)
    id = fields.String(allow_none=True)
    status = fields.Integer(required=True)
    promise_id = fields.String()
    person = fields.String()
    event = fields.String()
    position = fields.Integer()
    problem = fields.Nested(ProblemSchema)


class BatchSummarySchema(Schema):
    """Counts of a batch's answers by outcome."""

    recorded = fields.Integer(required=True)
    already_recorded = fields.Integer(required=True)
    rejected = fields.Integer(required=True)


class BatchAnswerSchema(Schema):
    """Per-line results of a batch, in line order."""

    results = fields.List(fields.Nested(BatchLineSchema), required=True)
    summary = fields.Nested(BatchSummarySchema, required=True)


class HistoryEntrySchema(Schema):
    """One recorded event of a promise."""

    event = fields.String(required=True)
    version = fields.Integer(required=True)
    recorded_at = fields.AwareDateTime(required=True)
    facts = fields.Dict(keys=fields.String(), required=True)


class PromiseSchema(Schema):
    """A promise's current state and full history."""

    promise_id = fields.String(required=True)
    promiser = fields.String(required=True)
    promisee = fields.String(allow_none=True)
    title = fields.String(required=True)
    details = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    due_at = fields.AwareDateTime(allow_none=True)
    timezone = fields.String(allow_none=True)
    reminders = fields.List(Duration())
    made_at = fields.AwareDateTime(required=True)
    status = fields.String(required=True)
    outcome_at = fields.AwareDateTime(allow_none=True)
    is_late = fields.Boolean(required=True)
    version = fields.Integer(required=True)
    history = fields.List(fields.Nested(HistoryEntrySchema), required=True)
