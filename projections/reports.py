"""The report projection: turns a batch of events into one `ViewChanges`.

It is a deterministic function of the events and the view's prior rows: no clock, no reads
of the write model. Rows a batch needs are read once in bulk, changed in memory in event
order, and returned for the store to write with the batch's tracking position.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from datetime import UTC, date
from typing import Any, Final
from uuid import UUID

from domain.person import Person
from domain.promise import Promise
from domain.tenant import Tenant
from projections.calendar import week_start
from projections.frozen import built
from projections.report_batch import ReportBatch, Weighed, person_uuid, tenant_uuid
from projections.report_cache import ReportCache
from projections.scoring import (
    KEPT,
    DecayedSums,
    OutcomeKind,
    ScoredOutcome,
    credit_and_mass,
)
from projections.streak_window import StreakWindow
from projections.trend import WeekBucket
from projections.views import (
    OutcomeRow,
    PersonRow,
    PromiseRow,
    ReportViewStore,
    SubjectKey,
    TenantRow,
    ViewChanges,
    subject_keys,
)

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


class ReportProjection:
    """Applies events to the report views (promises, outcomes, subjects, weeks)."""

    def __init__(self, store: ReportViewStore) -> None:
        self.store = store
        self.cache = ReportCache()

    def apply(
        self,
        events: Sequence[Any],
        positions: Sequence[int],
        *,
        previous: int,
        settle: Callable[[], None],
    ) -> ViewChanges:
        """The changes `events` (with their notification ids) make to the views at position
        `previous`.

        The views may not be stored up to `previous` yet (the last batch being written):
        rows are read from the kept ones first, which hold every row of that batch, and
        `settle` is called to wait for the views before any read the kept rows cannot
        answer (all outcomes of a promiser, all subjects of a person or tenant).
        """
        try:
            batch = ReportBatch(self.store, self.cache.at(previous), settle)
            self._prefetch(batch, events)
            for event, position in zip(events, positions, strict=True):
                self._apply(batch, event, position)
            self._replay_streaks(batch)
            return batch.finish(positions[-1])
        except BaseException:
            # Kept tallies are changed in place: a batch left halfway leaves them wrong.
            self.cache.clear()
            raise

    def forget(self) -> None:
        """Drop every kept row: the stored views may not be the ones the last batch made."""
        self.cache.clear()

    def _prefetch(self, batch: ReportBatch, events: Sequence[Any]) -> None:
        made: dict[UUID, Any] = {}
        promises: set[UUID] = set()
        people: set[UUID] = set()
        tenants: set[UUID] = set()
        for event in events:
            if isinstance(event, Promise.Made):
                made[event.originator_id] = event
            elif isinstance(event, Promise.Event):
                promises.add(event.originator_id)
            elif isinstance(event, Person.Event):
                people.add(event.originator_id)
            elif isinstance(event, Tenant.Event):
                tenants.add(event.originator_id)
        batch.read_promises(promises - made.keys())
        keys: set[SubjectKey] = set()
        for terms in (*batch.promises.values(), *made.values()):
            tenants.add(tenant_uuid(terms.tenant))
            people.add(person_uuid(terms.tenant, terms.promiser))
            keys.update(subject_keys(terms.tenant, terms.promiser, terms.promisee, terms.category))
        batch.read_tenants(tenants)
        batch.read_people(people)
        batch.read_subjects(keys)
        self._prefetch_weeks(batch, events, made)

    def _prefetch_weeks(
        self, batch: ReportBatch, events: Sequence[Any], made: dict[UUID, Any]
    ) -> None:
        """Read, in one go, the week rows this batch's outcomes (and corrections) touch."""
        if batch.cache.weeks.complete:
            return  # from empty views on, every week row written is kept
        week_keys = set()
        for row in batch.promises.values():
            if row.outcome_at is not None:
                week = week_start(row.outcome_at, batch.timezone(row.tenant, row.promiser))
                for key in subject_keys(row.tenant, row.promiser, row.promisee, row.category):
                    week_keys.add((key, week))
        for event in events:
            if not isinstance(event, OUTCOME_EVENTS):
                continue
            # The promise is in the views already, or made earlier in this very batch.
            terms: Any = batch.promises.get(event.originator_id) or made.get(event.originator_id)
            if terms is None:
                continue
            week = week_start(event.at, batch.timezone(terms.tenant, terms.promiser))
            for key in subject_keys(terms.tenant, terms.promiser, terms.promisee, terms.category):
                week_keys.add((key, week))
        batch.read_weeks(week_keys)

    def _apply(self, batch: ReportBatch, event: Any, position: int) -> None:
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

    def _made(self, batch: ReportBatch, event: Any, position: int) -> None:
        if event.originator_id in batch.promises:
            return  # a replayed event: already applied
        row = built(
            PromiseRow,
            {
                "aggregate_id": event.originator_id,
                "tenant": event.tenant,
                "key": event.key,
                "promiser": event.promiser,
                "promisee": event.promisee,
                "category": event.category,
                "title": event.title,
                "status": "open",
                "due_at": event.due_at,
                "made_at": event.made_at,
                "made_recorded_at": event.timestamp,
                "outcome_kind": None,
                "outcome_at": None,
                "outcome_position": None,
                "outcome_recorded_at": None,
                "renegotiations": 0,
                "position": position,
            },
        )
        batch.put_promise(event.originator_id, row)
        for key in subject_keys(row.tenant, row.promiser, row.promisee, row.category):
            subject = batch.subject(key)
            subject.made += 1
            subject.position = position

    def _renegotiated(self, batch: ReportBatch, event: Any, position: int) -> None:
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
            subject.renegotiated += 1
            subject.position = position

    def _outcome(self, batch: ReportBatch, event: Any, position: int) -> None:
        row = batch.promises.get(event.originator_id)
        if row is None or row.position >= position:
            return
        kind = outcome_kind(event)
        new = built(
            OutcomeRow,
            {
                "tenant": row.tenant,
                "key": row.key,
                "promiser": row.promiser,
                "promisee": row.promisee,
                "category": row.category,
                "kind": kind,
                "at": event.at,
                "position": position,
                "recorded_at": event.timestamp,
                "replaced_at": None,
            },
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
        # Built from the old row's fields rather than by `replace`, which costs several times
        # as much.
        batch.put_promise(
            event.originator_id,
            built(
                PromiseRow,
                {
                    **vars(row),
                    "status": "kept" if kind in KEPT else kind.value,
                    "outcome_kind": kind,
                    "outcome_at": new.at,
                    "outcome_position": position,
                    "outcome_recorded_at": new.recorded_at,
                    "position": position,
                },
            ),
        )
        tz = batch.timezone(row.tenant, row.promiser)
        policy = batch.policy(row.tenant)
        # The same for each of the promise's subjects: worked out once.
        outcome, at = scored(new), new.at.astimezone(UTC)
        week = week_start(at, tz)
        weighed = Weighed.of(kind, new.at, policy)
        if old is not None:
            was, old_week = scored(old), week_start(old.at, tz)
            old_weighed = Weighed.of(old.kind, old.at, policy)
        stale = batch.stale_streaks
        for key in subject_keys(row.tenant, row.promiser, row.promisee, row.category):
            subject = batch.subject(key)
            if old is not None:
                subject.count(old_weighed, -1)
                batch.week(key, old_week).count(old_weighed, -1)
            subject.count(weighed, 1)
            batch.week(key, week).count(weighed, 1)
            subject.position = position
            window = subject.window
            if key not in stale and old is None and subject.follows(new.at, position):
                subject.append(outcome, at, week)
                if window is not None:
                    window.append(outcome)
                continue
            # An earlier outcome time, or a correction: the subject's streak is replayed at the
            # end of the batch (once, however many such outcomes it has), from its window if
            # the window can take the change.
            stale.add(key)
            if window is not None and not (
                (old is None or window.remove(was)) and window.add(outcome)
            ):
                subject.window = None

    @staticmethod
    def _replay_streaks(batch: ReportBatch) -> None:
        """Replay the streaks of the subjects whose outcomes did not arrive in time order,
        from their windows where kept, else from all their outcomes (one read)."""
        unknown = []
        for key in batch.stale_streaks:
            subject = batch.subjects[key]
            if subject.window is None:
                unknown.append(key)
            else:
                subject.set_streak(subject.window.replay(batch.timezone(key.tenant, key.person)))
        if unknown:
            for key, outcomes in batch.current_outcomes(unknown).items():
                subject = batch.subjects[key]
                tz = batch.timezone(key.tenant, key.person)
                subject.window, streak = StreakWindow.of([scored(o) for o in outcomes], tz)
                subject.set_streak(streak)
        for key, subject in batch.subjects.items():
            if subject.window is not None and subject.window.is_long:
                subject.window.trim(batch.timezone(key.tenant, key.person))

    def _timezone(self, batch: ReportBatch, event: Any) -> None:
        person = batch.people.get(event.originator_id)
        if person is None or person.timezone == event.timezone:
            return
        batch.put_person(replace(person, timezone=event.timezone))
        # Local weeks and days moved: rebuild this person's weeks and streaks.
        self._rebuild(batch, self._subjects_of(batch, person.tenant, person.person))

    def _policy(self, batch: ReportBatch, event: Any) -> None:
        tenant = batch.tenants.get(event.originator_id)
        if tenant is None or tenant.policy == event.policy:
            return
        batch.put_tenant(replace(tenant, policy=event.policy))
        # Credits, masses and the half-life changed: every sum of the tenant is recomputed.
        self._rebuild(batch, self._subjects_of(batch, tenant.name, None))

    @staticmethod
    def _subjects_of(batch: ReportBatch, tenant: str, person: str | None) -> list[SubjectKey]:
        keys = set(batch.history().tenant_subjects(tenant, person))
        keys.update(k for k in batch.subjects if k.tenant == tenant and person in (None, k.person))
        return sorted(keys)

    def _rebuild(self, batch: ReportBatch, keys: Collection[SubjectKey]) -> None:
        """Recompute streaks, sums and weeks of `keys` from their current outcomes."""
        rebuilt = set(keys)
        # A policy change rebuilds people this batch has no other event of: read their zones.
        batch.read_people({person_uuid(k.tenant, k.person) for k in rebuilt})
        batch.read_subjects(rebuilt)
        batch.delete_weeks(rebuilt)
        for key, outcomes in batch.current_outcomes(keys).items():
            tz = batch.timezone(key.tenant, key.person)
            policy = batch.policy(key.tenant)
            for old in batch.history().subject_weeks(key, date.min, date.max):
                batch.delete_week(key, old.week)
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
            subject.set_sums(sums)
            subject.window, streak = StreakWindow.of([scored(o) for o in outcomes], tz)
            subject.set_streak(streak)
