"""One batch's working set: the rows it read, changed in place, then frozen into `ViewChanges`.

Each outcome changes up to three subjects and their week rows. Changing frozen rows meant a
copy per counter, per sum and per streak step, the largest cost of a catch-up; the tallies
here are changed in place and frozen once per batch, for the store, and stay in the cache
(`report_cache`) for the next batches.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final, NamedTuple
from uuid import UUID

from domain.identity import person_id, tenant_id
from domain.policy import ScoringPolicy
from projections.frozen import built
from projections.report_cache import MISSING, ReportCache
from projections.scoring import (
    DecayedSums,
    OutcomeKind,
    RunningSums,
    ScoredOutcome,
    credit_and_mass,
)
from projections.streak_window import StreakWindow
from projections.streaks import StreakFold, StreakState
from projections.trend import WeekBucket
from projections.views import (
    COUNTED_KINDS,
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
    counts_of,
    policy_of,
    subject_keys,
    timezone_of,
)

# An outcome's kind counts at its index in the rows' count fields, which are named as the kinds.
_INDEX: Final = {kind: i for i, kind in enumerate(COUNTED_KINDS)}
_COUNT_FIELDS: Final = tuple(kind.value for kind in COUNTED_KINDS)


class Weighed(NamedTuple):
    """An outcome as the tallies count it, worked out once for every subject and week it
    counts in (up to six tallies)."""

    slot: int  # its kind's place in `COUNTED_KINDS`
    at: datetime
    change: float  # credit times mass: what it adds to K
    mass: float | None  # what it adds to N; None if it does not score (released)
    half_life: float  # the tenant's, in seconds

    @classmethod
    def of(cls, kind: OutcomeKind, at: datetime, policy: ScoringPolicy) -> Weighed:
        weights = credit_and_mass(kind, policy)
        half_life = policy.half_life.total_seconds()
        if weights is None:
            return cls(_INDEX[kind], at, 0.0, None, half_life)
        credit, mass = weights
        return cls(_INDEX[kind], at, credit * mass, mass, half_life)


class _OutcomeTally(RunningSums):
    """Outcome counts by kind and decayed sums, changed in place: what a subject and a week
    count alike."""

    __slots__ = ("counts",)

    def __init__(self, counts: list[int], sums: DecayedSums) -> None:
        super().__init__(sums)
        self.counts = counts  # in the order of `COUNTED_KINDS`

    def count(self, outcome: Weighed, step: int) -> None:
        """Count `outcome` in (`step` 1) or take it out again (`step` -1)."""
        self.counts[outcome.slot] += step
        mass = outcome.mass
        if mass is not None:
            # Negated after the product, where `DecayedSums.remove` negates the credit before:
            # the same float either way (rounding is symmetric about zero).
            if step > 0:
                self.shift(outcome.at, outcome.change, mass, outcome.half_life)
            else:
                self.shift(outcome.at, -outcome.change, -mass, outcome.half_life)

    def counted(self) -> dict[str, int]:
        """The counts as the rows' count fields."""
        return dict(zip(_COUNT_FIELDS, self.counts, strict=True))


class SubjectTally(_OutcomeTally):
    """A subject's figures, changed in place while batches apply: counts, sums and streak.

    Kept in the cache between batches (with the row last frozen from it), so the next batch
    goes on with it instead of building it again from the row.
    """

    __slots__ = (
        "changed",
        "fold",
        "key",
        "made",
        "position",
        "renegotiated",
        "row",
        "streak",
        "window",
    )

    def __init__(self, row: SubjectRow, window: StreakWindow | None = None) -> None:
        super().__init__(counts_of(row), row.sums)
        self.row = row
        self.key = row.key
        self.made = row.made
        self.renegotiated = row.renegotiated
        self.streak = row.streak
        self.fold: StreakFold | None = None  # the streak going on from `streak`, once appended
        self.position = row.position
        self.changed = False
        # The subject's history since a checkpoint, if kept; None: a replay reads it all.
        self.window = window

    def follows(self, at: datetime, order: int) -> bool:
        """Whether an outcome at `at` (recorded at `order`) is at or after the streak's last."""
        last = self.streak if self.fold is None else self.fold
        return last.last_at is None or (at, order) >= (last.last_at, last.last_order)

    def append(self, outcome: ScoredOutcome, at: datetime, week: date) -> None:
        """Fold an outcome at or after every other into the streak (at `at`, its UTC instant,
        in the local `week`)."""
        if self.fold is None:
            self.fold = self.streak.folding()
        self.fold.add_at(outcome.kind, at, outcome.order, week)

    def set_streak(self, streak: StreakState) -> None:
        """Replace the streak (by a replay)."""
        self.streak, self.fold = streak, None

    def frozen(self) -> SubjectRow:
        """The subject's row as the batch leaves it; unchanged from then on."""
        if not self.changed:
            return self.row
        self.changed = False
        self.row = built(
            SubjectRow,
            {
                "key": self.key,
                "made": self.made,
                **self.counted(),
                "renegotiated": self.renegotiated,
                "sums": self.frozen_sums(),
                "streak": self.streak if self.fold is None else self.fold.state(),
                "position": self.position,
            },
        )
        self.streak = self.row.streak
        return self.row


_NO_SUMS: Final = DecayedSums()


class WeekTally(_OutcomeTally):
    """One subject's week, changed in place while batches apply: counts and sums (kept in
    the cache between batches, as `SubjectTally`)."""

    __slots__ = ("bucket", "changed")

    def __init__(self, bucket: WeekBucket | None = None) -> None:
        if bucket is None:
            super().__init__([0, 0, 0, 0, 0], _NO_SUMS)
        else:
            super().__init__(counts_of(bucket), bucket.sums)
        self.bucket = bucket
        self.changed = bucket is None  # a new row is written, even if nothing counts in it

    def count(self, outcome: Weighed, step: int) -> None:
        """Count `outcome` in (`step` 1) or take it out again (`step` -1), as `WeekBucket`."""
        self.changed = True
        super().count(outcome, step)

    def frozen(self) -> WeekBucket:
        """The week's bucket as the batch leaves it; unchanged from then on."""
        if self.bucket is not None and not self.changed:
            return self.bucket
        self.changed = False
        self.bucket = built(WeekBucket, {**self.counted(), "sums": self.frozen_sums()})
        return self.bucket


@dataclass
class ReportBatch:
    """The rows one batch works on, and which of them changed.

    Rows are read from `cache` where it has them, else from `store`; `finish` leaves every row
    the batch read or wrote in `cache`.
    """

    store: ReportViewStore
    cache: ReportCache
    settle: Callable[[], None]
    promises: dict[UUID, PromiseRow] = field(default_factory=dict)
    subjects: dict[SubjectKey, SubjectTally] = field(default_factory=dict)
    # None: no such row (none stored, or deleted by this batch).
    weeks: dict[tuple[SubjectKey, date], WeekTally | None] = field(default_factory=dict)
    people: dict[UUID, PersonRow] = field(default_factory=dict)
    tenants: dict[UUID, TenantRow] = field(default_factory=dict)
    absent_subjects: set[SubjectKey] = field(default_factory=set)
    stale_streaks: set[SubjectKey] = field(default_factory=set)
    deleted_weeks: set[tuple[SubjectKey, date]] = field(default_factory=set)
    changes: ViewChanges = field(default_factory=ViewChanges)

    def history(self) -> ReportViewStore:
        """The store, once it holds every earlier batch: for reads of all the rows that match
        a condition, which the cache (holding some rows by their keys) cannot answer."""
        self.settle()
        return self.store

    def read_promises(self, ids: Iterable[UUID]) -> None:
        """Read the promises among `ids` that this batch has not."""
        kept, unread = self.cache.promises.split(i for i in ids if i not in self.promises)
        self.promises.update(kept)
        if not self.cache.promises.complete:
            self.promises.update(self.store.promises_by_id(unread))

    def read_people(self, ids: Iterable[UUID]) -> None:
        """Read the people among `ids` that this batch has not."""
        kept, unread = self.cache.people.split(i for i in ids if i not in self.people)
        self.people.update(kept)
        if not self.cache.people.complete:
            self.people.update(self.store.people(unread))

    def read_tenants(self, ids: Iterable[UUID]) -> None:
        """Read the tenants among `ids` that this batch has not."""
        kept, unread = self.cache.tenants.split(i for i in ids if i not in self.tenants)
        self.tenants.update(kept)
        if not self.cache.tenants.complete:
            self.tenants.update(self.store.tenants(unread))

    def read_subjects(self, keys: Iterable[SubjectKey]) -> None:
        """Read the subjects among `keys` that this batch has not; the others are new."""
        kept, unread = self.cache.subjects.split(
            k for k in keys if k not in self.subjects and k not in self.absent_subjects
        )
        found = {} if self.cache.subjects.complete else self.store.subjects(unread)
        for key, tally in kept.items():
            if tally is None:
                self.absent_subjects.add(key)
            else:
                self.subjects[key] = tally
        for key in unread:
            row = found.get(key)
            if row is None:
                self.absent_subjects.add(key)
            else:
                self.subjects[key] = SubjectTally(row)

    def subject(self, key: SubjectKey) -> SubjectTally:
        """The subject's tally, marked changed (every caller changes it)."""
        tally = self.subjects.get(key)
        if tally is None:
            if key not in self.absent_subjects:
                self.read_subjects([key])
            tally = self.subjects.get(key)
            if tally is None:
                # A new subject: no outcomes yet, so an empty window is its whole history.
                tally = SubjectTally(SubjectRow(key), StreakWindow(StreakState(), []))
                self.subjects[key] = tally
        tally.changed = True
        return tally

    def knows_weeks(self, key: SubjectKey) -> bool:
        """Whether every stored week row of the subject is in the cache (or none is stored)."""
        return (
            key in self.absent_subjects
            or key in self.cache.complete_weeks
            or self.cache.weeks.complete
        )

    def read_weeks(self, identities: Iterable[tuple[SubjectKey, date]]) -> None:
        """Read, in one go, the week rows among `identities` that neither this batch nor the
        cache has, of subjects whose weeks the cache does not know all of."""
        kept, unread = self.cache.weeks.split(
            i for i in identities if i not in self.weeks and not self.knows_weeks(i[0])
        )
        self.weeks.update(kept)
        found = self.store.weeks(unread)
        for identity in unread:
            row = found.get(identity)
            self.weeks[identity] = None if row is None else WeekTally(row.bucket)

    def week(self, key: SubjectKey, week: date) -> WeekTally:
        """The week's tally (new and empty if no row is stored)."""
        identity = (key, week)
        tally = self.weeks.get(identity)
        if tally is None:
            if identity in self.weeks:
                tally = WeekTally()  # none stored, or deleted by this batch
            else:
                kept = self.cache.weeks.get(identity, MISSING)
                if kept is MISSING and not self.knows_weeks(key):
                    self.read_weeks([identity])
                    tally = self.weeks[identity] or WeekTally()
                else:
                    tally = kept if isinstance(kept, WeekTally) else WeekTally()
            self.weeks[identity] = tally
        return tally

    def delete_weeks(self, keys: Collection[SubjectKey]) -> None:
        """Drop every week row of `keys` that this batch holds (stored ones: `delete_week`)."""
        for identity, tally in self.weeks.items():
            if identity[0] in keys and tally is not None:
                self.weeks[identity] = None
                self.deleted_weeks.add(identity)

    def delete_week(self, key: SubjectKey, week: date) -> None:
        """Delete a stored week row."""
        self.weeks[(key, week)] = None
        self.deleted_weeks.add((key, week))

    def put_week(self, key: SubjectKey, week: date, bucket: WeekBucket) -> None:
        """Replace the week's row by `bucket`."""
        tally = WeekTally(bucket)
        tally.changed = True
        self.weeks[(key, week)] = tally

    def timezone(self, tenant: str, person: str) -> str:
        return timezone_of(self.people.get(person_uuid(tenant, person)))

    def policy(self, tenant: str) -> ScoringPolicy:
        return policy_of(self.tenants.get(tenant_uuid(tenant)))

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
        for row in self.history().promiser_outcomes(rows):
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
                    if r.replaced_at is None
                    and key in subject_keys(r.tenant, r.promiser, r.promisee, r.category)
                ),
                key=lambda r: (r.at, r.position),
            )
            for key in keys
        }

    def finish(self, position: int) -> ViewChanges:
        """The batch's changes, each changed subject and week frozen into its row; leaves
        every row the batch read or wrote in the cache, as the rows at `position`."""
        changes = self.changes
        for key, subject in self.subjects.items():
            if subject.changed:
                changes.subjects[key] = subject.frozen()
        for identity, week in self.weeks.items():
            if week is not None and week.changed:
                changes.weeks[identity] = built(
                    WeekRow, {"key": identity[0], "week": identity[1], "bucket": week.frozen()}
                )
        changes.deleted_weeks = self.deleted_weeks - changes.weeks.keys()

        cache = self.cache
        cache.promises.keep(self.promises.items())
        cache.people.keep(self.people.items())
        cache.tenants.keep(self.tenants.items())
        # Subjects new in this batch have all their week rows here; those still not stored
        # are kept as missing.
        cache.complete_weeks.update(self.absent_subjects & self.subjects.keys())
        missing = ((k, None) for k in self.absent_subjects - self.subjects.keys())
        subjects: Iterable[tuple[SubjectKey, SubjectTally | None]] = self.subjects.items()
        forgotten = cache.subjects.keep([*subjects, *missing])
        cache.complete_weeks.difference_update(forgotten)
        cache.complete_weeks.difference_update(k for k, _ in cache.weeks.keep(self.weeks.items()))
        cache.position = position
        return changes


@functools.lru_cache(maxsize=65536)
def person_uuid(tenant: str, person: str) -> UUID:
    """`person_id`, cached: a uuid5 (a SHA-1) per outcome and subject was a measurable cost."""
    return person_id(tenant, person)


@functools.lru_cache(maxsize=4096)
def tenant_uuid(tenant: str) -> UUID:
    """`tenant_id`, cached for the same reason."""
    return tenant_id(tenant)
