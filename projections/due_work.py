"""The due-work view: every reminder, follow-up and lapse still to fire, keyed by fire time.

It is a projection of promise, person, tenant and commitment events, so it survives
restarts and a replay rebuilds it. A batch's changes are written with the view's tracking
position in one transaction, like the report views.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final

from eventsourcing.persistence import ApplicationRecorder, Mapper

from domain.commitment import Commitment
from domain.identity import person_id, tenant_id
from domain.person import Person, QuietHours
from domain.policy import ScoringPolicy
from domain.promise import Promise
from domain.tenant import Tenant
from projections.due_plan import DueItem, DuePerson, DuePromise, plan
from projections.topic_projector import TopicProjector

DUE_WORK_VIEW: Final = "due_work"
BATCH_SIZE: Final = 1000
DEFAULT_LAPSE_AFTER: Final = ScoringPolicy().lapse_after

PromiseKey = tuple[str, str]  # (tenant, promise key)
CommitmentKey = tuple[str, str]  # (tenant, commitment id)

TOPICS: Final = [
    cls.TOPIC
    for cls in (
        Promise.Made,
        Promise.Kept,
        Promise.Broken,
        Promise.Renegotiated,
        Promise.Released,
        Promise.Lapsed,
        Promise.OutcomeCorrected,
        Person.Registered,
        Person.TimezoneChanged,
        Person.QuietHoursChanged,
        Tenant.Registered,
        Tenant.ScoringPolicyChanged,
        Commitment.Created,
        Commitment.Paused,
        Commitment.Resumed,
        Commitment.Ended,
    )
]


@dataclass(frozen=True)
class DueTenant:
    """A tenant's name and how long after its due time an open promise lapses."""

    aggregate_id: str
    name: str
    lapse_after: timedelta = DEFAULT_LAPSE_AFTER


@dataclass
class DueChanges:
    """One batch's writes: rows upserted by identity; each promise in `plans` has its pending
    items replaced by the listed ones."""

    promises: dict[str, DuePromise] = field(default_factory=dict)
    people: dict[str, DuePerson] = field(default_factory=dict)
    tenants: dict[str, DueTenant] = field(default_factory=dict)
    plans: dict[PromiseKey, list[DueItem]] = field(default_factory=dict)
    commitments: dict[CommitmentKey, bool] = field(default_factory=dict)  # is_active

    def __bool__(self) -> bool:
        return any((self.promises, self.people, self.tenants, self.plans, self.commitments))


class DueWorkStore(ABC):
    """Storage of the due-work view; one implementation per backend, one contract test."""

    @abstractmethod
    def create_tables(self) -> None:
        """Create the tables if missing (run by `troth migrate` only)."""

    @abstractmethod
    def drop_tables(self) -> None:
        """Drop the tables (for a rebuild)."""

    @abstractmethod
    def position(self) -> int:
        """The notification id of the last event applied (0 before any)."""

    @abstractmethod
    def write(self, changes: DueChanges, position: int, *, previous: int) -> None:
        """Apply `changes` and move the position from `previous` to `position` atomically;
        `IntegrityError` and nothing written when the stored position is not `previous`."""

    @abstractmethod
    def promises(self, ids: Iterable[str]) -> dict[str, DuePromise]:
        """The stored promises among aggregate `ids`."""

    @abstractmethod
    def open_promises(self, tenant: str, promiser: str | None = None) -> list[DuePromise]:
        """A tenant's open promises with a due time (optionally of one promiser)."""

    @abstractmethod
    def people(self, ids: Iterable[str]) -> dict[str, DuePerson]:
        """The stored people among Person aggregate `ids`."""

    @abstractmethod
    def tenants(self, ids: Iterable[str]) -> dict[str, DueTenant]:
        """The stored tenants among Tenant aggregate `ids`."""

    @abstractmethod
    def due(self, now: datetime, limit: int) -> list[DueItem]:
        """Up to `limit` items with `fire_at <= now`, earliest first."""

    @abstractmethod
    def pending(self, tenant: str, promise: str) -> list[DueItem]:
        """A promise's items still to fire, earliest first."""

    @abstractmethod
    def done(self, items: Sequence[DueItem]) -> None:
        """Remove fired items (an item replanned to another time since stays)."""

    @abstractmethod
    def active_commitments(self) -> list[CommitmentKey]:
        """Every commitment that is neither paused nor ended."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""


class DueWorkProjection:
    """Turns a batch of events into `DueChanges`; reads only the events and the view."""

    def __init__(self, store: DueWorkStore) -> None:
        self.store = store

    def apply(self, events: Sequence[Any]) -> DueChanges:
        """The changes `events` make, in log order."""
        changes = DueChanges()
        promise_ids = {
            str(e.originator_id)
            for e in events
            if isinstance(e, Promise.Event) and not isinstance(e, Promise.Made)
        }
        promises = self.store.promises(promise_ids) if promise_ids else {}
        people = self.store.people({str(e.originator_id) for e in events if _is_person(e)})
        tenants = self.store.tenants(
            {str(e.originator_id) for e in events if isinstance(e, Tenant.ScoringPolicyChanged)}
        )
        dirty: set[str] = set()
        replan: set[tuple[str, str | None]] = set()  # (tenant, promiser or None for all)
        for event in events:
            aid = str(event.originator_id)
            if isinstance(event, Promise.Event):
                promise = _promise(event, aid, promises.get(aid))
                if promise is not None:
                    promises[aid] = changes.promises[aid] = promise
                    dirty.add(aid)
            elif isinstance(event, Person.Event):
                person = _person(event, aid, people.get(aid))
                if person is not None:
                    people[aid] = changes.people[aid] = person
                    replan.add((person.tenant, person.person))
            elif isinstance(event, Tenant.Event):
                tenant = _tenant(event, aid, tenants.get(aid))
                if tenant is not None:
                    tenants[aid] = changes.tenants[aid] = tenant
                    replan.add((tenant.name, None))
            elif isinstance(event, Commitment.Event):
                is_active = isinstance(event, Commitment.Created | Commitment.Resumed)
                changes.commitments[(event.tenant, event.key)] = is_active
        for name, promiser in replan:
            # Quiet hours, time zone or lapse time changed: every open promise concerned
            # is planned again (fired items come back with their old message ids, which
            # the outbox has already recorded, so nothing is sent twice).
            for p in self.store.open_promises(name, promiser):
                promises.setdefault(p.aggregate_id, p)
                dirty.add(p.aggregate_id)
        self._plan([promises[aid] for aid in dirty], people, tenants, changes)
        return changes

    def _plan(
        self,
        promises: list[DuePromise],
        people: dict[str, DuePerson],
        tenants: dict[str, DueTenant],
        changes: DueChanges,
    ) -> None:
        wanted = {str(tenant_id(p.tenant)) for p in promises}
        tenants = {**self.store.tenants(wanted - tenants.keys()), **tenants}
        wanted = {str(person_id(p.tenant, p.promiser)) for p in promises}
        people = {**self.store.people(wanted - people.keys()), **people}
        for p in promises:
            person = people.get(str(person_id(p.tenant, p.promiser)))
            known = tenants.get(str(tenant_id(p.tenant)))
            after = known.lapse_after if known is not None else DEFAULT_LAPSE_AFTER
            changes.plans[(p.tenant, p.key)] = plan(p, person, after)


def _is_person(event: Any) -> bool:
    return isinstance(event, Person.Event) and not isinstance(event, Person.Registered)


def _promise(event: Any, aid: str, current: DuePromise | None) -> DuePromise | None:
    if isinstance(event, Promise.Made):
        return DuePromise(
            aggregate_id=aid,
            tenant=event.tenant,
            key=event.key,
            promiser=event.promiser,
            promisee=event.promisee,
            title=event.title,
            due_at=event.due_at,
            reminders=tuple(event.reminders),
            planned_from=event.made_at,
            status="open",
        )
    if current is None:
        return None  # made before this view existed and never seen: nothing to plan
    if isinstance(event, Promise.Renegotiated):
        return replace(current, due_at=event.due_at, planned_from=event.at)
    if isinstance(event, Promise.Kept):
        return replace(current, status="kept", outcome_at=event.at)
    if isinstance(event, Promise.Broken):
        return replace(current, status="broken", outcome_at=event.at)
    if isinstance(event, Promise.Released):
        return replace(current, status="released", outcome_at=event.at)
    if isinstance(event, Promise.Lapsed):
        return replace(current, status="lapsed", outcome_at=event.at)
    if isinstance(event, Promise.OutcomeCorrected):
        return replace(current, status=event.outcome, outcome_at=event.at)
    return None


def _tenant(event: Any, aid: str, current: DueTenant | None) -> DueTenant | None:
    if isinstance(event, Tenant.Registered):
        return DueTenant(aid, event.name)
    if isinstance(event, Tenant.ScoringPolicyChanged) and current is not None:
        return replace(current, lapse_after=event.policy.lapse_after)
    return None


def _person(event: Any, aid: str, current: DuePerson | None) -> DuePerson | None:
    if isinstance(event, Person.Registered):
        return DuePerson(aggregate_id=aid, tenant=event.tenant, person=event.key)
    if current is None:
        return None
    if isinstance(event, Person.TimezoneChanged):
        return replace(current, timezone=event.timezone)
    if isinstance(event, Person.QuietHoursChanged):
        start, end = event.start, event.end
        quiet = None if start is None or end is None else QuietHours(start, end)
        return replace(current, quiet_hours=quiet)
    return None


class DueWorkProjector(TopicProjector[DueChanges]):
    """Feeds the due-work view from the notification log; safe to stop at any moment."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        mapper: Mapper[Any],
        store: DueWorkStore,
        *,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        projection = DueWorkProjection(store)
        super().__init__(
            recorder,
            mapper,
            store,
            projection.apply,
            TOPICS,
            batch_size=batch_size,
            view="due-work",
        )
