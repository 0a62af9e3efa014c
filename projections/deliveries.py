"""The deliveries view's contract: subscriptions, queued messages, one row per (message,
subscription) with its delivery state, and a log of every attempt.

Subscription rows and new deliveries are projected from the event log (the projection in
`projections.delivery_projection`) and written with the tracking position in one
transaction. Delivery states and the attempt log are operational state written by the
delivery worker, not business events: they say how sending went, not what happened.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final
from uuid import UUID

from domain.subscription import ALL_TYPES

DELIVERIES_VIEW: Final = "deliveries"


class SubscriptionState(StrEnum):
    """Whether a subscription receives messages."""

    ACTIVE = "active"
    DISABLED = "disabled"  # messages are kept (pending) for replay once enabled
    DELETED = "deleted"


class DeliveryState(StrEnum):
    """Where one message's delivery to one subscription stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # every attempt of the schedule failed
    ABORTED = "aborted"  # the receiver answered `webhook-delivery: abort-message`


@dataclass(frozen=True)
class SubscriptionRow:
    """A subscription as the deliveries see it (never its secret)."""

    id: UUID
    tenant: str
    subscription_id: str
    url: str
    types: tuple[str, ...]
    description: str | None
    state: SubscriptionState
    created_at: datetime
    disabled_reason: str | None = None
    failing_since: datetime | None = None

    def wants(self, message_type: str) -> bool:
        """Whether messages of `message_type` go to this subscription."""
        return ALL_TYPES in self.types or message_type in self.types


@dataclass(frozen=True)
class MessageRow:
    """A queued message and the exact body every attempt sends (so retries are identical)."""

    tenant: str
    message_id: str
    type: str
    at: datetime
    body: str
    recorded_at: datetime


@dataclass(frozen=True)
class DeliveryRow:
    """One message to one subscription; `attempts` counts the current round of the schedule."""

    subscription: UUID
    message_id: str
    tenant: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime
    message_at: datetime  # the message's timestamp: due from then on
    last_attempt_at: datetime | None = None
    last_status: int | None = None


@dataclass(frozen=True)
class StateChange:
    """A subscription's new state from an event (Enabled also forgets the failure streak)."""

    state: SubscriptionState
    reason: str | None = None


@dataclass
class DeliveryChanges:
    """What one batch of events writes: new rows are inserted once (a replay changes nothing)."""

    subscriptions: dict[UUID, SubscriptionRow] = field(default_factory=dict)
    states: dict[UUID, StateChange] = field(default_factory=dict)
    messages: list[MessageRow] = field(default_factory=list)
    deliveries: list[DeliveryRow] = field(default_factory=list)


@dataclass(frozen=True)
class Claim:
    """A due delivery taken by one worker, with what it needs to send it."""

    delivery: DeliveryRow
    tenant: str
    subscription_id: str
    url: str
    message_type: str
    body: str
    failing_since: datetime | None


class AttemptOutcome(StrEnum):
    """What an attempt led to."""

    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    ABORTED = "aborted"
    DISABLED = "disabled"


@dataclass(frozen=True)
class AttemptRow:
    """One HTTP attempt (or refusal to send) and what came of it."""

    subscription: UUID
    message_id: str
    at: datetime
    outcome: AttemptOutcome
    status: int | None
    latency_ms: int
    response_excerpt: str
    error: str | None
    message_type: str = ""
    sequence: int = 0  # assigned by the store; orders the log


@dataclass(frozen=True)
class AttemptRecord:
    """An attempt with the delivery's and the subscription's resulting state."""

    attempt: AttemptRow
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime
    failing_since: datetime | None
    disable_reason: str | None = None


class DeliveryStore(ABC):
    """Storage of the deliveries view; one implementation per backend, one contract test."""

    @abstractmethod
    def create_tables(self) -> None:
        """Create the tables if missing (run by `troth migrate` only)."""

    @abstractmethod
    def position(self) -> int:
        """The notification id of the last event applied (0 before any)."""

    @abstractmethod
    def write(self, changes: DeliveryChanges, position: int, *, previous: int) -> None:
        """Apply `changes` and move the tracking position from `previous` to `position`
        atomically; raises `IntegrityError` and writes nothing when the stored position is
        not `previous` (another projector moved it)."""

    @abstractmethod
    def subscriptions(self, tenant: str) -> list[SubscriptionRow]:
        """A tenant's subscriptions that are not deleted, by creation time."""

    @abstractmethod
    def claim(self, now: datetime, *, lease_until: datetime, limit: int) -> list[Claim]:
        """Take up to `limit` pending deliveries due at `now` to active subscriptions, and
        hide them from other workers until `lease_until` (a crashed worker's claims come
        back then: delivery is at least once)."""

    @abstractmethod
    def record(self, records: Sequence[AttemptRecord]) -> None:
        """Log attempts and set their deliveries' and subscriptions' states, in one
        transaction (in order: a later record of the same subscription wins)."""

    @abstractmethod
    def attempts(
        self, subscription: UUID, *, before: int | None = None, limit: int = 50
    ) -> list[AttemptRow]:
        """A page of a subscription's attempts, newest first, older than `before`."""

    @abstractmethod
    def redeliver(self, subscription: UUID, message_id: str, *, now: datetime) -> bool:
        """Start the schedule again for one delivery; False when there is no such delivery."""

    @abstractmethod
    def redeliver_failed(self, subscription: UUID, *, since: datetime, now: datetime) -> int:
        """Start the schedule again for every failed delivery of messages queued since
        `since`; returns how many."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
