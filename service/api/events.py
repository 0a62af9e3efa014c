"""Signed webhook ingestion: one event, or an NDJSON batch."""

from __future__ import annotations

import time
from typing import Any, Final

from flask import jsonify, request
from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint
from werkzeug.exceptions import RequestEntityTooLarge

from service.api.schemas import BatchAnswerSchema, EventAnswerSchema, ProblemSchema
from service.context import components
from service.webhooks.envelopes import EnvelopeSchema

MAX_EVENT_BYTES: Final = 64 * 1024
MAX_BATCH_BYTES: Final = 10 * 1024 * 1024

blp = Blueprint(
    "events",
    __name__,
    url_prefix="/v1/tenants/<tenant>",
    description="Promise events posted by other apps as Standard Webhooks.",
)

SIGNATURE_HEADERS: Final[list[dict[str, Any]]] = [
    {
        "in": "header",
        "name": name,
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }
    for name, description in [
        ("webhook-id", "unique message id; retries reuse it (the idempotency key)"),
        ("webhook-timestamp", "Unix seconds of this attempt; must be within 5 minutes"),
        ("webhook-signature", "space-separated `v1,<base64 HMAC-SHA256>` signatures"),
    ]
]
PROBLEMS: Final = {
    401: "bad or missing signature, stale timestamp, or unknown tenant (no hint which)",
    409: "conflicts with recorded history; type `.../promise-not-made-yet` means retry later",
    413: "body too large",
    422: "signed but invalid content (header `webhook-delivery: abort-message`)",
    429: "rate limit exceeded (see `Retry-After`)",
}


def _read_body(limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"The body is over {limit} bytes.")
    body = request.get_data(cache=True)
    if len(body) > limit:
        raise RequestEntityTooLarge(f"The body is over {limit} bytes.")
    return body


def _signature_headers() -> dict[str, str]:
    return {
        name: request.headers.get(name, "")
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    }


def _document_problems(view: Any) -> Any:
    for status, description in PROBLEMS.items():
        view = blp.alt_response(
            status,
            schema=ProblemSchema,
            content_type="application/problem+json",
            description=description,
        )(view)
    return view


@blp.route("/events", methods=["POST"])
@blp.doc(
    parameters=SIGNATURE_HEADERS,
    requestBody={"required": True, "content": {"application/json": {"schema": EnvelopeSchema}}},
)
@blp.response(202, EventAnswerSchema, description="recorded")
@blp.alt_response(
    200, schema=EventAnswerSchema, description="already recorded (a repeated delivery)"
)
@_document_problems
def post_event(tenant: str) -> ResponseReturnValue:
    """Record one promise or person event (a signed Standard Webhooks envelope)."""
    built = components()
    started = time.perf_counter()
    answer = built.ingestion.ingest(tenant, _read_body(MAX_EVENT_BYTES), _signature_headers())
    built.metrics.ingest_latency.labels("single").observe(time.perf_counter() - started)
    if answer.status == 202:
        built.metrics.events_appended.inc()
    # A ready response skips flask-smorest's schema dump: the answers hold only the
    # documented fields, and dumping thousands of batch lines cost a tenth of a batch.
    return jsonify(answer.body), answer.status


@blp.route("/events/batch", methods=["POST"])
@blp.doc(
    parameters=SIGNATURE_HEADERS,
    requestBody={
        "required": True,
        "description": "NDJSON: one envelope per line, each with its own `id` (<= 10,000 lines)",
        "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
    },
)
@blp.response(200, BatchAnswerSchema, description="per-line results")
@_document_problems
def post_batch(tenant: str) -> ResponseReturnValue:
    """Record up to 10,000 events at once; each line succeeds or fails on its own."""
    built = components()
    started = time.perf_counter()
    answer = built.batches.ingest(tenant, _read_body(MAX_BATCH_BYTES), _signature_headers())
    built.metrics.ingest_latency.labels("batch").observe(time.perf_counter() - started)
    built.metrics.events_appended.inc(answer["summary"]["recorded"])
    return jsonify(answer)
