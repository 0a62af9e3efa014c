"""The report views' contract: rows, one batch of changes, and the store every backend implements.

A projection reads the rows a batch of events touches, changes them in memory, and hands
the store one `ViewChanges` to write together with the new tracking position in a single
transaction: each event affects the views exactly once, even across crashes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Final, NamedTuple
from uuid import UUID

from domain.policy import ScoringPolicy
from projections.calendar import DEFAULT_TIMEZONE, WEEK
from projections.scoring import DecayedSums, OutcomeKind
from projections.streaks import StreakState
from projections.trend import WeekBucket

REPORTS_VIEW: Final = "reports"
INSTANT: Final = timedelta(microseconds=1)  # the resolution of stored times
# The outcome kinds subject and week rows count, in the order of their count columns.
COUNTED_KINDS: Final = (
    OutcomeKind.KEPT,
    OutcomeKind.KEPT_LATE,
    OutcomeKind.BROKEN,
    OutcomeKind.LAPSED,
    OutcomeKind.RELEASED,
)

PromiseKey = tuple[str, str]  # (tenant, promise key)
PersonKey = tuple[str, str]  # (tenant, person)


class SubjectKey(NamedTuple):
    """Whose record a report is: a promiser; a promiser to one promisee; or in one category."""

    # A tuple, not a dataclass: the projector hashes and compares keys millions of times in a
    # catch-up, and a tuple does both in C.
    tenant: str
    kind: str  # "promiser" | "pair" | "category"
    person: str
    other: str = ""  # the promisee (pair) or the category; "" for a promiser


@dataclass(frozen=True)
class PromiseRow:
    """A promise as the reports see it, with its current outcome (if any)."""

    aggregate_id: UUID
    tenant: str
    key: str
    promiser: str
    promisee: str | None
    category: str | None
    title: str
    status: str  # open | kept | broken | released | lapsed
    due_at: datetime | None
    made_at: datetime
    made_recorded_at: datetime
    outcome_kind: OutcomeKind | None = None
    outcome_at: datetime | None = None
    outcome_position: int | None = None
    outcome_recorded_at: datetime | None = None
    renegotiations: int = 0
    position: int = 0


@dataclass(frozen=True)
class OutcomeRow:
    """One outcome a promise had; a correction replaces the current row, never deletes it.

    `position` (the event's notification id) is the recording order and, with tenant and
    key, the row's identity; `recorded_at`/`replaced_at` bound when it was the current
    outcome, which is what `known_at` reports need.
    """

    tenant: str
    key: str
    promiser: str
    promisee: str | None
    category: str | None
    kind: OutcomeKind
    at: datetime
    position: int
    recorded_at: datetime
    replaced_at: datetime | None = None


@dataclass(frozen=True)
class SubjectRow:
    """A subject's current figures: counts, rebased score sums and streak state."""

    key: SubjectKey
    made: int = 0
    kept: int = 0
    kept_late: int = 0
    broken: int = 0
    lapsed: int = 0
    released: int = 0
    renegotiated: int = 0
    sums: DecayedSums = field(default_factory=DecayedSums)
    streak: StreakState = field(default_factory=StreakState)
    position: int = 0


@dataclass(frozen=True)
class WeekRow:
    """One subject's outcomes in one local ISO week (Monday `week`)."""

    key: SubjectKey
    week: date
    bucket: WeekBucket


@dataclass(frozen=True)
class PersonRow:
    """A person's id within their tenant and their time zone."""

    aggregate_id: UUID
    tenant: str
    person: str
    timezone: str = DEFAULT_TIMEZONE


@dataclass(frozen=True)
class TenantRow:
    """A tenant's name and scoring policy (the default until changed)."""

    aggregate_id: UUID
    name: str
    policy: ScoringPolicy = field(default_factory=ScoringPolicy)


def timezone_of(person: PersonRow | None) -> str:
    """A person's time zone; the default for one without a row (who never set one)."""
    return DEFAULT_TIMEZONE if person is None else person.timezone


def policy_of(tenant: TenantRow | None) -> ScoringPolicy:
    """A tenant's scoring policy; the default for one without a row."""
    return ScoringPolicy() if tenant is None else tenant.policy


@dataclass
class ViewChanges:
    """Everything one batch writes; every row is upserted by its identity (people and
    tenants by aggregate id), then `deleted_weeks` are deleted."""

    promises: dict[PromiseKey, PromiseRow] = field(default_factory=dict)
    outcomes: dict[tuple[str, str, int], OutcomeRow] = field(default_factory=dict)
    subjects: dict[SubjectKey, SubjectRow] = field(default_factory=dict)
    weeks: dict[tuple[SubjectKey, date], WeekRow] = field(default_factory=dict)
    deleted_weeks: set[tuple[SubjectKey, date]] = field(default_factory=set)
    people: dict[UUID, PersonRow] = field(default_factory=dict)
    tenants: dict[UUID, TenantRow] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(
            (
                self.promises,
                self.outcomes,
                self.subjects,
                self.weeks,
                self.deleted_weeks,
                self.people,
                self.tenants,
            )
        )


class RecentWindow(NamedTuple):
    """The current outcomes a current report tallies as recent: those with outcome time in
    (`since`, `until`].

    With `split` (a local week and the instant the next one starts), those from that instant
    on are counted from the subject's week rows after that week rather than one by one: a few
    rows however many outcomes there are. The caller vouches that this counts the same: the
    week rows are in the zone the split was worked out in, the instant splits outcome times by
    week (`week_split`), and no outcome is after `until` (a current report's subject row
    shows that).
    """

    since: datetime
    until: datetime
    split: tuple[date, datetime] | None = None

    @property
    def weeks_after(self) -> date | None:
        """The week after which week rows are counted; None: none are."""
        return None if self.split is None else self.split[0]

    @property
    def rows_until(self) -> datetime:
        """The latest outcome time counted from the outcome rows."""
        return self.until if self.split is None else min(self.until, self.split[1] - INSTANT)


def counts_of(row: SubjectRow | WeekBucket) -> list[int]:
    """A subject's or week's outcome counts in the order of `COUNTED_KINDS`."""
    return [row.kept, row.kept_late, row.broken, row.lapsed, row.released]


def add_counts(counts: dict[OutcomeKind, int], numbers: Iterable[int | None]) -> None:
    """Add counts given in the order of `COUNTED_KINDS` (None for none) to `counts` (per kind,
    kinds with none left out)."""
    for kind, n in zip(COUNTED_KINDS, numbers, strict=True):
        if n:
            counts[kind] = counts.get(kind, 0) + n


@dataclass(frozen=True)
class CurrentRows:
    """Everything a current report reads, from one snapshot of the views."""

    subject: SubjectRow | None
    person: PersonRow | None
    tenant: TenantRow | None
    open_promises: list[PromiseRow]
    weeks: list[WeekRow]  # the week rows in the range asked for
    recent: dict[OutcomeKind, int]  # current outcomes per kind in the `RecentWindow` asked for


class ReportViewStore(ABC):
    """Storage of the report views; one implementation per backend, one contract test."""

    # Schema

    @abstractmethod
    def create_tables(self) -> None:
        """Create every table and index if missing (run by `troth migrate` only)."""

    @abstractmethod
    def drop_tables(self) -> None:
        """Drop every view table and the tracking row (for a rebuild)."""

    @abstractmethod
    def aside(self, suffix: str) -> ReportViewStore:
        """A store on a second set of tables (names ending in `suffix`) in the same database,
        to rebuild the views while this one keeps serving."""

    @abstractmethod
    def swap_in(self, aside: ReportViewStore) -> None:
        """Replace this store's tables by those of `aside` (from `aside()`) in one transaction:
        readers see the old views or the new ones, never a mix. `aside` is empty afterwards."""

    # Writing, with the tracking position, in one transaction

    @abstractmethod
    def position(self, view: str = REPORTS_VIEW) -> int:
        """The notification id of the last event applied to `view` (0 before any)."""

    @abstractmethod
    def write(
        self,
        changes: ViewChanges,
        position: int,
        view: str = REPORTS_VIEW,
        *,
        previous: int | None = None,
    ) -> None:
        """Apply `changes` and set the tracking position, atomically.

        Raises `eventsourcing.persistence.IntegrityError` and writes nothing when
        `position` is not greater than the stored one, or when `previous` is given and the
        stored position is not exactly `previous` (another projector moved it meanwhile, so
        `changes` were computed from rows that may be stale).
        """

    # Reads a projection needs while applying a batch

    @abstractmethod
    def promises(self, keys: Iterable[PromiseKey]) -> dict[PromiseKey, PromiseRow]:
        """The stored promises among `keys`."""

    @abstractmethod
    def promises_by_id(self, ids: Iterable[UUID]) -> dict[UUID, PromiseRow]:
        """The stored promises among aggregate `ids` (events name promises by id only)."""

    @abstractmethod
    def subjects(self, keys: Iterable[SubjectKey]) -> dict[SubjectKey, SubjectRow]:
        """The stored subjects among `keys`."""

    @abstractmethod
    def weeks(
        self, keys: Iterable[tuple[SubjectKey, date]]
    ) -> dict[tuple[SubjectKey, date], WeekRow]:
        """The stored week rows among `keys`."""

    @abstractmethod
    def promiser_outcomes(self, promisers: Iterable[PersonKey]) -> list[OutcomeRow]:
        """The current outcomes of every promise made by one of `promisers`, in no order."""

    @abstractmethod
    def people(self, ids: Iterable[UUID]) -> dict[UUID, PersonRow]:
        """The recorded people among Person aggregate `ids`."""

    @abstractmethod
    def tenants(self, ids: Iterable[UUID]) -> dict[UUID, TenantRow]:
        """The recorded tenants among Tenant aggregate `ids`."""

    # Reads for reports and rebuilding one subject

    def reading(self) -> AbstractContextManager[None]:
        """Group the reads made inside (one report) into one consistent snapshot, where the
        backend offers one; nested uses join the outer one."""
        return nullcontext()

    def current_rows(
        self,
        key: SubjectKey,
        *,
        person: UUID,
        tenant: UUID,
        weeks: tuple[date, date],
        recent: RecentWindow,
    ) -> CurrentRows:
        """The rows of a current report in one snapshot: the subject, its person and tenant
        rows (by aggregate id), its open promises, its week rows with `weeks[0] <= week <=
        weeks[1]`, and its recent tally (`recent_counts`). Backends where a read costs a round
        trip override it to make one."""
        with self.reading():
            return CurrentRows(
                subject=self.subjects([key]).get(key),
                person=self.people([person]).get(person),
                tenant=self.tenants([tenant]).get(tenant),
                open_promises=self.subject_promises(key, status="open"),
                weeks=self.subject_weeks(key, *weeks),
                recent=self.recent_counts(key, recent),
            )

    def recent_counts(self, key: SubjectKey, window: RecentWindow) -> dict[OutcomeKind, int]:
        """The subject's current outcomes per kind in `window` (see `RecentWindow`), kinds
        with none left out."""
        counts = self.subject_outcome_counts(key, window.since, window.rows_until)
        if window.weeks_after is not None:
            for row in self.subject_weeks(key, window.weeks_after + WEEK, date.max):
                add_counts(counts, counts_of(row.bucket))
        return counts

    @abstractmethod
    def subject_outcomes(
        self, key: SubjectKey, *, current_only: bool = True, since: datetime | None = None
    ) -> list[OutcomeRow]:
        """The outcomes of a subject's promises, by (at, position); with `current_only`
        False also the replaced ones (for `known_at` reports); with `since` only those with
        an outcome time after it."""

    @abstractmethod
    def subject_outcome_counts(
        self, key: SubjectKey, since: datetime, until: datetime
    ) -> dict[OutcomeKind, int]:
        """How many of the subject's current outcomes of each kind have their outcome time
        in `(since, until]` (kinds with none left out), counted by the store: no row is
        read out to be counted."""

    @abstractmethod
    def subject_promises(self, key: SubjectKey, *, status: str | None = None) -> list[PromiseRow]:
        """The subject's promises, optionally only those with `status`, by due time."""

    @abstractmethod
    def subject_weeks(self, key: SubjectKey, first: date, last: date) -> list[WeekRow]:
        """The subject's week rows with `first <= week <= last`."""

    @abstractmethod
    def tenant_subjects(self, tenant: str, person: str | None = None) -> list[SubjectKey]:
        """Every subject of a tenant (or of one person in it)."""

    @abstractmethod
    def list_promises(
        self,
        tenant: str,
        *,
        promiser: str | None = None,
        status: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[PromiseRow]:
        """A page of a tenant's promises ordered by key, starting after key `after`."""

    @abstractmethod
    def list_people(
        self, tenant: str, *, after: str | None = None, limit: int = 50
    ) -> list[SubjectRow]:
        """A page of a tenant's promiser subjects ordered by person, after person `after`."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""


@lru_cache(maxsize=1 << 17)
def subject_keys(
    tenant: str, promiser: str, promisee: str | None, category: str | None
) -> Sequence[SubjectKey]:
    """The subjects a promise counts for (the same keys each time, so they compare fast)."""
    keys = [SubjectKey(tenant, "promiser", promiser)]
    if promisee:
        keys.append(SubjectKey(tenant, "pair", promiser, promisee))
    if category:
        keys.append(SubjectKey(tenant, "category", promiser, category))
    return tuple(keys)
