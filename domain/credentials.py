"""API keys and webhook secrets: how they are made, and what of them is stored."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

API_KEY_PREFIX = "tk"
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105


class Scope(StrEnum):
    """What an API key may do."""

    EVENTS_WRITE = "events:write"
    REPORTS_READ = "reports:read"
    ADMIN = "admin"


DEFAULT_SCOPES = frozenset({Scope.EVENTS_WRITE, Scope.REPORTS_READ})


@dataclass(frozen=True)
class IssuedApiKey:
    """A freshly made API key: `token` is shown once; only `key_hash` is ever stored."""

    key_id: str
    token: str
    key_hash: str


def new_api_key(tenant: str) -> IssuedApiKey:
    """Make an API key `tk_<tenant>_<key id>_<secret>` with 256 bits of randomness.

    The tenant is part of the key (tenant names have no underscore), so a key names
    its tenant and a request with another tenant's key can be told apart from a bad key.
    """
    key_id = secrets.token_hex(6)
    token = f"{API_KEY_PREFIX}_{tenant}_{key_id}_{secrets.token_urlsafe(32)}"
    return IssuedApiKey(key_id=key_id, token=token, key_hash=hash_api_key(token))


def hash_api_key(token: str) -> str:
    """SHA-256 of the key: enough for 256-bit random keys, which need no slow hash."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_api_key(token: str) -> tuple[str, str] | None:
    """The (tenant, key id) a token names, or None when it is not shaped like a key."""
    parts = token.split("_", 3)
    if len(parts) != 4 or parts[0] != API_KEY_PREFIX or not all(parts[1:]):
        return None
    return parts[1], parts[2]


def hashes_match(stored_hash: str, token: str) -> bool:
    """Constant-time comparison of a stored key hash with a presented token."""
    return hmac.compare_digest(stored_hash, hash_api_key(token))


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()
