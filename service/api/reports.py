"""Consistency reports and the people who have them."""

from __future__ import annotations

from typing import Any

import isodate
from flask import current_app
from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint
from marshmallow import RAISE
from werkzeug.exceptions import NotFound

from domain.credentials import Scope
from projections.report_reader import Report
from projections.views import PromiseRow
from service.api.freshness import wait_for_position
from service.api.report_schemas import (
    PageQuerySchema,
    PeoplePageSchema,
    ReportQuerySchema,
    ReportSchema,
)
from service.api.schemas import ProblemSchema
from service.auth import requires
from service.context import components
from service.explanation import explain
from service.sharing import reads_person, subject

blp = Blueprint(
    "reports",
    __name__,
    url_prefix="/v1/tenants/<tenant>/people",
    description="Consistency scores, streaks and trends (Bearer key with reports:read; "
    "a person's report also opens with that person's share token).",
)
SPECIFICATION = "troth-scoring-v1"


def problems(view: Any) -> Any:
    """Document the problem answers every report endpoint can give."""
    for status in (401, 403, 404, 422, 429, 503):
        view = blp.alt_response(
            status, schema=ProblemSchema, content_type="application/problem+json"
        )(view)
    return blp.doc(security=[{"bearerAuth": []}])(view)


@blp.route("/<person>/report")
@reads_person
@blp.arguments(ReportQuerySchema(), location="query", unknown=RAISE)
@blp.response(200, ReportSchema)
@problems
def get_report(arguments: dict[str, Any], tenant: str, person: str) -> ResponseReturnValue:
    """A person's consistency report (optionally towards one promisee, in one category, or
    as at / as known at a past instant)."""
    wait_for_position(arguments)
    key = subject(tenant, person, arguments.get("promisee"), arguments.get("category"))
    report = components().reader.report(
        key,
        now=components().clock(),
        as_of=arguments.get("as_of"),
        known_at=arguments.get("known_at"),
        weeks=arguments["weeks"],
    )
    if report is None:
        raise NotFound("No promises are recorded for this person (with these filters).")
    # Written straight to JSON by the app's provider (ISO 8601 instants and days), not dumped
    # through ReportSchema (which documents it): the dump was a tenth of a report's CPU. A
    # test holds both to the same JSON.
    return current_app.json.response(present(report))


@blp.route("")
@requires(Scope.REPORTS_READ)
@blp.arguments(PageQuerySchema(), location="query", unknown=RAISE)
@blp.response(200, PeoplePageSchema)
@problems
def list_people(arguments: dict[str, Any], tenant: str) -> dict[str, Any]:
    """Everyone with promises, with their current score and streaks, by person id."""
    wait_for_position(arguments)
    reader = components().reader
    now = components().clock()
    limit = arguments["limit"]
    rows = components().views.list_people(tenant, after=arguments.get("cursor"), limit=limit + 1)
    items = []
    for row in rows[:limit]:
        report = reader.report(row.key, now=now, weeks=1)
        if report is None:
            continue
        items.append(
            {
                "person": row.key.person,
                "score": round(report.score.value),
                "score_exact": report.score.value,
                "kept_streak": report.streaks.kept_streak,
                "week_streak": report.streaks.week_streak,
                "made": report.counts.made,
            }
        )
    next_cursor = rows[limit - 1].key.person if len(rows) > limit else None
    return {"items": items, "next_cursor": next_cursor}


def present(report: Report) -> dict[str, Any]:
    """A report as JSON for people and charts: rounded numbers next to exact ones."""
    key = report.subject
    policy = report.policy
    return {
        "subject": {
            "person": key.person,
            "promisee": key.other if key.kind == "pair" else None,
            "category": key.other if key.kind == "category" else None,
        },
        "as_of": report.at,
        "known_at": report.known_at,
        "timezone": report.timezone,
        "score": {
            "value": round(report.score.value),
            "exact": report.score.value,
            "band": {
                "low": round(report.score.low),
                "high": round(report.score.high),
                "low_exact": report.score.low,
                "high_exact": report.score.high,
            },
            "evidence": report.score.evidence,
        },
        "explanation": explain(report),
        "counts": vars(report.counts),
        "streaks": vars(report.streaks),
        "trend": {
            "weeks": [
                {**vars(point), "score": round(point.score, 1), "score_exact": point.score}
                for point in report.trend.weeks
            ],
            "direction": report.trend.direction,
            "slope": report.trend.slope,
        },
        "open_promises": [_open(p, report) for p in report.open_promises],
        "overdue_promises": [_open(p, report) for p in report.overdue_promises],
        "scoring": {
            "specification": SPECIFICATION,
            "half_life": isodate.duration_isoformat(policy.half_life),
            "broken_weight": policy.broken_weight,
            "late_credit": policy.late_credit,
            "grace": isodate.duration_isoformat(policy.grace),
            "lapse_after": isodate.duration_isoformat(policy.lapse_after),
            "prior_strength": policy.prior_strength,
            "prior_mean": policy.prior_mean,
        },
    }


def _open(promise: PromiseRow, report: Report) -> dict[str, Any]:
    return {
        "promise_id": promise.key,
        "title": promise.title,
        "promisee": promise.promisee,
        "category": promise.category,
        "due_at": promise.due_at,
        "is_overdue": promise.due_at is not None and promise.due_at < report.at,
    }
