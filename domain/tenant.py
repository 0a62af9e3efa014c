"""The Tenant aggregate: one integrating organisation, its credentials and scoring policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from eventsourcing.domain import Aggregate

from domain.credentials import Scope, hashes_match
from domain.errors import ApiKeyNotFoundError, InvalidInputError
from domain.identity import tenant_id, validate_key
from domain.policy import ScoringPolicy
from domain.timekeeping import utc_instant


@dataclass(frozen=True)
class ApiKey:
    """What is stored of an API key: never the key itself, only its hash."""

    key_id: str
    key_hash: str
    scopes: frozenset[Scope]
    issued_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class WebhookSecret:
    """A signing secret for incoming webhooks; several may be valid during a rotation."""

    secret_id: str
    secret: str
    added_at: datetime
    expires_at: datetime | None = None

    def is_valid_at(self, at: datetime) -> bool:
        """Whether signatures made with this secret are accepted at `at`."""
        return self.expires_at is None or at < self.expires_at


class Tenant(Aggregate):
    """A tenant: every promise, person and report belongs to exactly one."""

    TOPIC = "troth:Tenant"

    def __init__(self) -> None:
        self.name: str = ""
        self.registered_at: datetime = datetime.min.replace(tzinfo=UTC)
        self.api_keys: dict[str, ApiKey] = {}
        self.webhook_secrets: dict[str, WebhookSecret] = {}
        self.scoring_policy: ScoringPolicy = ScoringPolicy()

    class Event(Aggregate.Event):
        pass

    class Created(Event, Aggregate.Created):
        TOPIC = "troth:Tenant.Created"

    class Registered(Created):
        """The tenant was registered under a unique name."""

        TOPIC = "troth:Tenant.Registered"
        name: str
        at: datetime

        def apply(self, aggregate: Tenant) -> None:
            aggregate.name = self.name
            aggregate.registered_at = self.at

    class ApiKeyIssued(Event):
        """An API key was issued; only its hash is recorded."""

        TOPIC = "troth:Tenant.ApiKeyIssued"
        key_id: str
        key_hash: str
        scopes: list[str]
        at: datetime

        def apply(self, aggregate: Tenant) -> None:
            aggregate.api_keys[self.key_id] = ApiKey(
                key_id=self.key_id,
                key_hash=self.key_hash,
                scopes=frozenset(Scope(s) for s in self.scopes),
                issued_at=self.at,
            )

    class ApiKeyRevoked(Event):
        """An API key was revoked; it authenticates nothing from `at` on."""

        TOPIC = "troth:Tenant.ApiKeyRevoked"
        key_id: str
        at: datetime

        def apply(self, aggregate: Tenant) -> None:
            key = aggregate.api_keys[self.key_id]
            aggregate.api_keys[self.key_id] = ApiKey(
                key_id=key.key_id,
                key_hash=key.key_hash,
                scopes=key.scopes,
                issued_at=key.issued_at,
                revoked_at=self.at,
            )

    class WebhookSecretAdded(Event):
        """A webhook signing secret was added."""

        TOPIC = "troth:Tenant.WebhookSecretAdded"
        secret_id: str
        secret: str
        at: datetime

        def apply(self, aggregate: Tenant) -> None:
            aggregate.webhook_secrets[self.secret_id] = WebhookSecret(
                secret_id=self.secret_id, secret=self.secret, added_at=self.at
            )

    class WebhookSecretExpiring(Event):
        """A webhook secret stops being accepted at `expires_at` (rotation grace period)."""

        TOPIC = "troth:Tenant.WebhookSecretExpiring"
        secret_id: str
        expires_at: datetime

        def apply(self, aggregate: Tenant) -> None:
            old = aggregate.webhook_secrets[self.secret_id]
            aggregate.webhook_secrets[self.secret_id] = WebhookSecret(
                secret_id=old.secret_id,
                secret=old.secret,
                added_at=old.added_at,
                expires_at=self.expires_at,
            )

    class ScoringPolicyChanged(Event):
        """The tenant's scoring parameters changed."""

        TOPIC = "troth:Tenant.ScoringPolicyChanged"
        policy: ScoringPolicy

        def apply(self, aggregate: Tenant) -> None:
            aggregate.scoring_policy = self.policy

    @classmethod
    def register(cls, name: str, *, at: datetime) -> Tenant:
        """Register a tenant; its id follows from the name, so names are unique."""
        validate_key("name", name)
        return cls._create(cls.Registered, id=tenant_id(name), name=name, at=utc_instant("at", at))

    def issue_api_key(
        self, *, key_id: str, key_hash: str, scopes: frozenset[Scope], at: datetime
    ) -> None:
        """Record a new API key by its hash."""
        if not scopes:
            raise InvalidInputError("scopes", "an API key needs at least one scope")
        self.trigger_event(
            self.ApiKeyIssued,
            key_id=key_id,
            key_hash=key_hash,
            scopes=sorted(s.value for s in scopes),
            at=utc_instant("at", at),
        )

    def revoke_api_key(self, key_id: str, *, at: datetime) -> None:
        """Revoke an API key; revoking a revoked key changes nothing."""
        key = self.api_keys.get(key_id)
        if key is None:
            raise ApiKeyNotFoundError(f"no API key {key_id!r}")
        if key.revoked_at is None:
            self.trigger_event(self.ApiKeyRevoked, key_id=key_id, at=utc_instant("at", at))

    def add_webhook_secret(self, *, secret_id: str, secret: str, at: datetime) -> None:
        """Add a webhook signing secret."""
        self.trigger_event(
            self.WebhookSecretAdded, secret_id=secret_id, secret=secret, at=utc_instant("at", at)
        )

    def expire_webhook_secrets(self, *, expires_at: datetime) -> None:
        """Let every secret valid now stop at `expires_at` (unless it stops sooner)."""
        expires_at = utc_instant("expires_at", expires_at)
        for secret in list(self.webhook_secrets.values()):
            if secret.expires_at is None or secret.expires_at > expires_at:
                self.trigger_event(
                    self.WebhookSecretExpiring, secret_id=secret.secret_id, expires_at=expires_at
                )

    def change_scoring_policy(self, policy: ScoringPolicy) -> None:
        """Adopt new scoring parameters."""
        if policy != self.scoring_policy:
            self.trigger_event(self.ScoringPolicyChanged, policy=policy)

    def scopes_for(self, key_id: str, token: str) -> frozenset[Scope] | None:
        """The scopes of a presented key, or None when it is unknown, wrong or revoked."""
        key = self.api_keys.get(key_id)
        if key is None or key.revoked_at is not None or not hashes_match(key.key_hash, token):
            return None
        return key.scopes

    def secrets_valid_at(self, at: datetime) -> list[str]:
        """The webhook secrets that verify signatures at `at`, newest first."""
        valid = [s for s in self.webhook_secrets.values() if s.is_valid_at(at)]
        return [s.secret for s in sorted(valid, key=lambda s: s.added_at, reverse=True)]
