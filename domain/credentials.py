"""API keys and webhook secrets: how they are made, and what of them is stored."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

API_KEY_PREFIX = "tk"
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105


class Scope(StrEnum):
    """What an API key may do."""

    EVENTS_WRITE = "events:write"
    REPORTS_READ = "reports:read"
    SUBSCRIPTIONS_WRITE = "subscriptions:write"
    ADMIN = "admin"


DEFAULT_SCOPES = frozenset({Scope.EVENTS_WRITE, Scope.REPORTS_READ, Scope.SUBSCRIPTIONS_WRITE})


@dataclass(frozen=True)
class IssuedApiKey:
    """A freshly made API key: `token` is shown once; only `key_hash` is ever stored."""

    key_id: str
    token: str
    key_hash: str


KEY_ID_BYTES: Final = 6
SECRET_BYTES: Final = 32
_API_KEY_SHAPE: Final = re.compile(
    rf"{API_KEY_PREFIX}_(?P<tenant>.+)_(?P<key_id>[0-9a-f]{{{2 * KEY_ID_BYTES}}})"
    rf"_[A-Za-z0-9_-]{{{math.ceil(SECRET_BYTES * 4 / 3)}}}"
)


def new_api_key(tenant: str) -> IssuedApiKey:
    """Make an API key `tk_<tenant>_<key id>_<secret>` with 256 bits of randomness.

    The tenant is part of the key, so a key names its tenant and a request with another
    tenant's key can be told apart from a bad key. Key id and secret have fixed lengths, so
    the key parses even when the tenant's name holds underscores.
    """
    key_id = secrets.token_hex(KEY_ID_BYTES)
    token = f"{API_KEY_PREFIX}_{tenant}_{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
    return IssuedApiKey(key_id=key_id, token=token, key_hash=hash_api_key(token))


def hash_api_key(token: str) -> str:
    """SHA-256 of the key: enough for 256-bit random keys, which need no slow hash."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_api_key(token: str) -> tuple[str, str] | None:
    """The (tenant, key id) a token names, or None when it is not shaped like a key."""
    found = _API_KEY_SHAPE.fullmatch(token)
    if found is None:
        return None
    return found["tenant"], found["key_id"]


def hashes_match(stored_hash: str, token: str) -> bool:
    """Constant-time comparison of a stored key hash with a presented token."""
    return hmac.compare_digest(stored_hash, hash_api_key(token))


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()
