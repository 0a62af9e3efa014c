"""The in-memory report view store: plain dicts behind one lock (tests and `memory:`)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import date, datetime
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from projections.scoring import OutcomeKind
from projections.views import (
    REPORTS_VIEW,
    OutcomeRow,
    PersonKey,
    PersonRow,
    PromiseKey,
    PromiseRow,
    ReportViewStore,
    SubjectKey,
    SubjectRow,
    TenantRow,
    ViewChanges,
    WeekRow,
)


class POPOReportViewStore(ReportViewStore):
    """The report views in memory; a write validates its position before changing anything."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._clear()

    def _clear(self) -> None:
        self._tracking: dict[str, int] = {}
        # Per tenant, so subject queries scan one tenant's rows rather than the whole store.
        self._promises: dict[str, dict[str, PromiseRow]] = {}
        self._outcomes: dict[str, dict[tuple[str, int], OutcomeRow]] = {}
        self._subjects: dict[SubjectKey, SubjectRow] = {}
        self._weeks: dict[tuple[SubjectKey, date], WeekRow] = {}
        self._promise_keys: dict[UUID, PromiseKey] = {}
        self._people: dict[UUID, PersonRow] = {}
        self._tenants: dict[UUID, TenantRow] = {}

    def aside(self, suffix: str) -> POPOReportViewStore:
        return POPOReportViewStore()

    def swap_in(self, aside: ReportViewStore) -> None:
        if not isinstance(aside, POPOReportViewStore) or aside is self:
            msg = "swap_in takes a store built aside by this store's aside()"
            raise TypeError(msg)
        with self._lock, aside._lock:
            for name in (
                "_tracking", "_promises", "_outcomes", "_subjects", "_weeks",
                "_promise_keys", "_people", "_tenants",
            ):  # fmt: skip
                setattr(self, name, getattr(aside, name))
            aside._clear()

    def create_tables(self) -> None:
        """Nothing to create: the dicts exist from the start."""

    def drop_tables(self) -> None:
        with self._lock:
            self._clear()

    def position(self, view: str = REPORTS_VIEW) -> int:
        with self._lock:
            return self._tracking.get(view, 0)

    def write(
        self,
        changes: ViewChanges,
        position: int,
        view: str = REPORTS_VIEW,
        *,
        previous: int | None = None,
    ) -> None:
        with self._lock:
            stored = self._tracking.get(view, 0)
            if position <= stored or previous not in (None, stored):
                msg = f"view {view!r} is at position {stored}, not before {position}"
                raise IntegrityError(msg)
            # Nothing below can raise, so the batch is applied whole or (above) not at all.
            for (tenant, key), promise in changes.promises.items():
                self._promises.setdefault(tenant, {})[key] = promise
                self._promise_keys[promise.aggregate_id] = (tenant, key)
            for (tenant, key, number), outcome in changes.outcomes.items():
                self._outcomes.setdefault(tenant, {})[(key, number)] = outcome
            self._subjects.update(changes.subjects)
            self._weeks.update(changes.weeks)
            for week_key in changes.deleted_weeks:
                self._weeks.pop(week_key, None)
            self._people.update(changes.people)
            self._tenants.update(changes.tenants)
            self._tracking[view] = position

    def promises(self, keys: Iterable[PromiseKey]) -> dict[PromiseKey, PromiseRow]:
        with self._lock:
            found = {k: self._promises.get(k[0], {}).get(k[1]) for k in keys}
        return {k: row for k, row in found.items() if row is not None}

    def subjects(self, keys: Iterable[SubjectKey]) -> dict[SubjectKey, SubjectRow]:
        with self._lock:
            return {k: self._subjects[k] for k in keys if k in self._subjects}

    def weeks(
        self, keys: Iterable[tuple[SubjectKey, date]]
    ) -> dict[tuple[SubjectKey, date], WeekRow]:
        with self._lock:
            return {k: self._weeks[k] for k in keys if k in self._weeks}

    def promises_by_id(self, ids: Iterable[UUID]) -> dict[UUID, PromiseRow]:
        with self._lock:
            keys = {i: self._promise_keys[i] for i in ids if i in self._promise_keys}
            return {i: self._promises[t][k] for i, (t, k) in keys.items()}

    def people(self, ids: Iterable[UUID]) -> dict[UUID, PersonRow]:
        with self._lock:
            return {i: self._people[i] for i in ids if i in self._people}

    def tenants(self, ids: Iterable[UUID]) -> dict[UUID, TenantRow]:
        with self._lock:
            return {i: self._tenants[i] for i in ids if i in self._tenants}

    def promiser_outcomes(self, promisers: Iterable[PersonKey]) -> list[OutcomeRow]:
        wanted = set(promisers)
        with self._lock:
            return [
                row
                for tenant in {t for t, _ in wanted}
                for row in self._outcomes.get(tenant, {}).values()
                if (tenant, row.promiser) in wanted and row.replaced_at is None
            ]

    def subject_outcomes(
        self, key: SubjectKey, *, current_only: bool = True, since: datetime | None = None
    ) -> list[OutcomeRow]:
        with self._lock:
            rows = list(self._outcomes.get(key.tenant, {}).values())
        found = [
            row
            for row in rows
            if _matches(key, row.promiser, row.promisee, row.category)
            and not (current_only and row.replaced_at is not None)
            and (since is None or row.at > since)
        ]
        return sorted(found, key=lambda row: (row.at, row.position))

    def subject_outcome_counts(
        self, key: SubjectKey, since: datetime, until: datetime
    ) -> dict[OutcomeKind, int]:
        counts: dict[OutcomeKind, int] = {}
        for row in self.subject_outcomes(key, since=since):
            if row.at <= until:
                counts[row.kind] = counts.get(row.kind, 0) + 1
        return counts

    def subject_promises(self, key: SubjectKey, *, status: str | None = None) -> list[PromiseRow]:
        with self._lock:
            rows = list(self._promises.get(key.tenant, {}).values())
        found = [
            row
            for row in rows
            if _matches(key, row.promiser, row.promisee, row.category)
            and (status is None or row.status == status)
        ]
        return sorted(found, key=_by_due_time)

    def subject_weeks(self, key: SubjectKey, first: date, last: date) -> list[WeekRow]:
        with self._lock:
            rows = [
                row
                for (subject, week), row in self._weeks.items()
                if subject == key and first <= week <= last
            ]
        return sorted(rows, key=lambda row: row.week)

    def tenant_subjects(self, tenant: str, person: str | None = None) -> list[SubjectKey]:
        with self._lock:
            keys = [
                k
                for k in self._subjects
                if k.tenant == tenant and (person is None or k.person == person)
            ]
        return sorted(keys)

    def list_promises(
        self,
        tenant: str,
        *,
        promiser: str | None = None,
        status: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[PromiseRow]:
        with self._lock:
            rows = list(self._promises.get(tenant, {}).values())
        found = sorted(
            (
                row
                for row in rows
                if (promiser is None or row.promiser == promiser)
                and (status is None or row.status == status)
                and (after is None or row.key > after)
            ),
            key=lambda row: row.key,
        )
        return found[: max(limit, 0)]

    def list_people(
        self, tenant: str, *, after: str | None = None, limit: int = 50
    ) -> list[SubjectRow]:
        with self._lock:
            rows = [
                row
                for k, row in self._subjects.items()
                if k.tenant == tenant
                and k.kind == "promiser"
                and (after is None or k.person > after)
            ]
        return sorted(rows, key=lambda row: row.key.person)[: max(limit, 0)]

    def close(self) -> None:
        """Nothing to release."""


def _matches(key: SubjectKey, promiser: str, promisee: str | None, category: str | None) -> bool:
    if promiser != key.person:
        return False
    if key.kind == "pair":
        return promisee == key.other
    if key.kind == "category":
        return category == key.other
    if key.kind != "promiser":
        msg = f"unknown subject kind {key.kind!r}"
        raise ValueError(msg)
    return True


def _by_due_time(row: PromiseRow) -> tuple[bool, datetime | None, str]:
    # Undated promises sort last, as with SQL's NULLS LAST; the key breaks ties.
    if row.due_at is None:
        return (True, None, row.key)
    return (False, row.due_at, row.key)
