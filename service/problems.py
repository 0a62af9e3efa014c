"""RFC 9457 problem details: the one mapping from failures to answers."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg
from eventsourcing.persistence import OperationalError
from werkzeug.exceptions import HTTPException

from domain.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    TrothError,
)
from service.webhooks.envelopes import PayloadError
from service.webhooks.inbound import PromiseNotMadeYetError, ReceiptMismatchError
from service.webhooks.signatures import SignatureError

PROBLEM_BASE: Final = "/problems/"
DATABASE_RETRY_AFTER_SECONDS: Final = 5
ABORT: Final = {"webhook-delivery": "abort-message"}

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    """A problem-details answer: status, JSON body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    kind: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Problem:
    """Build a problem; `kind` names its type under /problems/."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + kind if kind else "about:blank",
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body.update(extra)
    return Problem(status, body, dict(headers or {}))


def _kind(error: Exception) -> str:
    name = type(error).__name__.removesuffix("Error")
    return "".join("-" + c.lower() if c.isupper() else c for c in name).lstrip("-")


def describe(error: Exception) -> Problem:
    """The problem answering `error`; unexpected errors say nothing about internals."""
    if isinstance(error, SignatureError | AuthenticationError):
        return problem(
            401,
            "Not authenticated",
            "Invalid or missing credentials.",
            kind="unauthorized",
            headers={"WWW-Authenticate": "Bearer"}
            if isinstance(error, AuthenticationError)
            else {},
        )
    if isinstance(error, PayloadError):
        fields = ", ".join(sorted(error.errors))
        return problem(
            422,
            "Invalid event",
            f"Invalid fields: {fields}.",
            kind="invalid-event",
            headers=ABORT,
            errors=error.errors,
        )
    if isinstance(error, ReceiptMismatchError):
        return problem(
            422,
            "Webhook id reused",
            str(error),
            kind="webhook-id-reused",
            headers=ABORT,
            errors={"webhook-id": [str(error)]},
        )
    if isinstance(error, PromiseNotMadeYetError):
        return problem(
            409,
            "Promise not made yet",
            f"{error}; the outcome may have arrived before promise.made. Retry later.",
            kind="promise-not-made-yet",
            promise_id=error.promise_id,
        )
    if isinstance(error, InvalidInputError):
        return problem(
            422,
            error.title,
            f"{error.field}: {error.message}",
            kind="invalid-input",
            headers=ABORT,
            errors={error.field: [error.message]},
        )
    if isinstance(error, NotFoundError):
        return problem(404, error.title, str(error), kind=_kind(error))
    if isinstance(error, ConflictError):
        return problem(409, error.title, str(error), kind=_kind(error))
    if isinstance(error, TrothError):
        return problem(400, error.title, str(error), kind=_kind(error))
    if isinstance(error, HTTPException):
        return _http(error)
    # psycopg's own errors come from the report views' pool (a pool timeout is one).
    if isinstance(error, OperationalError | psycopg.OperationalError):
        logger.warning("database unavailable: %s", type(error).__name__)
        return problem(
            503,
            "Service temporarily unavailable",
            "The database is not reachable; retry shortly.",
            kind="database-unavailable",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )
    logger.error("unhandled error: %s", type(error).__name__, exc_info=error)
    return problem(500, "Internal server error", "Something went wrong on our side.")


def _http(error: HTTPException) -> Problem:
    code = error.code or 500
    data = getattr(error, "data", None)
    if code == 422 and isinstance(data, dict) and "messages" in data:
        # webargs (flask-smorest) parse errors: {"json": {"field": ["msg"]}}
        errors = _flatten(data["messages"])
        return problem(
            422,
            "Invalid request",
            "Invalid fields: " + ", ".join(sorted(errors)) + ".",
            kind="invalid-request",
            errors=errors,
        )
    # Keep what the exception says about itself (Allow on 405, Retry-After on 429...).
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    if code == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return problem(code, error.name, error.description, headers=headers)


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    if isinstance(messages, list):
        return {prefix.rstrip(".") or "body": [str(m) for m in messages]}
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        # webargs nests by location ("json", "query"); the field path is what matters.
        inner = "" if key in ("json", "query", "form", "headers") and not prefix else f"{key}."
        flat.update(_flatten(value, prefix + inner))
    return flat
