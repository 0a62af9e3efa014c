"""The operator's tenant administration over HTTP (`TROTH_ADMIN_TOKEN`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from domain.credentials import Scope
from service.api.schemas import ProblemSchema
from service.auth import requires_admin
from service.context import components
from service.webhooks.envelopes import key_field

blp = Blueprint(
    "admin",
    __name__,
    url_prefix="/v1/admin",
    description="Tenant administration for operators (Bearer TROTH_ADMIN_TOKEN).",
)


class TenantCreateSchema(Schema):
    """A new tenant's name."""

    name = key_field(required=True)


class TenantCredentialsSchema(Schema):
    """A new tenant's first credentials, shown once."""

    tenant = fields.String(required=True)
    api_key = fields.String(required=True)
    webhook_secret = fields.String(required=True)


class KeySchema(Schema):
    """An API key as listed (never the key itself)."""

    key_id = fields.String(required=True)
    scopes = fields.List(fields.String(), required=True)
    issued_at = fields.AwareDateTime(required=True)
    revoked_at = fields.AwareDateTime(allow_none=True)


class TenantSchema(Schema):
    """A tenant as listed."""

    name = fields.String(required=True)
    registered_at = fields.AwareDateTime(required=True)
    api_keys = fields.List(fields.Nested(KeySchema), required=True)
    active_webhook_secrets = fields.Integer(required=True)


class KeyRequestSchema(Schema):
    """Scopes for a new API key."""

    scopes = fields.List(
        fields.String(validate=validate.OneOf([s.value for s in Scope])),
        required=True,
        validate=validate.Length(min=1),
    )


class NewKeySchema(Schema):
    """A new API key, shown once."""

    key_id = fields.String(required=True)
    api_key = fields.String(required=True)
    scopes = fields.List(fields.String(), required=True)


class RotateRequestSchema(Schema):
    """How long the current secrets stay valid."""

    grace_hours = fields.Float(load_default=24.0, validate=validate.Range(min=0, max=24 * 30))


class NewSecretSchema(Schema):
    """A new webhook secret, shown once."""

    webhook_secret = fields.String(required=True)


ERRORS = (400, 401, 403, 404, 409, 422)


def _problems(view: Any) -> Any:
    for status in ERRORS:
        view = blp.alt_response(
            status, schema=ProblemSchema, content_type="application/problem+json"
        )(view)
    return blp.doc(security=[{"bearerAuth": []}])(view)


@blp.route("/tenants", methods=["POST"])
@requires_admin
@blp.arguments(TenantCreateSchema())
@blp.response(201, TenantCredentialsSchema)
@_problems
def create_tenant(body: dict[str, Any]) -> ResponseReturnValue:
    """Register a tenant; its API key and webhook secret are shown only in this answer."""
    created = components().ledger.register_tenant(body["name"], at=components().clock())
    return {
        "tenant": created.tenant,
        "api_key": created.api_key,
        "webhook_secret": created.webhook_secret,
    }, 201


@blp.route("/tenants", methods=["GET"])
@requires_admin
@blp.response(200, TenantSchema(many=True))
@_problems
def list_tenants() -> list[dict[str, Any]]:
    """Every tenant, with its keys (ids and scopes only)."""
    ledger = components().ledger
    return [
        {
            "name": summary.name,
            "registered_at": summary.registered_at,
            "active_webhook_secrets": summary.active_webhook_secrets,
            "api_keys": [
                {
                    "key_id": k.key_id,
                    "scopes": sorted(s.value for s in k.scopes),
                    "issued_at": k.issued_at,
                    "revoked_at": k.revoked_at,
                }
                for k in summary.api_keys
            ],
        }
        for summary in map(ledger.tenant, ledger.tenant_names())
    ]


@blp.route("/tenants/<tenant>/api-keys", methods=["POST"])
@requires_admin
@blp.arguments(KeyRequestSchema())
@blp.response(201, NewKeySchema)
@_problems
def issue_key(body: dict[str, Any], tenant: str) -> ResponseReturnValue:
    """Issue another API key with the given scopes (shown only in this answer)."""
    issued = components().ledger.issue_api_key(
        tenant, scopes=frozenset(Scope(s) for s in body["scopes"]), at=components().clock()
    )
    return {
        "key_id": issued.key_id,
        "api_key": issued.api_key,
        "scopes": sorted(s.value for s in issued.scopes),
    }, 201


@blp.route("/tenants/<tenant>/api-keys/<key_id>", methods=["DELETE"])
@requires_admin
@blp.response(204)
@_problems
def revoke_key(tenant: str, key_id: str) -> ResponseReturnValue:
    """Revoke an API key at once."""
    components().ledger.revoke_api_key(tenant, key_id, at=components().clock())
    return "", 204


@blp.route("/tenants/<tenant>/webhook-secrets/rotate", methods=["POST"])
@requires_admin
@blp.arguments(RotateRequestSchema(), required=False)
@blp.response(201, NewSecretSchema)
@_problems
def rotate_secret(body: dict[str, Any], tenant: str) -> ResponseReturnValue:
    """Add a new webhook secret; the current ones stay valid for `grace_hours`."""
    secret = components().ledger.rotate_webhook_secret(
        tenant, at=components().clock(), grace=timedelta(hours=body["grace_hours"])
    )
    return {"webhook_secret": secret}, 201
