"""Reports read from the views: the current one in a few row reads, any past one from scratch."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final
from uuid import UUID

from domain.identity import person_id, tenant_id
from domain.policy import ScoringPolicy
from projections.calendar import WEEK, day_start_instant, week_split, week_start
from projections.scoring import (
    DecayedSums,
    OutcomeKind,
    Score,
    ScoredOutcome,
    score_at,
    score_from_sums,
)
from projections.streaks import Streaks, StreakState
from projections.trend import Trend, trend_at, trend_from_buckets, window
from projections.views import (
    CurrentRows,
    OutcomeRow,
    PromiseRow,
    RecentWindow,
    ReportViewStore,
    SubjectKey,
    SubjectRow,
    policy_of,
    timezone_of,
)

DEFAULT_WEEKS: Final = 12
EXPLANATION_WINDOW: Final = timedelta(days=30)
# People whose time zone a reader keeps (all are forgotten when more come: a cache refill
# costs each of them one unsplit tally).
_ZONES_KEPT: Final = 100_000


@dataclass(frozen=True)
class Counts:
    """How many promises were made, and how their current outcomes stand."""

    made: int
    kept: int
    kept_late: int
    broken: int
    lapsed: int
    released: int
    renegotiated: int
    open: int
    overdue: int


@dataclass(frozen=True)
class Report:
    """Everything a report shows about one subject at one instant."""

    subject: SubjectKey
    at: datetime
    known_at: datetime | None
    timezone: str
    policy: ScoringPolicy
    score: Score
    counts: Counts
    streaks: Streaks
    trend: Trend
    open_promises: tuple[PromiseRow, ...]
    overdue_promises: tuple[PromiseRow, ...]
    recent: Counts


class ReportReader:
    """Builds reports from a `ReportViewStore`."""

    def __init__(self, store: ReportViewStore) -> None:
        self.store = store
        # Each person's time zone as last read, to split the next recent tally by their weeks.
        self._zones: dict[UUID, str] = {}

    def exists(self, key: SubjectKey) -> bool:
        """Whether the subject has any promise."""
        return key in self.store.subjects([key])

    def context(self, tenant: str, person: str) -> tuple[str, ScoringPolicy]:
        """The person's time zone and the tenant's scoring policy."""
        person_key, tenant_key = person_id(tenant, person), tenant_id(tenant)
        timezone = timezone_of(self.store.people([person_key]).get(person_key))
        return timezone, policy_of(self.store.tenants([tenant_key]).get(tenant_key))

    def report(
        self,
        key: SubjectKey,
        *,
        now: datetime,
        as_of: datetime | None = None,
        known_at: datetime | None = None,
        weeks: int = DEFAULT_WEEKS,
    ) -> Report | None:
        """The subject's report at `as_of` (default now) as known at `known_at` (default: all)."""
        if as_of is None and known_at is None:
            rows = self._current_rows(key, now, weeks)
            if rows.subject is None:
                return None
            if _settled_by(rows.subject, now):
                return self._current(rows, rows.subject, now, weeks)
            # An outcome time after now is folded into the row: compute this one from scratch.
        with self.store.reading():
            return self._from_scratch(key, now=now, as_of=as_of, known_at=known_at, weeks=weeks)

    def _current_rows(self, key: SubjectKey, now: datetime, weeks: int) -> CurrentRows:
        # The window's weeks are local, and the time zone comes in the same read: ask for a
        # week more on each side (no zone is a week away from UTC) and pick them out after.
        starts = window(now, "UTC", weeks)
        person = person_id(key.tenant, key.person)
        zone = self._zones.get(person)

        def read(zone: str | None) -> CurrentRows:
            return self.store.current_rows(
                key,
                person=person,
                tenant=tenant_id(key.tenant),
                weeks=(starts[0] - WEEK, starts[-1] + WEEK),
                recent=_recent_window(now, zone),
            )

        rows = read(zone)
        actual = timezone_of(rows.person)
        if actual != zone:
            if len(self._zones) >= _ZONES_KEPT:
                self._zones.clear()
            self._zones[person] = actual
            if zone is not None:
                # The person moved: the tally was split by weeks of the wrong zone.
                rows = read(None)
        return rows

    def _current(self, rows: CurrentRows, row: SubjectRow, when: datetime, weeks: int) -> Report:
        """The current report, from the subject row's running totals and a few week rows."""
        timezone, policy = timezone_of(rows.person), policy_of(rows.tenant)
        open_ = tuple(p for p in rows.open_promises if p.made_at <= when)
        overdue = tuple(p for p in open_ if p.due_at is not None and p.due_at < when)
        half_life = policy.half_life
        k, n = row.sums.at(when, half_life) if row.sums.t_ref is not None else (0.0, 0.0)
        starts = window(when, timezone, weeks)
        buckets = {r.week: r.bucket for r in rows.weeks if starts[0] <= r.week <= starts[-1]}
        # The sums of everything before the window = all sums minus the window's weeks,
        # valued just before the window starts (exponentials extend to earlier instants).
        start = day_start_instant(starts[0], timezone) - timedelta(microseconds=1)
        prior_k, prior_n = _value(row.sums, start, half_life)
        for bucket in buckets.values():
            bucket_k, bucket_n = _value(bucket.sums, start, half_life)
            prior_k -= bucket_k
            prior_n -= bucket_n
        prior = (
            DecayedSums(start, prior_k, prior_n) if row.sums.t_ref is not None else DecayedSums()
        )
        return Report(
            subject=row.key,
            at=when,
            known_at=None,
            timezone=timezone,
            policy=policy,
            score=score_from_sums(k, n, policy),
            counts=Counts(
                made=row.made,
                kept=row.kept,
                kept_late=row.kept_late,
                broken=row.broken,
                lapsed=row.lapsed,
                released=row.released,
                renegotiated=row.renegotiated,
                open=len(open_),
                overdue=len(overdue),
            ),
            streaks=row.streak.at(when, timezone),
            trend=trend_from_buckets(prior, buckets, when, timezone, weeks, policy=policy),
            open_promises=open_,
            overdue_promises=overdue,
            recent=_tally_counts(rows.recent),
        )

    def _from_scratch(
        self,
        key: SubjectKey,
        *,
        now: datetime,
        as_of: datetime | None,
        known_at: datetime | None,
        weeks: int,
    ) -> Report | None:
        """A past report (or one with outcomes after now): replayed from the outcome rows."""
        row = self.store.subjects([key]).get(key)
        if row is None:
            return None
        timezone, policy = self.context(key.tenant, key.person)
        when = as_of or known_at or now
        promises = self.store.subject_promises(key)
        if known_at is not None:
            promises = [p for p in promises if p.made_recorded_at <= known_at]
        promises = [p for p in promises if p.made_at <= when]
        outcomes = _visible(self.store.subject_outcomes(key, current_only=False), when, known_at)
        scored = [ScoredOutcome(o.kind, o.at, o.position) for o in outcomes]
        settled = {(o.tenant, o.key): o for o in outcomes}
        open_ = tuple(p for p in promises if (p.tenant, p.key) not in settled)
        overdue = tuple(p for p in open_ if p.due_at is not None and p.due_at < when)
        # Renegotiations carry no time in the view: a past report counts those of the
        # promises it shows, whenever they happened.
        counts = replace(
            _tally(outcomes, len(promises), len(open_), len(overdue)),
            renegotiated=sum(p.renegotiations for p in promises),
        )
        since = when - EXPLANATION_WINDOW
        return Report(
            subject=key,
            at=when,
            known_at=known_at,
            timezone=timezone,
            policy=policy,
            score=score_at(scored, when, policy),
            counts=counts,
            streaks=StreakState.replay(scored, timezone).at(when, timezone),
            trend=trend_at(scored, when, timezone, weeks, policy),
            open_promises=open_,
            overdue_promises=overdue,
            recent=_tally([o for o in outcomes if since < o.at <= when], 0, 0, 0),
        )


def _recent_window(now: datetime, zone: str | None) -> RecentWindow:
    """The explanation's window up to `now`, split by the local weeks of `zone` where it can
    be (see `RecentWindow`): the weeks after the one it starts in are counted from week rows.
    """
    since = now - EXPLANATION_WINDOW
    if zone is None:
        return RecentWindow(since, now)
    week = week_start(since, zone)
    split = week_split(week, zone)
    return RecentWindow(since, now, None if split is None else (week, split))


def _value(sums: DecayedSums, when: datetime, half_life: timedelta) -> tuple[float, float]:
    if sums.t_ref is None:
        return 0.0, 0.0
    factor = 0.5 ** ((when - sums.t_ref).total_seconds() / half_life.total_seconds())
    return sums.k * factor, sums.n * factor


def _settled_by(row: SubjectRow, when: datetime) -> bool:
    """Whether every outcome folded into the row is at or before `when`."""
    latest = row.streak.last_at
    return (latest is None or latest <= when) and (row.sums.t_ref is None or row.sums.t_ref <= when)


def _visible(rows: list[OutcomeRow], when: datetime, known_at: datetime | None) -> list[OutcomeRow]:
    """The outcomes current as known at `known_at`, with outcome time at or before `when`."""
    visible = []
    for row in rows:
        if known_at is None:
            if row.replaced_at is not None:
                continue
        elif row.recorded_at > known_at or (
            row.replaced_at is not None and row.replaced_at <= known_at
        ):
            continue
        if row.at <= when:
            visible.append(row)
    return sorted(visible, key=lambda r: (r.at, r.position))


def _tally(outcomes: list[OutcomeRow], made: int, open_: int, overdue: int) -> Counts:
    kinds = [o.kind for o in outcomes]
    counts = {kind: kinds.count(kind) for kind in OutcomeKind}
    return replace(_tally_counts(counts), made=made, open=open_, overdue=overdue)


def _tally_counts(counts: dict[OutcomeKind, int]) -> Counts:
    return Counts(
        made=0,
        kept=counts.get(OutcomeKind.KEPT, 0),
        kept_late=counts.get(OutcomeKind.KEPT_LATE, 0),
        broken=counts.get(OutcomeKind.BROKEN, 0),
        lapsed=counts.get(OutcomeKind.LAPSED, 0),
        released=counts.get(OutcomeKind.RELEASED, 0),
        renegotiated=0,
        open=0,
        overdue=0,
    )
