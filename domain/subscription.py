"""The Subscription aggregate: a tenant's webhook endpoint, the message types it wants, its secret.

The signing secret is recorded in the events because every delivery must be signed with it
(it cannot be hashed); it is shown once when created or rotated and never again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import urlsplit
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.errors import InvalidInputError, SubscriptionDeletedError
from domain.identity import tenant_id
from domain.timekeeping import utc_instant

MAX_URL: Final = 2048
MAX_DESCRIPTION: Final = 500
MAX_TYPES: Final = 32
ALL_TYPES: Final = "*"
TYPE_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")
SUBSCRIPTION_ID: Final = re.compile(r"sub_[0-9a-f]{16}")
NOT_YET: Final = datetime.min.replace(tzinfo=UTC)


def subscription_aggregate_id(tenant: str, subscription_id: str) -> UUID:
    """The Subscription aggregate id: uuid5 of the tenant and the public `sub_...` id."""
    return uuid5(uuid5(tenant_id(tenant), "subscription"), subscription_id)


def validate_url(url: str) -> str:
    """An absolute http(s) URL without credentials or fragment (addresses are checked at send)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL or url != url.strip():
        raise InvalidInputError("url", f"must be an absolute http(s) URL of 1-{MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInputError("url", "is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError("url", "must be an absolute http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise InvalidInputError("url", "must not contain credentials")
    if parts.fragment or url.endswith("#"):
        raise InvalidInputError("url", "must not contain a fragment")
    if port == 0:
        raise InvalidInputError("url", "port 0 is not a valid port")
    return url


def validate_types(types: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Message types like `promise.reminder`, or `*` for every type; at least one."""
    if not isinstance(types, list | tuple) or not 0 < len(types) <= MAX_TYPES:
        raise InvalidInputError("types", f"must list 1-{MAX_TYPES} message types")
    for kind in types:
        if kind != ALL_TYPES and (
            not isinstance(kind, str) or len(kind) > 64 or TYPE_PATTERN.fullmatch(kind) is None
        ):
            raise InvalidInputError("types", f"{kind!r} is not a message type (or '*')")
    return tuple(sorted(set(types)))


@dataclass(frozen=True)
class SigningSecret:
    """A signing secret; after a rotation the previous one signs too until `expires_at`."""

    secret: str
    added_at: datetime
    expires_at: datetime | None = None

    def is_valid_at(self, at: datetime) -> bool:
        """Whether deliveries at `at` are signed with this secret."""
        return self.expires_at is None or at < self.expires_at


class Subscription(Aggregate):
    """A tenant's webhook endpoint: where messages of some types are delivered, signed."""

    TOPIC = "troth:Subscription"

    def __init__(self) -> None:
        self.tenant: str = ""
        self.subscription_id: str = ""
        self.url: str = ""
        self.types: tuple[str, ...] = ()
        self.description: str | None = None
        self.created_at: datetime = NOT_YET
        self.secrets: list[SigningSecret] = []
        self.is_deleted: bool = False
        self.disabled_at: datetime | None = None
        self.disabled_reason: str | None = None

    class Event(Aggregate.Event):
        pass

    class Creation(Event, Aggregate.Created):
        TOPIC = "troth:Subscription.Creation"

    class Created(Creation):
        """A subscription was created with its first signing secret."""

        TOPIC = "troth:Subscription.Created"
        tenant: str
        subscription_id: str
        url: str
        types: list[str]
        description: str | None
        secret: str
        at: datetime

        def apply(self, aggregate: Subscription) -> None:
            aggregate.tenant = self.tenant
            aggregate.subscription_id = self.subscription_id
            aggregate.url = self.url
            aggregate.types = tuple(self.types)
            aggregate.description = self.description
            aggregate.created_at = self.at
            aggregate.secrets = [SigningSecret(self.secret, self.at)]

    class SecretRotated(Event):
        """A new signing secret; the previous ones also sign until `previous_expire_at`."""

        TOPIC = "troth:Subscription.SecretRotated"
        secret: str
        at: datetime
        previous_expire_at: datetime

        def apply(self, aggregate: Subscription) -> None:
            kept = []
            for old in aggregate.secrets:
                if not old.is_valid_at(self.at):
                    continue
                expires = self.previous_expire_at
                if old.expires_at is not None:
                    expires = min(old.expires_at, expires)
                kept.append(SigningSecret(old.secret, old.added_at, expires))
            aggregate.secrets = [*kept, SigningSecret(self.secret, self.at)]

    class Disabled(Event):
        """Deliveries stopped (410 Gone, the receiver asked, or 5 days of failures)."""

        TOPIC = "troth:Subscription.Disabled"
        reason: str
        at: datetime

        def apply(self, aggregate: Subscription) -> None:
            aggregate.disabled_at = self.at
            aggregate.disabled_reason = self.reason

    class Enabled(Event):
        """Deliveries resumed; messages kept while disabled are delivered."""

        TOPIC = "troth:Subscription.Enabled"
        at: datetime

        def apply(self, aggregate: Subscription) -> None:
            aggregate.disabled_at = None
            aggregate.disabled_reason = None

    class Deleted(Event):
        """The tenant deleted the subscription; nothing more is delivered to it."""

        TOPIC = "troth:Subscription.Deleted"
        at: datetime

        def apply(self, aggregate: Subscription) -> None:
            aggregate.is_deleted = True

    @classmethod
    def create(
        cls,
        tenant: str,
        *,
        subscription_id: str,
        url: str,
        types: list[str] | tuple[str, ...],
        description: str | None,
        secret: str,
        at: datetime,
    ) -> Subscription:
        """Create a subscription under a tenant-scoped id."""
        if description is not None and len(description) > MAX_DESCRIPTION:
            raise InvalidInputError("description", f"must be at most {MAX_DESCRIPTION} characters")
        return cls._create(
            cls.Created,
            id=subscription_aggregate_id(tenant, subscription_id),
            tenant=tenant,
            subscription_id=subscription_id,
            url=validate_url(url),
            types=list(validate_types(types)),
            description=description,
            secret=secret,
            at=utc_instant("at", at),
        )

    @property
    def is_active(self) -> bool:
        """Whether messages are being delivered."""
        return not self.is_deleted and self.disabled_at is None

    def rotate_secret(self, secret: str, *, at: datetime, grace: timedelta) -> None:
        """Sign with a new secret from now on, and with the current ones for `grace` more."""
        self._require_not_deleted()
        at = utc_instant("at", at)
        self.trigger_event(self.SecretRotated, secret=secret, at=at, previous_expire_at=at + grace)

    def disable(self, *, reason: str, at: datetime) -> bool:
        """Stop deliveries; False when already disabled or deleted."""
        if not self.is_active:
            return False
        self.trigger_event(self.Disabled, reason=reason, at=utc_instant("at", at))
        return True

    def enable(self, *, at: datetime) -> bool:
        """Resume deliveries; False when already active."""
        self._require_not_deleted()
        if self.disabled_at is None:
            return False
        self.trigger_event(self.Enabled, at=utc_instant("at", at))
        return True

    def delete(self, *, at: datetime) -> bool:
        """Delete the subscription; False when already deleted."""
        if self.is_deleted:
            return False
        self.trigger_event(self.Deleted, at=utc_instant("at", at))
        return True

    def secrets_valid_at(self, at: datetime) -> list[str]:
        """The secrets that sign a delivery at `at`, newest first."""
        return [s.secret for s in reversed(self.secrets) if s.is_valid_at(at)]

    def _require_not_deleted(self) -> None:
        if self.is_deleted:
            raise SubscriptionDeletedError(f"subscription {self.subscription_id} was deleted")
