"""Recurring commitments: create, pause, resume, end, and list occurrences."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint
from marshmallow import RAISE

from domain.commitment import Commitment, CommitmentTerms, occurrence_key
from domain.credentials import Scope
from domain.schedule import Schedule
from service.api.commitment_schemas import (
    CommitmentInSchema,
    CommitmentSchema,
    OccurrencePageSchema,
    OccurrenceQuerySchema,
)
from service.api.schemas import ProblemSchema
from service.auth import requires
from service.context import components

blp = Blueprint(
    "commitments",
    __name__,
    url_prefix="/v1/tenants/<tenant>/commitments",
    description="Recurring commitments whose occurrences become ordinary promises.",
)
PROBLEMS = (401, 403, 404, 409, 422, 429)


def _problems(view: Any) -> Any:
    for status in PROBLEMS:
        view = blp.alt_response(
            status, schema=ProblemSchema, content_type="application/problem+json"
        )(view)
    return blp.doc(security=[{"bearerAuth": []}])(view)


@blp.route("", methods=["POST"])
@_problems
@requires(Scope.EVENTS_WRITE)
@blp.arguments(CommitmentInSchema(), unknown=RAISE)
@blp.response(201, CommitmentSchema, description="created")
@blp.alt_response(200, schema=CommitmentSchema, description="already recorded")
def create_commitment(body: dict[str, Any], tenant: str) -> ResponseReturnValue:
    """Create a recurring commitment (the same one again answers 200, other content 409)."""
    now = components().clock()
    starts_on = body["starts_on"] or now.astimezone(ZoneInfo(body["timezone"])).date()
    schedule = Schedule(body["schedule"], body["timezone"], starts_on, body["due_time"])
    terms = CommitmentTerms(
        tenant=tenant,
        key=body["commitment_id"],
        promiser=body["promiser"],
        promisee=body["promisee"],
        title=body["title"],
        schedule=schedule,
        reminders=tuple(body["reminders"]),
    )
    written = components().ledger.create_commitment(terms, at=now)
    answer = _describe(tenant, body["commitment_id"], written.position)
    return answer, 201 if written.is_new else 200


@blp.route("/<commitment_id>")
@_problems
@requires(Scope.REPORTS_READ)
@blp.response(200, CommitmentSchema)
def get_commitment(tenant: str, commitment_id: str) -> dict[str, Any]:
    """A recurring commitment and where its scheduling stands."""
    return _describe(tenant, commitment_id, components().ledger.head_position())


@blp.route("/<commitment_id>/pause", methods=["POST"])
@_problems
@requires(Scope.EVENTS_WRITE)
@blp.response(200, CommitmentSchema)
def pause_commitment(tenant: str, commitment_id: str) -> dict[str, Any]:
    """Stop making occurrences; those made ahead and due later are released."""
    written = components().ledger.pause_commitment(tenant, commitment_id, at=components().clock())
    return _describe(tenant, commitment_id, written.position)


@blp.route("/<commitment_id>/resume", methods=["POST"])
@_problems
@requires(Scope.EVENTS_WRITE)
@blp.response(200, CommitmentSchema)
def resume_commitment(tenant: str, commitment_id: str) -> dict[str, Any]:
    """Make occurrences again, those due from now on."""
    written = components().ledger.resume_commitment(tenant, commitment_id, at=components().clock())
    return _describe(tenant, commitment_id, written.position)


@blp.route("/<commitment_id>/end", methods=["POST"])
@_problems
@requires(Scope.EVENTS_WRITE)
@blp.response(200, CommitmentSchema)
def end_commitment(tenant: str, commitment_id: str) -> dict[str, Any]:
    """End the commitment for good; occurrences made ahead and due later are released."""
    written = components().ledger.end_commitment(tenant, commitment_id, at=components().clock())
    return _describe(tenant, commitment_id, written.position)


@blp.route("/<commitment_id>/occurrences")
@_problems
@requires(Scope.REPORTS_READ)
@blp.arguments(OccurrenceQuerySchema(), location="query", unknown=RAISE)
@blp.response(200, OccurrencePageSchema)
def list_occurrences(arguments: dict[str, Any], tenant: str, commitment_id: str) -> dict[str, Any]:
    """The latest occurrences made as promises (with their status) and the next coming ones."""
    limit = arguments["limit"]
    commitment = components().ledger.commitment(tenant, commitment_id)
    made = commitment.made_after(commitment.created_at - timedelta(seconds=1))[-limit:]
    keys = [(tenant, occurrence_key(commitment_id, o.local_date)) for o in made]
    rows = components().views.promises(keys)
    items = [
        {
            "promise_id": key,
            "local_date": o.local_date,
            "due_at": o.due_at,
            "status": rows[(tenant, key)].status if (tenant, key) in rows else "open",
        }
        for (_, key), o in zip(keys, made, strict=True)
    ]
    if commitment.is_active and commitment.schedule is not None:
        coming = commitment.schedule.between(commitment.scheduled_through, None, limit=limit)
        items += [
            {
                "promise_id": occurrence_key(commitment_id, o.local_date),
                "local_date": o.local_date,
                "due_at": o.due_at,
                "status": "upcoming",
            }
            for o in coming
        ]
    return {"items": items}


def _describe(tenant: str, key: str, position: int) -> dict[str, Any]:
    commitment: Commitment = components().ledger.commitment(tenant, key)
    schedule = commitment.terms.schedule
    return {
        "commitment_id": commitment.key,
        "promiser": commitment.promiser,
        "promisee": commitment.promisee,
        "title": commitment.title,
        "schedule": schedule.rule,
        "timezone": schedule.timezone,
        "due_time": schedule.due_time,
        "starts_on": schedule.starts_on,
        "reminders": list(commitment.reminders),
        "status": commitment.status,
        "created_at": commitment.created_at,
        "scheduled_through": commitment.scheduled_through,
        "position": position,
    }
