"""The report projection: turns a batch of events into one `ViewChanges`.

It is a deterministic function of the events and the view's prior rows: no clock, no reads
of the write model. Rows a batch needs are read once in bulk, changed in memory in event
order, and returned for the store to write with the batch's tracking position.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Final
from uuid import UUID

from domain.identity import person_id, tenant_id
from domain.person import Person
from domain.policy import ScoringPolicy
from domain.promise import Promise
from domain.tenant import Tenant
from projections.calendar import week_start
from projections.scoring import DecayedSums, OutcomeKind, ScoredOutcome, credit_and_mass
from projections.streaks import StreakState
from projections.trend import WeekBucket
from projections.views import (
    OutcomeRow,
    PersonKey,
    PersonRow,
    PromiseRow,
    ReportViewStore,
    SubjectKey,
    SubjectRow,
    TenantRow,
    ViewChanges,
    WeekRow,
    subject_keys,
)

DEFAULT_TIMEZONE: Final = "UTC"
COUNTERS: Final = {
    OutcomeKind.KEPT: "kept",
    OutcomeKind.KEPT_LATE: "kept_late",
    OutcomeKind.BROKEN: "broken",
    OutcomeKind.LAPSED: "lapsed",
    OutcomeKind.RELEASED: "released",
}
OUTCOME_EVENTS: Final = (
    Promise.Kept,
    Promise.Broken,
    Promise.Released,
    Promise.Lapsed,
    Promise.OutcomeCorrected,
)


def outcome_kind(event: Any) -> OutcomeKind:
    """The scoring kind an outcome event records."""
    if isinstance(event, Promise.OutcomeCorrected):
        name = event.outcome
        if name == "kept":
            return OutcomeKind.KEPT_LATE if event.is_late else OutcomeKind.KEPT
        return OutcomeKind(name)
    if isinstance(event, Promise.Kept):
        return OutcomeKind.KEPT_LATE if event.is_late else OutcomeKind.KEPT
    if isinstance(event, Promise.Broken):
        return OutcomeKind.BROKEN
    if isinstance(event, Promise.Released):
        return OutcomeKind.RELEASED
    return OutcomeKind.LAPSED


def scored(row: OutcomeRow) -> ScoredOutcome:
    """An outcome row as the scoring functions take it."""
    return ScoredOutcome(row.kind, row.at, row.position)


@dataclass
class _Batch:
    """The rows one batch works on, and which of them changed."""

    store: ReportViewStore
    promises: dict[UUID, PromiseRow] = field(default_factory=dict)
    subjects: dict[SubjectKey, SubjectRow] = field(default_factory=dict)
    weeks: dict[tuple[SubjectKey, date], WeekRow | None] = field(default_factory=dict)
    people: dict[UUID, PersonRow] = field(default_factory=dict)
    tenants: dict[UUID, TenantRow] = field(default_factory=dict)
    absent_subjects: set[SubjectKey] = field(default_factory=set)
    stale_streaks: set[SubjectKey] = field(default_factory=set)
    changes: ViewChanges = field(default_factory=ViewChanges)

    def subject(self, key: SubjectKey) -> SubjectRow:
        if key not in self.subjects:
            # Keys the prefetch found missing are new subjects: no second read for them.
            stored = None if key in self.absent_subjects else self.store.subjects([key]).get(key)
            self.subjects[key] = stored or SubjectRow(key)
        return self.subjects[key]

    def put_subject(self, row: SubjectRow) -> None:
        self.subjects[row.key] = row
        self.changes.subjects[row.key] = row

    def week(self, key: SubjectKey, week: date) -> WeekBucket:
        if (key, week) not in self.weeks:
            self.weeks[(key, week)] = self.store.weeks([(key, week)]).get((key, week))
        row = self.weeks[(key, week)]
        return row.bucket if row is not None else WeekBucket()

    def put_week(self, key: SubjectKey, week: date, bucket: WeekBucket) -> None:
        row = WeekRow(key, week, bucket)
        self.weeks[(key, week)] = row
        self.changes.weeks[(key, week)] = row
        self.changes.deleted_weeks.discard((key, week))

    def timezone(self, tenant: str, person: str) -> str:
        row = self.people.get(_person_id(tenant, person))
        return row.timezone if row is not None else DEFAULT_TIMEZONE

    def policy(self, tenant: str) -> ScoringPolicy:
        row = self.tenants.get(tenant_id(tenant))
        return row.policy if row is not None else ScoringPolicy()

    def put_person(self, row: PersonRow) -> None:
        self.people[row.aggregate_id] = row
        self.changes.people[row.aggregate_id] = row

    def put_tenant(self, row: TenantRow) -> None:
        self.tenants[row.aggregate_id] = row
        self.changes.tenants[row.aggregate_id] = row

    def put_promise(self, aggregate_id: UUID, row: PromiseRow) -> None:
        self.promises[aggregate_id] = row
        self.changes.promises[(row.tenant, row.key)] = row

    def put_outcome(self, row: OutcomeRow) -> None:
        self.changes.outcomes[(row.tenant, row.key, row.position)] = row

    def current_outcomes(self, keys: Collection[SubjectKey]) -> dict[SubjectKey, list[OutcomeRow]]:
        """The subjects' current outcomes by (at, position): the stored ones (one read for
        all their promisers) overlaid with this batch's."""
        rows: dict[PersonKey, dict[tuple[str, str, int], OutcomeRow]] = {
            (k.tenant, k.person): {} for k in keys
        }
        for row in self.store.promiser_outcomes(rows):
            rows[(row.tenant, row.promiser)][(row.tenant, row.key, row.position)] = row
        for identity, row in self.changes.outcomes.items():
            mine = rows.get((row.tenant, row.promiser))
            if mine is not None:
                mine[identity] = row
        return {
            key: sorted(
                (
                    r
                    for r in rows[(key.tenant, key.person)].values()
                    if r.replaced_at is None and _matches(key, r)
                ),
                key=lambda r: (r.at, r.position),
            )
            for key in keys
        }


@functools.lru_cache(maxsize=65536)
def _person_id(tenant: str, person: str) -> UUID:
    # A uuid5 (a SHA-1) per outcome and subject was a measurable share of a catch-up.
    return person_id(tenant, person)


def _matches(key: SubjectKey, row: OutcomeRow | PromiseRow) -> bool:
    if row.tenant != key.tenant or row.promiser != key.person:
        return False
    if key.kind == "pair":
        return row.promisee == key.other
    if key.kind == "category":
        return row.category == key.other
    return True


class ReportProjection:
    """Applies events to the report views (promises, outcomes, subjects, weeks)."""

    def __init__(self, store: ReportViewStore) -> None:
        self.store = store

    def apply(self, events: Sequence[Any], positions: Sequence[int]) -> ViewChanges:
        """The changes `events` (with their notification ids) make to the views."""
        batch = self._prefetch(events)
        for event, position in zip(events, positions, strict=True):
            self._apply(batch, event, position)
        self._replay_streaks(batch)
        return batch.changes

    def _prefetch(self, events: Sequence[Any]) -> _Batch:
        batch = _Batch(self.store)
        wanted = {
            e.originator_id
            for e in events
            if isinstance(e, Promise.Event) and not isinstance(e, Promise.Made)
        }
        batch.promises.update(self.store.promises_by_id(wanted))
        tenants = {tenant_id(row.tenant) for row in batch.promises.values()}
        people = {person_id(row.tenant, row.promiser) for row in batch.promises.values()}
        for event in events:
            if isinstance(event, Promise.Made):
                tenants.add(tenant_id(event.tenant))
                people.add(person_id(event.tenant, event.promiser))
            elif isinstance(event, Person.Event):
                people.add(event.originator_id)
            elif isinstance(event, Tenant.Event):
                tenants.add(event.originator_id)
        batch.tenants.update(self.store.tenants(tenants))
        batch.people.update(self.store.people(people))
        keys = {
            k
            for row in batch.promises.values()
            for k in subject_keys(row.tenant, row.promiser, row.promisee, row.category)
        }
        for event in events:
            if isinstance(event, Promise.Made):
                keys.update(
                    subject_keys(event.tenant, event.promiser, event.promisee, event.category)
                )
        batch.subjects.update(self.store.subjects(keys))
        batch.absent_subjects.update(keys - batch.subjects.keys())
        self._prefetch_weeks(batch, events)
        return batch

    def _prefetch_weeks(self, batch: _Batch, events: Sequence[Any]) -> None:
        """Read, in one go, the week rows this batch's outcomes (and corrections) touch."""
        week_keys = set()
        for row in batch.promises.values():
            if row.outcome_at is not None:
                tz = batch.timezone(row.tenant, row.promiser)
                for key in subject_keys(row.tenant, row.promiser, row.promisee, row.category):
                    week_keys.add((key, week_start(row.outcome_at, tz)))
        made_here = {e.originator_id: e for e in events if isinstance(e, Promise.Made)}
        for event in events:
            if not isinstance(event, OUTCOME_EVENTS):
                continue
            # The promise is in the views already, or made earlier in this very batch.
            terms: Any = batch.promises.get(event.originator_id) or made_here.get(
                event.originator_id
            )
            if terms is None:
                continue
            tz = batch.timezone(terms.tenant, terms.promiser)
            for key in subject_keys(terms.tenant, terms.promiser, terms.promisee, terms.category):
                week_keys.add((key, week_start(event.at, tz)))
        found = self.store.weeks(week_keys)
        batch.weeks.update({k: found.get(k) for k in week_keys})

    def _apply(self, batch: _Batch, event: Any, position: int) -> None:
        if isinstance(event, Promise.Made):
            self._made(batch, event, position)
        elif isinstance(event, Promise.Renegotiated):
            self._renegotiated(batch, event, position)
        elif isinstance(event, OUTCOME_EVENTS):
            self._outcome(batch, event, position)
        elif isinstance(event, Person.Registered):
            if event.originator_id not in batch.people:
                batch.put_person(PersonRow(event.originator_id, event.tenant, event.key))
        elif isinstance(event, Person.TimezoneChanged):
            self._timezone(batch, event)
        elif isinstance(event, Tenant.Registered):
            if event.originator_id not in batch.tenants:
                batch.put_tenant(TenantRow(event.originator_id, event.name))
        elif isinstance(event, Tenant.ScoringPolicyChanged):
            self._policy(batch, event)

    def _made(self, batch: _Batch, event: Any, position: int) -> None:
        if event.originator_id in batch.promises:
            return  # a replayed event: already applied
        row = PromiseRow(
            aggregate_id=event.originator_id,
            tenant=event.tenant,
            key=event.key,
            promiser=event.promiser,
            promisee=event.promisee,
            category=event.category,
            title=event.title,
            status="open",
            due_at=event.due_at,
            made_at=event.made_at,
            made_recorded_at=event.timestamp,
            renegotiations=0,
            position=position,
        )
        batch.put_promise(event.originator_id, row)
        for key in subject_keys(row.tenant, row.promiser, row.promisee, row.category):
            subject = batch.subject(key)
            batch.put_subject(replace(subject, made=subject.made + 1, position=position))

    def _renegotiated(self, batch: _Batch, event: Any, position: int) -> None:
        row = batch.promises.get(event.originator_id)
        if row is None or row.position >= position:
            return
        batch.put_promise(
            event.originator_id,
            replace(
                row, due_at=event.due_at, renegotiations=row.renegotiations + 1, position=position
            ),
        )
        for key in subject_keys(row.tenant, row.promiser, row.promisee, row.category):
            subject = batch.subject(key)
            batch.put_subject(
                replace(subject, renegotiated=subject.renegotiated + 1, position=position)
            )

    def _outcome(self, batch: _Batch, event: Any, position: int) -> None:
        row = batch.promises.get(event.originator_id)
        if row is None or row.position >= position:
            return
        kind = outcome_kind(event)
        new = OutcomeRow(
            tenant=row.tenant,
            key=row.key,
            promiser=row.promiser,
            promisee=row.promisee,
            category=row.category,
            kind=kind,
            at=event.at,
            position=position,
            recorded_at=event.timestamp,
        )
        old: OutcomeRow | None = None
        if row.outcome_kind is not None and row.outcome_at is not None:
            old = OutcomeRow(
                tenant=row.tenant,
                key=row.key,
                promiser=row.promiser,
                promisee=row.promisee,
                category=row.category,
                kind=row.outcome_kind,
                at=row.outcome_at,
                position=row.outcome_position or 0,
                recorded_at=row.outcome_recorded_at or event.timestamp,
                replaced_at=event.timestamp,
            )
            batch.put_outcome(old)
        batch.put_outcome(new)
        batch.put_promise(
            event.originator_id,
            replace(
                row,
                status="kept" if kind.is_kept else kind.value,
                outcome_kind=kind,
                outcome_at=new.at,
                outcome_position=position,
                outcome_recorded_at=new.recorded_at,
                position=position,
            ),
        )
        tz = batch.timezone(row.tenant, row.promiser)
        policy = batch.policy(row.tenant)
        outcome, week = scored(new), week_start(new.at, tz)
        replaced = None if old is None else (scored(old), week_start(old.at, tz))
        for key in subject_keys(row.tenant, row.promiser, row.promisee, row.category):
            subject = batch.subject(key)
            if replaced is not None:
                was, old_week = replaced
                subject = _count(subject, was, -1, policy)
                batch.put_week(key, old_week, batch.week(key, old_week).remove(was, policy))
            subject = _count(subject, outcome, 1, policy)
            batch.put_week(key, week, batch.week(key, week).add(outcome, policy))
            streak = subject.streak
            if key in batch.stale_streaks:
                pass  # replayed at the end of the batch, this outcome included
            elif old is None and _in_order(streak, new):
                streak = streak.append(outcome, tz)
            else:
                # An earlier outcome time, or a correction: the subject's history must be
                # replayed, once per batch however many such outcomes it has.
                batch.stale_streaks.add(key)
            batch.put_subject(replace(subject, streak=streak, position=position))

    @staticmethod
    def _replay_streaks(batch: _Batch) -> None:
        """Replay the streaks of the subjects whose outcomes did not arrive in time order."""
        if not batch.stale_streaks:
            return
        for key, outcomes in batch.current_outcomes(batch.stale_streaks).items():
            streak = StreakState.replay(
                map(scored, outcomes), batch.timezone(key.tenant, key.person)
            )
            batch.put_subject(replace(batch.subjects[key], streak=streak))

    def _timezone(self, batch: _Batch, event: Any) -> None:
        person = batch.people.get(event.originator_id)
        if person is None or person.timezone == event.timezone:
            return
        batch.put_person(replace(person, timezone=event.timezone))
        # Local weeks and days moved: rebuild this person's weeks and streaks.
        self._rebuild(batch, self._subjects_of(batch, person.tenant, person.person))

    def _policy(self, batch: _Batch, event: Any) -> None:
        tenant = batch.tenants.get(event.originator_id)
        if tenant is None or tenant.policy == event.policy:
            return
        batch.put_tenant(replace(tenant, policy=event.policy))
        # Credits, masses and the half-life changed: every sum of the tenant is recomputed.
        self._rebuild(batch, self._subjects_of(batch, tenant.name, None))

    @staticmethod
    def _subjects_of(batch: _Batch, tenant: str, person: str | None) -> list[SubjectKey]:
        keys = set(batch.store.tenant_subjects(tenant, person))
        keys.update(k for k in batch.subjects if k.tenant == tenant and person in (None, k.person))
        return sorted(keys)

    def _rebuild(self, batch: _Batch, keys: Collection[SubjectKey]) -> None:
        """Recompute streaks, sums and weeks of `keys` from their current outcomes."""
        rebuilt = set(keys)
        # A policy change rebuilds people this batch has no other event of: read their zones.
        people = {_person_id(k.tenant, k.person) for k in rebuilt} - batch.people.keys()
        batch.people.update(self.store.people(people))
        for identity in [k for k in batch.changes.weeks if k[0] in rebuilt]:
            del batch.changes.weeks[identity]
            batch.changes.deleted_weeks.add(identity)
        for key, outcomes in batch.current_outcomes(keys).items():
            tz = batch.timezone(key.tenant, key.person)
            policy = batch.policy(key.tenant)
            for old in self.store.subject_weeks(key, date.min, date.max):
                batch.changes.deleted_weeks.add((key, old.week))
                batch.weeks[(key, old.week)] = None
            buckets: dict[date, WeekBucket] = {}
            sums = DecayedSums()
            for row in outcomes:
                week = week_start(row.at, tz)
                buckets[week] = buckets.get(week, WeekBucket()).add(scored(row), policy)
                weights = credit_and_mass(row.kind, policy)
                if weights is not None:
                    sums = sums.add(row.at, *weights, policy.half_life)
            for week, bucket in buckets.items():
                batch.put_week(key, week, bucket)
            subject = batch.subject(key)
            batch.put_subject(
                replace(
                    subject,
                    sums=sums,
                    streak=StreakState.replay(map(scored, outcomes), tz),
                )
            )


def _in_order(streak: StreakState, outcome: OutcomeRow) -> bool:
    return streak.last_at is None or (outcome.at, outcome.position) >= (
        streak.last_at,
        streak.last_order,
    )


def _count(
    subject: SubjectRow, outcome: ScoredOutcome, step: int, policy: ScoringPolicy
) -> SubjectRow:
    """`subject` with `outcome` counted (`step` 1) or taken out again (`step` -1)."""
    name = COUNTERS[outcome.kind]
    changed: dict[str, Any] = {name: getattr(subject, name) + step}
    weights = credit_and_mass(outcome.kind, policy)
    if weights is not None:
        change = subject.sums.add if step > 0 else subject.sums.remove
        changed["sums"] = change(outcome.at, *weights, policy.half_life)
    return replace(subject, **changed)
