"""The in-memory due-work store (unit tests and `memory:` databases)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import datetime

from eventsourcing.persistence import IntegrityError

from projections.due_plan import DueItem, DuePerson, DuePromise
from projections.due_work import (
    CommitmentKey,
    DueChanges,
    DueTenant,
    DueWorkStore,
    PromiseKey,
)


class POPODueWorkStore(DueWorkStore):
    """Plain Python objects behind a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.create_tables()

    def create_tables(self) -> None:
        self._position = 0
        self._promises: dict[str, DuePromise] = {}
        self._people: dict[str, DuePerson] = {}
        self._tenants: dict[str, DueTenant] = {}
        self._items: dict[tuple[str, str], DueItem] = {}
        self._by_promise: dict[PromiseKey, set[str]] = {}
        self._commitments: dict[CommitmentKey, bool] = {}

    def drop_tables(self) -> None:
        with self._lock:
            self.create_tables()

    def position(self) -> int:
        return self._position

    def write(self, changes: DueChanges, position: int, *, previous: int) -> None:
        with self._lock:
            if self._position != previous or position <= previous:
                msg = f"due work is at {self._position}, not {previous}"
                raise IntegrityError(msg)
            self._promises.update(changes.promises)
            self._people.update(changes.people)
            self._tenants.update(changes.tenants)
            self._commitments.update(changes.commitments)
            for (tenant, key), items in changes.plans.items():
                for message_id in self._by_promise.pop((tenant, key), set()):
                    self._items.pop((tenant, message_id), None)
                self._by_promise[(tenant, key)] = {i.message_id for i in items}
                for item in items:
                    self._items[(tenant, item.message_id)] = item
            self._position = position

    def promises(self, ids: Iterable[str]) -> dict[str, DuePromise]:
        return {i: self._promises[i] for i in ids if i in self._promises}

    def open_promises(self, tenant: str, promiser: str | None = None) -> list[DuePromise]:
        return [
            p
            for p in self._promises.values()
            if p.tenant == tenant
            and p.status == "open"
            and p.due_at is not None
            and (promiser is None or p.promiser == promiser)
        ]

    def people(self, ids: Iterable[str]) -> dict[str, DuePerson]:
        return {i: self._people[i] for i in ids if i in self._people}

    def tenants(self, ids: Iterable[str]) -> dict[str, DueTenant]:
        return {i: self._tenants[i] for i in ids if i in self._tenants}

    def due(self, now: datetime, limit: int) -> list[DueItem]:
        with self._lock:
            return sorted(i for i in self._items.values() if i.fire_at <= now)[:limit]

    def pending(self, tenant: str, promise: str) -> list[DueItem]:
        with self._lock:
            ids = self._by_promise.get((tenant, promise), set())
            return sorted(self._items[(tenant, i)] for i in ids)

    def done(self, items: Sequence[DueItem]) -> None:
        with self._lock:
            for item in items:
                stored = self._items.get((item.tenant, item.message_id))
                if stored is not None and stored.fire_at == item.fire_at:
                    del self._items[(item.tenant, item.message_id)]
                    self._by_promise.get((item.tenant, item.promise), set()).discard(
                        item.message_id
                    )

    def active_commitments(self) -> list[CommitmentKey]:
        return sorted(k for k, is_active in self._commitments.items() if is_active)

    def close(self) -> None:
        pass
