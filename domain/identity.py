"""Deterministic aggregate ids: the same client key always names the same aggregate.

A repeated create therefore collides with the stored one instead of making a second
aggregate, which is what turns webhook redeliveries into "already recorded".
"""

from __future__ import annotations

import re
from functools import lru_cache
from uuid import UUID, uuid5

from domain.errors import InvalidInputError

TROTH_NAMESPACE = UUID("5b0c2d1e-7f2a-4c1b-9a53-1f0e6f3f7d21")
KEY_PATTERN = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
# A promise id is a client id, or a recurring commitment's occurrence: `<commitment_id>/<date>`.
OCCURRENCE_DATE_LENGTH = len("/2026-01-01")
PROMISE_KEY_PATTERN = re.compile(
    rf"[A-Za-z0-9._:@-]{{1,{128 - OCCURRENCE_DATE_LENGTH}}}/\d{{4}}-\d{{2}}-\d{{2}}"
    r"|[A-Za-z0-9._:@-]{1,128}"
)


def validate_key(field: str, value: str) -> str:
    """Return `value` if it is a valid client id (1-128 of `[A-Za-z0-9._:@-]`)."""
    if not isinstance(value, str) or KEY_PATTERN.fullmatch(value) is None:
        raise InvalidInputError(field, "must be 1-128 characters of letters, digits and ._:@-")
    return value


def validate_promise_key(field: str, value: str) -> str:
    """Return `value` if it is a valid promise id: a client id, or `<commitment_id>/<date>`."""
    if not isinstance(value, str) or PROMISE_KEY_PATTERN.fullmatch(value) is None:
        raise InvalidInputError(
            field,
            "must be 1-128 characters of letters, digits and ._:@- "
            "(or a commitment id, / and an occurrence date)",
        )
    return value


@lru_cache(maxsize=4096)
def tenant_id(tenant: str) -> UUID:
    """The Tenant aggregate id for a tenant name."""
    return uuid5(TROTH_NAMESPACE, f"tenant/{tenant}")


@lru_cache(maxsize=4096)
def _namespace(tenant: str, kind: str) -> UUID:
    return uuid5(tenant_id(tenant), kind)


@lru_cache(maxsize=65536)
def promise_id(tenant: str, promise_key: str) -> UUID:
    """The Promise aggregate id: uuid5 of the tenant and the client's promise id."""
    return uuid5(_namespace(tenant, "promise"), promise_key)


def person_id(tenant: str, person_key: str) -> UUID:
    """The Person aggregate id within a tenant."""
    return uuid5(_namespace(tenant, "person"), person_key)


def commitment_id(tenant: str, commitment_key: str) -> UUID:
    """The Commitment aggregate id within a tenant."""
    return uuid5(_namespace(tenant, "commitment"), commitment_key)
