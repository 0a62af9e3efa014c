"""Share links: a read-only link to one person's dashboard and report, for a counsellor."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from flask import url_for
from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validates
from werkzeug.exceptions import NotFound

from domain.credentials import Scope
from domain.share import ShareLink, ShareLinks
from projections.views import SubjectKey
from service.api.schemas import ProblemSchema
from service.auth import requires
from service.context import components
from service.sharing import SHARE_PARAMETER, mint, require_shares_on
from service.webhooks.envelopes import Duration, StrictSchema, key_field

MAX_EXPIRY: Final = timedelta(days=365)

blp = Blueprint(
    "shares",
    __name__,
    url_prefix="/v1/tenants/<tenant>/people/<person>/shares",
    description="Read-only share links to a person's dashboard (Bearer key with reports:read).",
)


class ShareRequestSchema(StrictSchema):
    """How long the link works, and optionally the one promisee it shows."""

    expires_in = Duration(
        required=True, metadata={"description": "ISO-8601 duration, at most P365D"}
    )
    promisee = key_field(
        allow_none=True,
        metadata={"description": "show only the promises towards this person"},
    )

    @validates("expires_in")
    def _at_most_a_year(self, value: timedelta, **_: Any) -> None:
        if value > MAX_EXPIRY:
            raise ValidationError("must be at most P365D")


class ShareSchema(Schema):
    """A share link as listed (never its token)."""

    share_id = fields.String(required=True)
    person = fields.String(required=True)
    promisee = fields.String(allow_none=True, required=True)
    created_at = fields.AwareDateTime(required=True)
    expires_at = fields.AwareDateTime(required=True)
    revoked_at = fields.AwareDateTime(allow_none=True, required=True)
    is_active = fields.Boolean(required=True)


class NewShareSchema(ShareSchema):
    """A new share link: `url` carries the token, shown only in this answer."""

    url = fields.String(required=True, metadata={"description": "the dashboard, read-only"})
    report_url = fields.String(required=True, metadata={"description": "the report as JSON"})
    token = fields.String(required=True)


class SharePageSchema(Schema):
    """A person's share links, newest first."""

    items = fields.List(fields.Nested(ShareSchema), required=True)


def _problems(view: Any) -> Any:
    for status in (401, 403, 404, 409, 422, 429):
        view = blp.alt_response(
            status, schema=ProblemSchema, content_type="application/problem+json"
        )(view)
    return blp.doc(security=[{"bearerAuth": []}])(view)


@blp.route("", methods=["POST"])
@requires(Scope.REPORTS_READ)
@blp.arguments(ShareRequestSchema())
@blp.response(201, NewShareSchema)
@_problems
def create_share(body: dict[str, Any], tenant: str, person: str) -> ResponseReturnValue:
    """Make a read-only link to this person's dashboard and report (the token is shown once)."""
    key = require_shares_on()
    built = components()
    promisee = body.get("promisee")
    if not built.reader.exists(SubjectKey(tenant, "promiser", person)):
        raise NotFound("No promises are recorded for this person.")
    # (A promisee equal to the person is refused by the share book, naming the field.)
    if promisee not in (None, person) and not built.reader.exists(
        SubjectKey(tenant, "pair", person, promisee)
    ):
        raise NotFound(f"No promises of this person to {promisee!r} are recorded.")
    now = built.clock()
    minted = mint(key, tenant, person)
    link = ShareLinks(built.ledger).create(
        tenant,
        person,
        share_id=minted.share_id,
        promisee=promisee,
        token_hash=minted.token_hash,
        expires_at=now + body["expires_in"],
        at=now,
    )
    place = {"tenant": tenant, "person": person, SHARE_PARAMETER: minted.token}
    return {
        **_listed(link, now),
        "url": url_for("dashboard.dashboard", _external=True, **place),
        "report_url": url_for("dashboard.report_download", _external=True, **place),
        "token": minted.token,
    }, 201


@blp.route("", methods=["GET"])
@requires(Scope.REPORTS_READ)
@blp.response(200, SharePageSchema)
@_problems
def list_shares(tenant: str, person: str) -> dict[str, Any]:
    """This person's share links, active or not, newest first."""
    now = components().clock()
    links = ShareLinks(components().ledger).links(tenant, person)
    return {"items": [_listed(link, now) for link in links]}


@blp.route("/<share_id>", methods=["DELETE"])
@requires(Scope.REPORTS_READ)
@blp.response(204)
@_problems
def revoke_share(tenant: str, person: str, share_id: str) -> ResponseReturnValue:
    """Revoke a share link: it opens nothing from the next request on."""
    ShareLinks(components().ledger).revoke(tenant, person, share_id, at=components().clock())
    return "", 204


def _listed(link: ShareLink, now: Any) -> dict[str, Any]:
    return {
        "share_id": link.share_id,
        "person": link.person,
        "promisee": link.promisee,
        "created_at": link.created_at,
        "expires_at": link.expires_at,
        "revoked_at": link.revoked_at,
        "is_active": link.is_active(now),
    }
