"""Who may read a person's dashboard and report: an API key, or a share link's token.

A share token is an itsdangerous-signed `[tenant, person, share id, 256 random bits]`
under `TROTH_SHARE_KEY`: the signature turns away forged or altered tokens without a
database read, the random part makes it unguessable, and only its SHA-256 is recorded, so
the store cannot leak usable links. Every request reads the person's share book afresh,
so a revocation or an expiry applies to the very next request.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, Final, TypeVar, cast

from flask import g, request
from itsdangerous import BadSignature, URLSafeSerializer
from werkzeug.exceptions import Forbidden, NotFound

from domain.credentials import Scope, parse_api_key
from domain.errors import AuthenticationError
from domain.share import ShareLinks
from projections.views import SubjectKey
from service.auth import bearer_token
from service.context import components

F = TypeVar("F", bound=Callable[..., Any])

SHARE_PARAMETER: Final = "share"
SALT: Final = "troth.share-link.v1"
SHARES_OFF: Final = "Share links are off: the operator has not set TROTH_SHARE_KEY."


@dataclass(frozen=True)
class Reader:
    """Who reads: a tenant's key (any person), or a share link (one person, maybe one promisee)."""

    tenant: str
    person: str | None = None
    promisee: str | None = None
    share_id: str | None = None

    @property
    def is_share(self) -> bool:
        """Whether the reader came with a share link (read-only, one person)."""
        return self.share_id is not None


@dataclass(frozen=True)
class MintedToken:
    """A new share token (shown once) and what is recorded of it."""

    share_id: str
    token: str
    token_hash: str


def token_hash(token: str) -> str:
    """SHA-256 of a token: enough for one carrying 256 random bits."""
    return hashlib.sha256(token.encode()).hexdigest()


def mint(key: str, tenant: str, person: str) -> MintedToken:
    """A new unguessable token signed with `key`, naming the tenant, person and link."""
    share_id = "shr_" + secrets.token_hex(8)
    token = _serializer(key).dumps([tenant, person, share_id, secrets.token_urlsafe(32)])
    return MintedToken(share_id, str(token), token_hash(str(token)))


def open_token(key: str, token: str) -> tuple[str, str, str]:
    """The (tenant, person, share id) a token names; AuthenticationError when forged."""
    try:
        payload = _serializer(key).loads(token)
    except BadSignature:
        raise AuthenticationError("invalid share token") from None
    if not (
        isinstance(payload, list) and len(payload) == 4 and all(isinstance(p, str) for p in payload)
    ):
        raise AuthenticationError("invalid share token")
    return payload[0], payload[1], payload[2]


def reads_person(view: F) -> F:
    """Let the view run for a key with `reports:read` of the path's tenant, or for a share
    token of the path's tenant and person (from `?share=` or `Authorization: Bearer`).

    A token names one tenant and person: for any other it answers 404, like a person that
    does not exist; a revoked, expired or forged token answers 401.
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.reader = _reader(kwargs["tenant"], kwargs["person"])
        return view(*args, **kwargs)

    return cast(F, wrapper)


def current_reader() -> Reader:
    """The reader of the current request (set by `reads_person`)."""
    reader: Reader = g.reader
    return reader


def subject(tenant: str, person: str, promisee: str | None, category: str | None) -> SubjectKey:
    """The report subject asked for, within what the reader may see."""
    limit = current_reader().promisee
    if limit is not None:
        if category is not None or promisee not in (None, limit):
            raise NotFound("This link shows only the promises towards one person.")
        promisee = limit
    if promisee is not None:
        return SubjectKey(tenant, "pair", person, promisee)
    if category is not None:
        return SubjectKey(tenant, "category", person, category)
    return SubjectKey(tenant, "promiser", person)


def _reader(tenant: str, person: str) -> Reader:
    token = request.args.get(SHARE_PARAMETER)
    if token is None:
        presented = bearer_token()
        if parse_api_key(presented) is not None:
            return _key_reader(tenant, presented)
        token = presented
    built = components()
    key = built.settings.share_key
    if not key:
        raise AuthenticationError(SHARES_OFF)
    named_tenant, named_person, share_id = open_token(key, token)
    if (named_tenant, named_person) != (tenant, person):
        raise NotFound("This link is for someone else.")
    link = ShareLinks(built.ledger).admit(
        tenant, person, share_id, token_hash(token), at=built.clock()
    )
    if link is None:
        raise AuthenticationError("this share link has expired or was revoked")
    return Reader(tenant, person, link.promisee, share_id)


def _key_reader(tenant: str, token: str) -> Reader:
    principal = components().ledger.authenticate(token)
    if principal.tenant != tenant:
        raise NotFound("No such tenant for this key.")
    if Scope.REPORTS_READ not in principal.scopes:
        raise Forbidden(f"This key lacks the {Scope.REPORTS_READ.value!r} scope.")
    return Reader(tenant)


def _serializer(key: str) -> URLSafeSerializer:
    return URLSafeSerializer(key, salt=SALT)


def require_shares_on() -> str:
    """The signing key; 403 when share links are off."""
    key = components().settings.share_key
    if not key:
        raise Forbidden(SHARES_OFF)
    return key
