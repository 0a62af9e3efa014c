"""Webhook subscriptions: where Troth sends signed messages, and the log of every attempt."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate

from domain.credentials import Scope
from domain.errors import DeliveryNotFoundError
from domain.subscription import Subscription, validate_url
from projections.deliveries import AttemptRow, SubscriptionRow
from service.api.schemas import ProblemSchema
from service.auth import requires
from service.context import components
from service.delivery.targets import check_address

blp = Blueprint(
    "subscriptions",
    __name__,
    url_prefix="/v1/tenants/<tenant>/subscriptions",
    description="Outgoing webhooks: subscriptions, their signing secrets and delivery logs "
    "(Bearer key: subscriptions:write to change, reports:read to read).",
)


class SubscriptionCreateSchema(Schema):
    """An endpoint and the message types it wants (`*` for all)."""

    url = fields.String(required=True, metadata={"description": "https://... on port 443 or 80"})
    types = fields.List(fields.String(), required=True, metadata={"example": ["*"]})
    description = fields.String(load_default=None, allow_none=True)


class SubscriptionSchema(Schema):
    """A subscription (never its secret)."""

    id = fields.String(required=True)
    url = fields.String(required=True)
    types = fields.List(fields.String(), required=True)
    description = fields.String(allow_none=True)
    state = fields.String(required=True, metadata={"description": "active | disabled"})
    disabled_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime(required=True)


class NewSubscriptionSchema(SubscriptionSchema):
    """A new subscription with its signing secret, shown only in this answer."""

    secret = fields.String(required=True, metadata={"description": "whsec_... (shown once)"})


class SecretRotationSchema(Schema):
    """How long the current secret keeps signing beside the new one."""

    grace_hours = fields.Float(load_default=24.0, validate=validate.Range(min=0, max=24 * 30))


class NewSigningSecretSchema(Schema):
    """A new signing secret, shown only in this answer."""

    secret = fields.String(required=True)


class AttemptsQuerySchema(Schema):
    """A page of the delivery log, newest first."""

    before = fields.Integer(validate=validate.Range(min=1), metadata={"description": "cursor"})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class AttemptSchema(Schema):
    """One delivery attempt."""

    sequence = fields.Integer(required=True)
    message_id = fields.String(required=True, metadata={"description": "the webhook-id"})
    type = fields.String(required=True)
    at = fields.AwareDateTime(required=True)
    outcome = fields.String(
        required=True, metadata={"description": "delivered | retry | failed | aborted | disabled"}
    )
    status = fields.Integer(allow_none=True, metadata={"description": "HTTP status, if any"})
    latency_ms = fields.Integer(required=True)
    response_excerpt = fields.String(required=True)
    error = fields.String(allow_none=True)


class AttemptPageSchema(Schema):
    """Attempts, newest first, and the cursor for the next page (null at the end)."""

    attempts = fields.List(fields.Nested(AttemptSchema), required=True)
    next_before = fields.Integer(allow_none=True, required=True)


class RedeliverFailedSchema(Schema):
    """Send again every failed message queued at or after `since`."""

    since = fields.AwareDateTime(required=True)


class RedeliveredSchema(Schema):
    """How many deliveries were scheduled again."""

    redelivered = fields.Integer(required=True)


def _problems(*statuses: int) -> Any:
    def decorate(view: Any) -> Any:
        for status in statuses:
            view = blp.alt_response(
                status, schema=ProblemSchema, content_type="application/problem+json"
            )(view)
        return blp.doc(security=[{"bearerAuth": []}])(view)

    return decorate


@blp.route("", methods=["POST"])
@requires(Scope.SUBSCRIPTIONS_WRITE)
@blp.arguments(SubscriptionCreateSchema(), unknown=RAISE)
@blp.response(201, NewSubscriptionSchema)
@_problems(401, 403, 404, 422, 429)
def create_subscription(body: dict[str, Any], tenant: str) -> ResponseReturnValue:
    """Subscribe an endpoint; its `whsec_` signing secret is shown only in this answer."""
    settings = components().settings
    check_address(validate_url(body["url"]), allow_private=settings.allow_private_targets)
    ledger = components().ledger
    created = ledger.create_subscription(
        tenant,
        url=body["url"],
        types=body["types"],
        description=body["description"],
        at=components().clock(),
    )
    subscription = ledger.subscription(tenant, created.subscription_id)
    return {**_present(subscription), "secret": created.secret}, 201


@blp.route("", methods=["GET"])
@requires(Scope.REPORTS_READ)
@blp.response(200, SubscriptionSchema(many=True))
@_problems(401, 403, 404, 429, 503)
def list_subscriptions(tenant: str) -> list[dict[str, Any]]:
    """The tenant's subscriptions, oldest first (never their secrets)."""
    components().delivery_projector.catch_up()
    return [_present_row(row) for row in components().deliveries.subscriptions(tenant)]


@blp.route("/<subscription_id>", methods=["GET"])
@requires(Scope.REPORTS_READ)
@blp.response(200, SubscriptionSchema)
@_problems(401, 403, 404, 429)
def get_subscription(tenant: str, subscription_id: str) -> dict[str, Any]:
    """One subscription (never its secret)."""
    return _present(components().ledger.subscription(tenant, subscription_id))


@blp.route("/<subscription_id>", methods=["DELETE"])
@requires(Scope.SUBSCRIPTIONS_WRITE)
@blp.response(204)
@_problems(401, 403, 404, 409, 429)
def delete_subscription(tenant: str, subscription_id: str) -> ResponseReturnValue:
    """Delete a subscription: nothing more is sent to it."""
    components().ledger.delete_subscription(tenant, subscription_id, at=components().clock())
    return "", 204


@blp.route("/<subscription_id>/secret/rotate", methods=["POST"])
@requires(Scope.SUBSCRIPTIONS_WRITE)
@blp.arguments(SecretRotationSchema(), required=False, unknown=RAISE)
@blp.response(201, NewSigningSecretSchema)
@_problems(401, 403, 404, 409, 422, 429)
def rotate_secret(body: dict[str, Any], tenant: str, subscription_id: str) -> ResponseReturnValue:
    """A new signing secret (shown only here); the old one also signs for `grace_hours`."""
    secret = components().ledger.rotate_subscription_secret(
        tenant,
        subscription_id,
        at=components().clock(),
        grace=timedelta(hours=body.get("grace_hours", 24.0)),
    )
    return {"secret": secret}, 201


@blp.route("/<subscription_id>/enable", methods=["POST"])
@requires(Scope.SUBSCRIPTIONS_WRITE)
@blp.response(200, SubscriptionSchema)
@_problems(401, 403, 404, 409, 429)
def enable_subscription(tenant: str, subscription_id: str) -> dict[str, Any]:
    """Resume a disabled subscription; the messages kept meanwhile are delivered."""
    ledger = components().ledger
    ledger.enable_subscription(tenant, subscription_id, at=components().clock())
    return _present(ledger.subscription(tenant, subscription_id))


@blp.route("/<subscription_id>/deliveries", methods=["GET"])
@requires(Scope.REPORTS_READ)
@blp.arguments(AttemptsQuerySchema(), location="query", unknown=RAISE)
@blp.response(200, AttemptPageSchema)
@_problems(401, 403, 404, 422, 429, 503)
def list_attempts(arguments: dict[str, Any], tenant: str, subscription_id: str) -> dict[str, Any]:
    """Every delivery attempt to this subscription, newest first: status, latency, excerpt."""
    subscription = components().ledger.subscription(tenant, subscription_id)
    limit = arguments["limit"]
    rows = components().deliveries.attempts(
        subscription.id, before=arguments.get("before"), limit=limit
    )
    return {
        "attempts": [_present_attempt(row) for row in rows],
        "next_before": rows[-1].sequence if len(rows) == limit else None,
    }


@blp.route("/<subscription_id>/deliveries/<message_id>/redeliver", methods=["POST"])
@requires(Scope.SUBSCRIPTIONS_WRITE)
@blp.response(202, RedeliveredSchema)
@_problems(401, 403, 404, 429, 503)
def redeliver(tenant: str, subscription_id: str, message_id: str) -> ResponseReturnValue:
    """Send one message again (same `webhook-id`), from the start of the retry schedule."""
    subscription = components().ledger.subscription(tenant, subscription_id)
    components().delivery_projector.catch_up()
    if not components().deliveries.redeliver(subscription.id, message_id, now=components().clock()):
        raise DeliveryNotFoundError(f"no message {message_id!r} for this subscription")
    return {"redelivered": 1}, 202


@blp.route("/<subscription_id>/deliveries/redeliver", methods=["POST"])
@requires(Scope.SUBSCRIPTIONS_WRITE)
@blp.arguments(RedeliverFailedSchema(), unknown=RAISE)
@blp.response(202, RedeliveredSchema)
@_problems(401, 403, 404, 422, 429, 503)
def redeliver_failed(
    body: dict[str, Any], tenant: str, subscription_id: str
) -> ResponseReturnValue:
    """Send again every message queued since `since` whose delivery failed."""
    subscription = components().ledger.subscription(tenant, subscription_id)
    components().delivery_projector.catch_up()
    count = components().deliveries.redeliver_failed(
        subscription.id, since=body["since"], now=components().clock()
    )
    return {"redelivered": count}, 202


def _present(subscription: Subscription) -> dict[str, Any]:
    return {
        "id": subscription.subscription_id,
        "url": subscription.url,
        "types": list(subscription.types),
        "description": subscription.description,
        "state": "active" if subscription.disabled_at is None else "disabled",
        "disabled_reason": subscription.disabled_reason,
        "created_at": subscription.created_at,
    }


def _present_row(row: SubscriptionRow) -> dict[str, Any]:
    return {
        "id": row.subscription_id,
        "url": row.url,
        "types": list(row.types),
        "description": row.description,
        "state": row.state.value,
        "disabled_reason": row.disabled_reason,
        "created_at": row.created_at,
    }


def _present_attempt(row: AttemptRow) -> dict[str, Any]:
    return {
        "sequence": row.sequence,
        "message_id": row.message_id,
        "type": row.message_type,
        "at": row.at,
        "outcome": row.outcome.value,
        "status": row.status,
        "latency_ms": row.latency_ms,
        "response_excerpt": row.response_excerpt,
        "error": row.error,
    }
