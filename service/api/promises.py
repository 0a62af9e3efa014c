"""The write side's read API: a promise's state and history."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask_smorest import Blueprint
from marshmallow import RAISE

from domain.credentials import Scope
from service.api.freshness import wait_for_position
from service.api.report_schemas import PromiseListQuerySchema, PromisePageSchema
from service.api.schemas import ProblemSchema, PromiseSchema
from service.auth import requires
from service.context import components

blp = Blueprint(
    "promises",
    __name__,
    url_prefix="/v1/tenants/<tenant>/promises",
    description="Promises as recorded: state and full event history.",
)


@blp.route("/<path:promise_id>")
@blp.doc(security=[{"bearerAuth": []}])
@blp.response(200, PromiseSchema)
@blp.alt_response(401, schema=ProblemSchema, content_type="application/problem+json")
@blp.alt_response(403, schema=ProblemSchema, content_type="application/problem+json")
@blp.alt_response(404, schema=ProblemSchema, content_type="application/problem+json")
@blp.alt_response(422, schema=ProblemSchema, content_type="application/problem+json")
@blp.alt_response(429, schema=ProblemSchema, content_type="application/problem+json")
@requires(Scope.REPORTS_READ)
def get_promise(tenant: str, promise_id: str) -> dict[str, Any]:
    """A promise's current state and every event recorded for it."""
    state = components().ledger.promise(tenant, promise_id)
    return {
        **asdict(state.terms),
        "promise_id": state.terms.key,
        "status": state.status.value,
        "outcome_at": state.outcome_at,
        "is_late": state.is_late,
        "version": state.version,
        "history": [asdict(entry) for entry in state.history],
    }


@blp.route("")
@requires(Scope.REPORTS_READ)
@blp.arguments(PromiseListQuerySchema(), location="query", unknown=RAISE)
@blp.response(200, PromisePageSchema)
@blp.doc(security=[{"bearerAuth": []}])
@blp.alt_response(401, schema=ProblemSchema, content_type="application/problem+json")
@blp.alt_response(403, schema=ProblemSchema, content_type="application/problem+json")
@blp.alt_response(404, schema=ProblemSchema, content_type="application/problem+json")
@blp.alt_response(422, schema=ProblemSchema, content_type="application/problem+json")
@blp.alt_response(429, schema=ProblemSchema, content_type="application/problem+json")
@blp.alt_response(503, schema=ProblemSchema, content_type="application/problem+json")
def list_promises(arguments: dict[str, Any], tenant: str) -> dict[str, Any]:
    """The tenant's promises by promise id, optionally one promiser's or in one status.

    Pages with `next_cursor`; read from the report views, so `after` gives read-your-writes.
    """
    wait_for_position(arguments)
    limit = arguments["limit"]
    rows = components().views.list_promises(
        tenant,
        promiser=arguments.get("promiser"),
        status=arguments.get("status"),
        after=arguments.get("cursor"),
        limit=limit + 1,
    )
    items = [
        {
            "promise_id": row.key,
            "promiser": row.promiser,
            "promisee": row.promisee,
            "category": row.category,
            "title": row.title,
            "status": row.status,
            "due_at": row.due_at,
            "made_at": row.made_at,
            "outcome_at": row.outcome_at,
        }
        for row in rows[:limit]
    ]
    next_cursor = rows[limit - 1].key if len(rows) > limit else None
    return {"items": items, "next_cursor": next_cursor}
