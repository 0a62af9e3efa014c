"""The Ledger application: Troth's write-side use cases over the event store."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import ApplicationRecorder, IntegrityError, JSONTranscoder

from domain.commitment import Commitment, CommitmentTerms
from domain.credentials import (
    DEFAULT_SCOPES,
    Scope,
    new_api_key,
    new_webhook_secret,
    parse_api_key,
)
from domain.errors import (
    AuthenticationError,
    ConcurrentWriteError,
    InvalidInputError,
    PersonNotFoundError,
    PromiseConflictError,
    PromiseNotFoundError,
    SubscriptionNotFoundError,
    TenantAlreadyExistsError,
    TenantNotFoundError,
)
from domain.group_commit import GroupCommitter
from domain.identity import person_id, promise_id, tenant_id, validate_promise_key
from domain.message import Message
from domain.person import Person, QuietHours
from domain.policy import ScoringPolicy
from domain.promise import Promise, PromiseStatus, PromiseTerms
from domain.receipts import Receipt, ReceiptRecorder

# Imported for its event topics: every process reading the log must be able to decode them.
from domain.share import ShareBook  # noqa: F401
from domain.subscription import Subscription, subscription_aggregate_id
from domain.tenant import Tenant
from domain.transcodings import TRANSCODINGS
from domain.unit_of_work import UNCHANGED, Change, Unchanged, UnitOfWork, Written

DEFAULT_ROTATION_GRACE: Final = timedelta(hours=24)
TENANT_CACHE_SECONDS: Final = 2.0
TENANT_REGISTERED_TOPIC: Final = Tenant.Registered.TOPIC
OCCURRENCES_PER_PASS: Final = 1000

A = TypeVar("A", bound=Aggregate)

__all__ = ["UNCHANGED", "Ledger", "TenantCredentials", "Unchanged", "Written"]


@dataclass(frozen=True)
class TenantCredentials:
    """A new tenant's first credentials; the only time the key and secret are visible."""

    tenant: str
    tenant_id: UUID
    key_id: str
    api_key: str
    webhook_secret: str
    position: int


@dataclass(frozen=True)
class Principal:
    """The tenant an API key belongs to and the scopes it grants."""

    tenant: str
    scopes: frozenset[Scope]


@dataclass(frozen=True)
class IssuedKey:
    """A newly issued API key (shown once)."""

    key_id: str
    api_key: str
    scopes: frozenset[Scope]


@dataclass(frozen=True)
class KeySummary:
    """An API key as listed: never the key itself."""

    key_id: str
    scopes: frozenset[Scope]
    issued_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class TenantSummary:
    """A tenant as listed by administrators."""

    name: str
    tenant_id: UUID
    registered_at: datetime
    api_keys: tuple[KeySummary, ...]
    active_webhook_secrets: int
    scoring_policy: ScoringPolicy


@dataclass(frozen=True)
class NewSubscription:
    """A new webhook subscription; the only time its signing secret is visible."""

    subscription_id: str
    secret: str
    position: int


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to queue: the arguments of `Ledger.queue_message`."""

    tenant: str
    message_id: str
    type: str
    at: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class HistoryEntry:
    """One recorded event of a promise, as facts for people to read."""

    event: str
    version: int
    recorded_at: datetime
    facts: dict[str, Any]


@dataclass(frozen=True)
class PromiseState:
    """A promise's current state and its full history."""

    aggregate_id: UUID
    terms: PromiseTerms
    status: PromiseStatus
    outcome_at: datetime | None
    is_late: bool
    version: int
    history: tuple[HistoryEntry, ...] = field(default=())


@dataclass(frozen=True)
class PersonState:
    """A person's settings."""

    tenant: str
    person: str
    timezone: str
    quiet_hours: QuietHours | None


HIDDEN_EVENT_FIELDS: Final = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic", "tenant", "key"}
)


class Ledger(Application[UUID]):
    """Use cases of the write model; every write returns a `Written` with its position."""

    name = "ledger"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self._tenant_cache: dict[str, tuple[float, Tenant]] = {}
        self._checked_tenants: dict[str, Tenant] = {}
        self.committer = GroupCommitter(self)

    def event_streams(self, aggregate_ids: Iterable[UUID]) -> dict[UUID, list[Any]]:
        """The domain events of many aggregates, read in one query, in version order."""
        streams: dict[UUID, list[Any]] = {}
        for stored in self.receipt_recorder.select_event_streams(list(aggregate_ids)):
            event = self.mapper.to_domain_event(stored)
            streams.setdefault(UUID(str(stored.originator_id)), []).append(event)
        return streams

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        for transcoding in TRANSCODINGS:
            transcoder.register(transcoding)

    def head_position(self) -> int:
        """The notification id of the newest event in the log (0 when empty)."""
        return self.recorder.max_notification_id() or 0

    # Tenants and credentials

    def register_tenant(self, name: str, *, at: datetime) -> TenantCredentials:
        """Register a tenant with one API key (default scopes) and one webhook secret."""
        tenant = Tenant.register(name, at=at)
        issued = new_api_key(name)
        tenant.issue_api_key(
            key_id=issued.key_id, key_hash=issued.key_hash, scopes=DEFAULT_SCOPES, at=at
        )
        secret = new_webhook_secret()
        tenant.add_webhook_secret(secret_id=secrets.token_hex(6), secret=secret, at=at)
        try:
            recordings = self.save(tenant)
        except IntegrityError:
            raise TenantAlreadyExistsError(f"tenant {name!r} already exists") from None
        return TenantCredentials(
            tenant=name,
            tenant_id=tenant.id,
            key_id=issued.key_id,
            api_key=issued.token,
            webhook_secret=secret,
            position=recordings[-1].notification.id,
        )

    def issue_api_key(self, tenant: str, *, scopes: frozenset[Scope], at: datetime) -> IssuedKey:
        """Issue another API key for a tenant."""
        aggregate = self._tenant(tenant)
        issued = new_api_key(tenant)
        aggregate.issue_api_key(
            key_id=issued.key_id, key_hash=issued.key_hash, scopes=scopes, at=at
        )
        self._save(aggregate)
        return IssuedKey(key_id=issued.key_id, api_key=issued.token, scopes=scopes)

    def revoke_api_key(self, tenant: str, key_id: str, *, at: datetime) -> Written:
        """Revoke one of a tenant's API keys."""
        aggregate = self._tenant(tenant)
        aggregate.revoke_api_key(key_id, at=at)
        return self._save(aggregate)

    def rotate_webhook_secret(
        self, tenant: str, *, at: datetime, grace: timedelta = DEFAULT_ROTATION_GRACE
    ) -> str:
        """Add a new webhook secret; the current ones stay valid for `grace`."""
        aggregate = self._tenant(tenant)
        aggregate.expire_webhook_secrets(expires_at=at + grace)
        secret = new_webhook_secret()
        aggregate.add_webhook_secret(secret_id=secrets.token_hex(6), secret=secret, at=at)
        self._save(aggregate)
        return secret

    def change_scoring_policy(self, tenant: str, policy: ScoringPolicy) -> Written:
        """Adopt new scoring parameters for a tenant."""
        aggregate = self._tenant(tenant)
        aggregate.change_scoring_policy(policy)
        return self._save(aggregate)

    def authenticate(self, token: str) -> Principal:
        """Who an API key belongs to and what it may do; AuthenticationError for anything wrong."""
        parsed = parse_api_key(token)
        if parsed is None:
            raise AuthenticationError("invalid credentials")
        tenant, key_id = parsed
        try:
            aggregate = self._checked_tenant(tenant)
        except (TenantNotFoundError, InvalidInputError):
            raise AuthenticationError("invalid credentials") from None
        scopes = aggregate.scopes_for(key_id, token)
        if scopes is None:
            raise AuthenticationError("invalid credentials")
        return Principal(tenant=tenant, scopes=scopes)

    def webhook_secrets(self, tenant: str, *, at: datetime) -> list[str]:
        """The tenant's webhook secrets valid at `at` (as known at most a moment ago)."""
        return self._recent_tenant(tenant).secrets_valid_at(at)

    def scoring_policy(self, tenant: str) -> ScoringPolicy:
        """The tenant's current scoring parameters (as known at most a moment ago)."""
        return self._recent_tenant(tenant).scoring_policy

    def tenant(self, tenant: str) -> TenantSummary:
        """A tenant's summary (no secrets)."""
        aggregate = self._tenant(tenant)
        return TenantSummary(
            name=aggregate.name,
            tenant_id=aggregate.id,
            registered_at=aggregate.registered_at,
            api_keys=tuple(
                KeySummary(k.key_id, k.scopes, k.issued_at, k.revoked_at)
                for k in aggregate.api_keys.values()
            ),
            active_webhook_secrets=len(aggregate.secrets_valid_at(aggregate.modified_on)),
            scoring_policy=aggregate.scoring_policy,
        )

    def tenant_names(self) -> Iterator[str]:
        """Every registered tenant's name, in registration order."""
        start = 1
        while True:
            page = self.recorder.select_notifications(
                start=start, limit=500, topics=[TENANT_REGISTERED_TOPIC]
            )
            for notification in page:
                yield self.mapper.to_domain_event(notification).name  # type: ignore[attr-defined]
            if len(page) < 500:
                return
            start = page[-1].id + 1

    # Recurring commitments: occurrences are ordinary promises with deterministic ids

    def create_commitment(self, terms: CommitmentTerms, *, at: datetime) -> Written:
        """Record a recurring commitment; the same commitment again is "already recorded"."""
        return self._single(lambda uow: uow.create_commitment(terms, at=at))

    def commitment(self, tenant: str, key: str) -> Commitment:
        """A recurring commitment as it stands."""
        return self.unit_of_work().commitment(tenant, key)

    def pause_commitment(self, tenant: str, key: str, *, at: datetime) -> Written:
        """Stop making occurrences; those already made that are due after `at` are released."""
        return self._on_commitment(tenant, key, at, lambda c: c.pause(at=at), "paused")

    def resume_commitment(self, tenant: str, key: str, *, at: datetime) -> Written:
        """Make occurrences again, those due after `at`."""
        return self._on_commitment(tenant, key, at, lambda c: c.resume(at=at), None)

    def end_commitment(self, tenant: str, key: str, *, at: datetime) -> Written:
        """End a commitment; occurrences already made that are due after `at` are released."""
        return self._on_commitment(tenant, key, at, lambda c: c.end(at=at), "ended")

    def schedule_occurrences(
        self, tenant: str, key: str, *, now: datetime, horizon: timedelta
    ) -> int:
        """Make the commitment's occurrences due by `now + horizon` as promises, and record
        how far it is scheduled, in one transaction; returns how many were made."""
        uow = self.unit_of_work()
        commitment = uow.commitment(tenant, key)
        occurrences = commitment.due_occurrences(now=now, horizon=horizon)
        for occurrence in occurrences:
            try:
                uow.make_promise(commitment.terms_of(occurrence, horizon))
            except PromiseConflictError:
                # The id was taken by a promise of other content (imported, say): that one
                # stands, and this occurrence is not made rather than blocking the rest.
                continue
        if commitment.is_active:
            full = len(occurrences) >= OCCURRENCES_PER_PASS
            commitment.mark_scheduled(occurrences[-1].due_at if full else now + horizon)
        uow.commit()
        return len(occurrences)

    def _on_commitment(
        self,
        tenant: str,
        key: str,
        at: datetime,
        command: Callable[[Commitment], None],
        release_reason: str | None,
    ) -> Written:
        return self._single(
            lambda uow: uow.change_commitment(
                tenant, key, command, at=at, release_reason=release_reason
            )
        )

    # Promises and people: each use case is a unit of work of one command

    def unit_of_work(self, *, expect_new_promises: bool = False) -> UnitOfWork:
        """A unit of work for several commands saved in one transaction (batch ingestion).

        With `expect_new_promises`, making a promise skips reading whether it exists: a
        promise made before makes the commit fail with ConcurrentWriteError instead.
        """
        return UnitOfWork(self, expect_new_promises=expect_new_promises)

    def make_promise(self, terms: PromiseTerms) -> Written:
        """Record a promise; the same promise again is "already recorded", not a second one."""
        return self._single(lambda uow: uow.make_promise(terms))

    def keep_promise(
        self,
        tenant: str,
        key: str,
        *,
        at: datetime,
        note: str | None = None,
        reported_by: str | None = None,
    ) -> Written:
        """Report a promise kept."""
        return self._single(
            lambda uow: uow.keep_promise(tenant, key, at=at, note=note, reported_by=reported_by)
        )

    def break_promise(
        self,
        tenant: str,
        key: str,
        *,
        at: datetime,
        reason: str | None = None,
        reported_by: str | None = None,
    ) -> Written:
        """Report a promise broken."""
        return self._single(
            lambda uow: uow.break_promise(
                tenant, key, at=at, reason=reason, reported_by=reported_by
            )
        )

    def release_promise(
        self, tenant: str, key: str, *, at: datetime, reason: str | None = None
    ) -> Written:
        """The promisee releases the promiser."""
        return self._single(lambda uow: uow.release_promise(tenant, key, at=at, reason=reason))

    def renegotiate_promise(
        self, tenant: str, key: str, *, due_at: datetime, at: datetime, reason: str | None = None
    ) -> Written:
        """Agree a new due time before the current one."""
        return self._single(
            lambda uow: uow.renegotiate_promise(tenant, key, due_at=due_at, at=at, reason=reason)
        )

    def lapse_promise(self, tenant: str, key: str, *, now: datetime) -> Written:
        """Record that nobody reported an outcome by `due_at + lapse_after`."""
        return self._single(lambda uow: uow.lapse_promise(tenant, key, now=now))

    def correct_outcome(
        self, tenant: str, key: str, *, outcome: PromiseStatus, at: datetime, reason: str
    ) -> Written:
        """Replace a promise's current outcome (the history keeps both)."""
        return self._single(
            lambda uow: uow.correct_outcome(tenant, key, outcome=outcome, at=at, reason=reason)
        )

    def update_person(
        self,
        tenant: str,
        key: str,
        *,
        at: datetime,
        timezone: str | Unchanged = UNCHANGED,
        quiet_hours: QuietHours | Unchanged | None = UNCHANGED,
    ) -> Written:
        """Record a person's time zone and/or quiet hours (registering them if new)."""
        return self._single(
            lambda uow: uow.update_person(
                tenant, key, at=at, timezone=timezone, quiet_hours=quiet_hours
            )
        )

    def promise(self, tenant: str, key: str) -> PromiseState:
        """A promise's state and full history."""
        aggregate = self._promise(tenant, key)
        history = tuple(
            HistoryEntry(
                event=type(event).__name__,
                version=event.originator_version,
                recorded_at=event.timestamp,
                facts={k: v for k, v in vars(event).items() if k not in HIDDEN_EVENT_FIELDS},
            )
            for event in cast(Iterable[Promise.Event], self.events.get(aggregate.id))
        )
        return PromiseState(
            aggregate_id=aggregate.id,
            terms=aggregate.terms,
            status=aggregate.status,
            outcome_at=aggregate.outcome_at,
            is_late=aggregate.is_late,
            version=aggregate.version,
            history=history,
        )

    def made_terms(self, promise: Promise) -> PromiseTerms:
        """The terms as first made (a renegotiation moves `due_at`, not what was promised)."""
        if promise.version == 1:
            return promise.terms
        made = next(iter(self.events.get(promise.id, lte=1)))
        fields = {name: getattr(made, name) for name in PromiseTerms.__dataclass_fields__}
        fields["reminders"] = tuple(fields["reminders"])
        return PromiseTerms(**fields)

    def person(self, tenant: str, key: str) -> PersonState:
        """A person's settings (UTC and no quiet hours until told otherwise)."""
        try:
            person = self._get(Person, person_id(tenant, key))
        except AggregateNotFoundError:
            raise PersonNotFoundError(f"no person {key!r}") from None
        return PersonState(tenant, key, person.timezone, person.quiet_hours)

    # Outgoing messages (the outbox)

    def queue_message(
        self, tenant: str, *, message_id: str, type: str, at: datetime, data: dict[str, Any]
    ) -> int:
        """Record a message for the tenant's webhook subscribers; returns its log position.

        The message is an event before anything is sent, so a crash loses nothing. Its id
        follows from tenant and `message_id`: queuing the same message id again records
        nothing (the first content stays) and returns the head of the log, which makes a
        scheduler's re-fire after a crash harmless.
        """
        self._recent_tenant(tenant)
        message = Message.queue(tenant, message_id=message_id, type=type, at=at, data=data)
        try:
            recordings = self.save(message)
        except IntegrityError:
            return self.head_position()
        return recordings[-1].notification.id

    def queue_messages(self, messages: Sequence[OutgoingMessage]) -> None:
        """Queue many messages in one transaction (a scheduler's batch). If any was already
        queued, the batch falls back to one message at a time, which skips those."""
        for tenant in {m.tenant for m in messages}:
            self._recent_tenant(tenant)
        aggregates = [
            Message.queue(m.tenant, message_id=m.message_id, type=m.type, at=m.at, data=m.data)
            for m in messages
        ]
        if not aggregates:
            return
        try:
            self.save(*aggregates)
        except IntegrityError:
            for m in messages:
                self.queue_message(
                    m.tenant, message_id=m.message_id, type=m.type, at=m.at, data=m.data
                )

    # Webhook subscriptions

    def create_subscription(
        self,
        tenant: str,
        *,
        url: str,
        types: list[str],
        description: str | None,
        at: datetime,
    ) -> NewSubscription:
        """Subscribe an endpoint to message types; the secret is in this answer only."""
        self._tenant(tenant)
        subscription_id = "sub_" + secrets.token_hex(8)
        secret = new_webhook_secret()
        subscription = Subscription.create(
            tenant,
            subscription_id=subscription_id,
            url=url,
            types=types,
            description=description,
            secret=secret,
            at=at,
        )
        written = self._save(subscription)
        return NewSubscription(subscription_id, secret, written.position)

    def subscription(self, tenant: str, subscription_id: str) -> Subscription:
        """A tenant's subscription (holds its secrets: never hand it to an HTTP answer)."""
        try:
            subscription = self._get(
                Subscription, subscription_aggregate_id(tenant, subscription_id)
            )
        except AggregateNotFoundError:
            raise SubscriptionNotFoundError(f"no subscription {subscription_id!r}") from None
        if subscription.is_deleted:
            raise SubscriptionNotFoundError(f"no subscription {subscription_id!r}")
        return subscription

    def rotate_subscription_secret(
        self,
        tenant: str,
        subscription_id: str,
        *,
        at: datetime,
        grace: timedelta = DEFAULT_ROTATION_GRACE,
    ) -> str:
        """Sign with a new secret; the current one also signs for `grace`. Returns it once."""
        subscription = self.subscription(tenant, subscription_id)
        secret = new_webhook_secret()
        subscription.rotate_secret(secret, at=at, grace=grace)
        self._save(subscription)
        return secret

    def delete_subscription(self, tenant: str, subscription_id: str, *, at: datetime) -> Written:
        """Delete a subscription: nothing more is delivered to it."""
        subscription = self.subscription(tenant, subscription_id)
        subscription.delete(at=at)
        return self._save(subscription)

    def disable_subscription(
        self, tenant: str, subscription_id: str, *, reason: str, at: datetime
    ) -> Written:
        """Stop deliveries to an endpoint (its messages are kept for replay)."""
        subscription = self.subscription(tenant, subscription_id)
        subscription.disable(reason=reason, at=at)
        return self._save(subscription)

    def enable_subscription(self, tenant: str, subscription_id: str, *, at: datetime) -> Written:
        """Resume deliveries to a disabled endpoint."""
        subscription = self.subscription(tenant, subscription_id)
        subscription.enable(at=at)
        return self._save(subscription)

    # Receipts

    @property
    def receipt_recorder(self) -> ReceiptRecorder:
        """The recorder's receipt operations."""
        return cast(ReceiptRecorder, self.recorder)

    def receipts(self, tenant: str, keys: Sequence[str]) -> dict[str, Receipt]:
        """The stored receipts of a tenant among `keys`."""
        return self.receipt_recorder.select_receipts(tenant, keys)

    # Internals

    def construct_recorder(self) -> ApplicationRecorder:
        recorder = super().construct_recorder()
        if not hasattr(recorder, "select_receipts"):
            # Without receipts, webhook retries could be recorded twice: refuse to run.
            msg = f"{type(recorder).__name__} cannot store receipts; configure Troth's recorder"
            raise TypeError(msg)
        return recorder

    def _single(self, command: Callable[[UnitOfWork], Change]) -> Written:
        uow = self.unit_of_work()
        change = command(uow)
        return uow.commit()(change)

    def _save(self, aggregate: Aggregate) -> Written:
        if isinstance(aggregate, Tenant):
            self._tenant_cache.pop(aggregate.name, None)
        try:
            recordings = self.save(aggregate)
        except IntegrityError:
            raise ConcurrentWriteError("the record changed at the same moment; retry") from None
        if not recordings:
            return Written(aggregate.id, self.head_position(), is_new=False)
        return Written(aggregate.id, recordings[-1].notification.id, is_new=True)

    def _recent_tenant(self, tenant: str) -> Tenant:
        # Every webhook needs the tenant's secrets and policy; reloading the aggregate each
        # time costs a query. Secrets rotate with a grace period and policies change rarely,
        # so a copy at most TENANT_CACHE_SECONDS old is safe; keys are checked fresh.
        now = time.monotonic()
        cached = self._tenant_cache.get(tenant)
        if cached is not None and now - cached[0] < TENANT_CACHE_SECONDS:
            return cached[1]
        aggregate = self._tenant(tenant)
        self._tenant_cache[tenant] = (now, aggregate)
        return aggregate

    def _checked_tenant(self, tenant: str) -> Tenant:
        # Every API request checks its key: a copy of the tenant, checked for newer events
        # with one small read, costs a fraction of replaying them all each time, and a key
        # revoked through any process stops working at once. The copy is only ever read.
        cached = self._checked_tenants.get(tenant)
        if cached is not None and not self.recorder.select_events(
            cached.id, gt=cached.version, limit=1
        ):
            return cached
        aggregate = self._tenant(tenant)
        self._checked_tenants[tenant] = aggregate
        return aggregate

    def _tenant(self, tenant: str) -> Tenant:
        try:
            return self._get(Tenant, tenant_id(tenant))
        except AggregateNotFoundError:
            raise TenantNotFoundError(f"no tenant {tenant!r}") from None

    def _promise(self, tenant: str, key: str) -> Promise:
        validate_promise_key("promise_id", key)
        try:
            return self._get(Promise, promise_id(tenant, key))
        except AggregateNotFoundError:
            raise PromiseNotFoundError(f"no promise {key!r}") from None

    def _get(self, kind: type[A], aggregate_id: UUID) -> A:
        aggregate: Aggregate = self.repository.get(aggregate_id)
        if not isinstance(aggregate, kind):
            raise AggregateNotFoundError(aggregate_id)
        return aggregate
