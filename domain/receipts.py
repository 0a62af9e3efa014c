"""Receipts: what a client's idempotency key was answered, stored with the events it answers for."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import StoredEvent


@dataclass(frozen=True)
class Receipt:
    """The answer given to one idempotency key (a webhook id) of one tenant.

    `events` names the events the answer is about, so the recorder can fill in `position`
    with their notification id inside the same transaction that stores them.
    """

    tenant: str
    key: str
    request_hash: str
    status: int
    answer: Mapping[str, Any]
    recorded_at: datetime
    position: int = 0
    events: tuple[tuple[UUID, int], ...] = field(default=(), compare=False)


class ReceiptRecorder(Protocol):
    """What the Ledger needs of its recorder beyond the library's application recorder.

    Its `insert_events(stored_events, receipts=[...])` also stores the receipts in the same
    transaction, and fails (IntegrityError) when a receipt's key was already used.
    """

    def select_receipts(self, tenant: str, keys: Sequence[str]) -> dict[str, Receipt]:
        """The stored receipts among `keys`."""
        ...

    def insert_receipts(self, receipts: Sequence[Receipt]) -> None:
        """Store receipts for answers that recorded no event."""
        ...

    def select_event_streams(self, originator_ids: Sequence[UUID]) -> Sequence[StoredEvent]:
        """The stored events of many aggregates, by originator then version."""
        ...

    def purge_receipts(self, before: datetime) -> int:
        """Delete receipts recorded before `before`; returns how many."""
        ...
