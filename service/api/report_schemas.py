"""Schemas of the report API: query arguments and the shapes people and charts read."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from service.webhooks.envelopes import key_field


class AfterSchema(Schema):
    """Read-your-writes: wait until the views include this log position."""

    class Meta:
        # A misspelt filter must not silently widen what is read.
        unknown = RAISE

    after = fields.Integer(
        validate=validate.Range(min=0),
        metadata={
            "description": "a write's `position`: waits until the views include it, up to "
            "TROTH_READ_WAIT_MS (default 2 s), then 503 with Retry-After"
        },
    )


class ReportQuerySchema(AfterSchema):
    """Which report: a promiser's, towards one promisee, or in one category; and when."""

    promisee = key_field()
    category = fields.String(validate=validate.Length(min=1, max=64))
    as_of = fields.AwareDateTime(metadata={"description": "report the world as at this instant"})
    known_at = fields.AwareDateTime(
        metadata={"description": "only what had been recorded by this instant"}
    )
    weeks = fields.Integer(load_default=12, validate=validate.Range(min=1, max=104))
    share = fields.String(
        validate=validate.Length(min=1, max=400),
        metadata={"description": "a share link's token (instead of a Bearer key)"},
    )

    @validates_schema
    def one_filter(self, data: dict[str, Any], **_: Any) -> None:
        """A report is towards one promisee or in one category, not both at once."""
        if "promisee" in data and "category" in data:
            msg = "Give promisee or category, not both."
            raise ValidationError(msg, field_name="category")


class PageQuerySchema(AfterSchema):
    """Keyset pagination."""

    cursor = fields.String(validate=validate.Length(max=200))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class PromiseListQuerySchema(PageQuerySchema):
    """Filters for listing promises."""

    promiser = key_field()
    status = fields.String(
        validate=validate.OneOf(["open", "kept", "broken", "released", "lapsed"])
    )


class BandSchema(Schema):
    """The 80% uncertainty band of the score."""

    low = fields.Integer(required=True)
    high = fields.Integer(required=True)
    low_exact = fields.Float(required=True)
    high_exact = fields.Float(required=True)


class ScoreSchema(Schema):
    """The consistency score, 0-100 (50 without evidence)."""

    value = fields.Integer(required=True, metadata={"description": "rounded for display"})
    exact = fields.Float(required=True)
    band = fields.Nested(BandSchema, required=True)
    evidence = fields.Float(required=True, metadata={"description": "decayed weight of evidence"})


class CountsSchema(Schema):
    """Promises by current outcome."""

    made = fields.Integer(required=True)
    kept = fields.Integer(required=True)
    kept_late = fields.Integer(required=True)
    broken = fields.Integer(required=True)
    lapsed = fields.Integer(required=True)
    released = fields.Integer(required=True)
    renegotiated = fields.Integer(required=True)
    open = fields.Integer(required=True)
    overdue = fields.Integer(required=True)


class StreaksSchema(Schema):
    """Streaks of kept promises and good weeks."""

    kept_streak = fields.Integer(required=True)
    longest_kept_streak = fields.Integer(required=True)
    longest_kept_first_at = fields.AwareDateTime(allow_none=True, required=True)
    longest_kept_last_at = fields.AwareDateTime(allow_none=True, required=True)
    days_since_breach = fields.Integer(allow_none=True, required=True)
    week_streak = fields.Integer(required=True)
    longest_week_streak = fields.Integer(required=True)


class WeekSchema(Schema):
    """One local week of the trend."""

    week_start = fields.Date(required=True)
    kept = fields.Integer(required=True)
    kept_late = fields.Integer(required=True)
    broken = fields.Integer(required=True)
    lapsed = fields.Integer(required=True)
    released = fields.Integer(required=True)
    score = fields.Float(required=True, metadata={"description": "end-of-week score, 1 decimal"})
    score_exact = fields.Float(required=True)


class TrendSchema(Schema):
    """The weekly trend and its direction."""

    weeks = fields.List(fields.Nested(WeekSchema), required=True)
    direction = fields.String(
        required=True, validate=validate.OneOf(["improving", "steady", "declining"])
    )
    slope = fields.Float(required=True, metadata={"description": "score points per week"})


class OpenPromiseSchema(Schema):
    """A promise still waiting for its outcome."""

    promise_id = fields.String(required=True)
    title = fields.String(required=True)
    promisee = fields.String(allow_none=True, required=True)
    category = fields.String(allow_none=True, required=True)
    due_at = fields.AwareDateTime(allow_none=True, required=True)
    is_overdue = fields.Boolean(required=True)


class ScoringSchema(Schema):
    """The scoring parameters the report used."""

    specification = fields.String(required=True)
    half_life = fields.String(required=True)
    broken_weight = fields.Float(required=True)
    late_credit = fields.Float(required=True)
    grace = fields.String(required=True)
    lapse_after = fields.String(required=True)
    prior_strength = fields.Float(required=True)
    prior_mean = fields.Float(required=True)


class SubjectSchema(Schema):
    """Whose report this is."""

    person = fields.String(required=True)
    promisee = fields.String(allow_none=True, required=True)
    category = fields.String(allow_none=True, required=True)


class ReportSchema(Schema):
    """A consistency report."""

    subject = fields.Nested(SubjectSchema, required=True)
    as_of = fields.AwareDateTime(required=True)
    known_at = fields.AwareDateTime(allow_none=True, required=True)
    timezone = fields.String(required=True)
    score = fields.Nested(ScoreSchema, required=True)
    explanation = fields.String(required=True)
    counts = fields.Nested(CountsSchema, required=True)
    streaks = fields.Nested(StreaksSchema, required=True)
    trend = fields.Nested(TrendSchema, required=True)
    open_promises = fields.List(fields.Nested(OpenPromiseSchema), required=True)
    overdue_promises = fields.List(fields.Nested(OpenPromiseSchema), required=True)
    scoring = fields.Nested(ScoringSchema, required=True)


class PersonSummarySchema(Schema):
    """A person with promises, with their current score and streaks."""

    person = fields.String(required=True)
    score = fields.Integer(required=True)
    score_exact = fields.Float(required=True)
    kept_streak = fields.Integer(required=True)
    week_streak = fields.Integer(required=True)
    made = fields.Integer(required=True)


class PeoplePageSchema(Schema):
    """A page of people."""

    items = fields.List(fields.Nested(PersonSummarySchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class PromiseSummarySchema(Schema):
    """A promise as listed."""

    promise_id = fields.String(required=True)
    promiser = fields.String(required=True)
    promisee = fields.String(allow_none=True, required=True)
    category = fields.String(allow_none=True, required=True)
    title = fields.String(required=True)
    status = fields.String(required=True)
    due_at = fields.AwareDateTime(allow_none=True, required=True)
    made_at = fields.AwareDateTime(required=True)
    outcome_at = fields.AwareDateTime(allow_none=True, required=True)


class PromisePageSchema(Schema):
    """A page of promises."""

    items = fields.List(fields.Nested(PromiseSummarySchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
