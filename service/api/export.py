"""A tenant's whole event log, streamed as NDJSON webhook envelopes: their data, given back."""

from __future__ import annotations

import json
from collections.abc import Iterator

from flask import Response, stream_with_context
from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint

from domain.credentials import Scope
from service.api.schemas import ProblemSchema
from service.auth import requires
from service.context import components
from service.tenant_export import export_envelopes

blp = Blueprint(
    "export",
    __name__,
    url_prefix="/v1/tenants/<tenant>",
    description="Export of a tenant's event log (Bearer key with reports:read).",
)


@blp.route("/export")
@requires(Scope.REPORTS_READ)
@blp.alt_response(401, schema=ProblemSchema, content_type="application/problem+json")
@blp.alt_response(403, schema=ProblemSchema, content_type="application/problem+json")
@blp.alt_response(404, schema=ProblemSchema, content_type="application/problem+json")
@blp.alt_response(429, schema=ProblemSchema, content_type="application/problem+json")
@blp.doc(
    security=[{"bearerAuth": []}],
    responses={
        "200": {
            "description": "One envelope per line, in log order: `id`, `type`, `timestamp` "
            "(business time), `data`, `recorded_at`",
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
)
def export(tenant: str) -> ResponseReturnValue:
    """Every promise, outcome and person setting of the tenant, as NDJSON (streamed)."""
    ledger = components().ledger
    ledger.tenant(tenant)

    def lines() -> Iterator[str]:
        for envelope in export_envelopes(ledger, tenant):
            yield json.dumps(envelope, separators=(",", ":")) + "\n"

    response = Response(stream_with_context(lines()), mimetype="application/x-ndjson")
    response.headers["Content-Disposition"] = f'attachment; filename="troth-{tenant}.ndjson"'
    response.headers["Cache-Control"] = "no-store"
    return response
