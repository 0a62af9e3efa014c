"""The report projection on a real (in-memory) event log: what people see after each event."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.policy import ScoringPolicy
from domain.promise import PromiseStatus
from projections.projector import Projector
from projections.report_popo import POPOReportViewStore
from projections.report_reader import ReportReader
from projections.views import REPORTS_VIEW, SubjectKey, ViewChanges
from tests.clock import T0
from tests.reporting import World, assert_same

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
NOW = T0 + timedelta(days=60)


@pytest.fixture
def world() -> Iterator[World]:
    built = World.create()
    yield built
    built.close()


def test_a_kept_promise_lifts_the_score_above_the_starting_point_and_a_broken_one_lowers_it(
    world: World,
) -> None:
    world.make("p1", at=T0, promiser="ann")
    world.make("p2", at=T0, promiser="ben")
    world.ledger.keep_promise(world.tenant, "p1", at=T0 + timedelta(hours=2))
    world.ledger.break_promise(world.tenant, "p2", at=T0 + timedelta(hours=2))

    ann, ben = world.report("ann"), world.report("ben")

    start = 100 * ScoringPolicy().prior_mean
    assert ann.score.value > start > ben.score.value
    assert (ann.counts.made, ann.counts.kept, ann.counts.broken, ann.counts.open) == (1, 1, 0, 0)
    assert (ben.counts.made, ben.counts.kept, ben.counts.broken) == (1, 0, 1)
    assert ann.streaks.kept_streak == 1
    assert ben.streaks.kept_streak == 0


def test_an_open_promise_past_its_due_time_is_overdue_and_not_yet_scored(world: World) -> None:
    world.make("p1", at=T0, due=DAY)
    world.make("p2", at=T0, due=timedelta(days=90))

    report = world.report()

    assert [p.key for p in report.open_promises] == ["p1", "p2"]
    assert [p.key for p in report.overdue_promises] == ["p1"]
    assert report.score.value == pytest.approx(100 * ScoringPolicy().prior_mean)
    assert report.score.evidence == 0


def test_a_late_keep_counts_as_kept_late_and_earns_less_than_an_on_time_keep(
    world: World,
) -> None:
    world.make("on-time", at=T0, promiser="ann")
    world.make("late", at=T0, promiser="ben")
    world.ledger.keep_promise(world.tenant, "on-time", at=T0 + timedelta(hours=20))
    world.ledger.keep_promise(world.tenant, "late", at=T0 + timedelta(days=3))

    ann, ben = world.report("ann"), world.report("ben")

    assert (ben.counts.kept, ben.counts.kept_late) == (0, 1)
    assert ann.score.value > ben.score.value


def test_a_released_promise_closes_without_moving_the_score(world: World) -> None:
    world.make("p1", at=T0)
    world.ledger.release_promise(world.tenant, "p1", at=T0 + timedelta(hours=1))

    report = world.report()

    assert (report.counts.released, report.counts.open) == (1, 0)
    assert report.score.evidence == 0
    assert report.open_promises == ()


def test_a_correction_replaces_the_outcome_and_known_at_still_shows_the_old_one(
    world: World,
) -> None:
    world.make("p1", at=T0)
    world.ledger.keep_promise(world.tenant, "p1", at=T0 + timedelta(hours=2))
    world.projector.catch_up()
    before_correction = datetime.now(UTC)
    world.ledger.correct_outcome(
        world.tenant,
        "p1",
        outcome=PromiseStatus.BROKEN,
        at=T0 + timedelta(hours=2),
        reason="disputed",
    )

    now = world.report()
    then = world.report(known_at=before_correction)

    assert (now.counts.kept, now.counts.broken) == (0, 1)
    assert (then.counts.kept, then.counts.broken) == (1, 0)
    assert now.score.value < then.score.value
    assert now.streaks.kept_streak == 0


def test_renegotiating_moves_the_due_time_and_is_counted(world: World) -> None:
    world.make("p1", at=T0, due=timedelta(days=2))
    world.ledger.renegotiate_promise(
        world.tenant, "p1", due_at=T0 + timedelta(days=5), at=T0 + DAY, reason="travel"
    )

    report = world.report(now=T0 + timedelta(days=3))

    assert report.counts.renegotiated == 1
    assert report.overdue_promises == ()
    [listed] = world.store.list_promises(world.tenant)
    assert listed.due_at == T0 + timedelta(days=5)


def test_a_report_towards_one_promisee_or_in_one_category_counts_only_those_promises(
    world: World,
) -> None:
    world.make("p1", at=T0, promisee="sam", category="calls")
    world.make("p2", at=T0, promisee="kim", category="chores")
    world.ledger.keep_promise(world.tenant, "p1", at=T0 + timedelta(hours=1))
    world.ledger.break_promise(world.tenant, "p2", at=T0 + timedelta(hours=1))

    assert world.report().counts.made == 2
    to_sam = world.report(promisee="sam")
    chores = world.report(category="chores")
    assert (to_sam.counts.made, to_sam.counts.kept, to_sam.counts.broken) == (1, 1, 0)
    assert (chores.counts.made, chores.counts.kept, chores.counts.broken) == (1, 0, 1)


def test_tenants_never_share_a_subject_even_with_the_same_person_ids(world: World) -> None:
    world.make("p1", at=T0)
    world.ledger.keep_promise(world.tenant, "p1", at=T0 + timedelta(hours=1))
    other = replace(world, credentials=world.ledger.register_tenant("globex", at=T0))
    other.make("p1", at=T0)
    world.ledger.break_promise("globex", "p1", at=T0 + timedelta(hours=1))

    assert (world.report().counts.kept, world.report().counts.broken) == (1, 0)
    assert (other.report().counts.kept, other.report().counts.broken) == (0, 1)
    assert [p.tenant for p in world.store.list_promises("acme")] == ["acme"]


def test_outcomes_recorded_out_of_time_order_give_the_same_streaks_as_in_order(
    world: World,
) -> None:
    # Reported late: the broken promise of day 3 arrives after the keeps of days 4-6.
    for day in range(7):
        world.make(f"p{day}", at=T0 + day * DAY, due=timedelta(hours=12))
    for day in (0, 1, 2, 4, 5, 6):
        world.ledger.keep_promise(world.tenant, f"p{day}", at=T0 + day * DAY + timedelta(hours=1))
    world.projector.catch_up()
    world.ledger.break_promise(world.tenant, "p3", at=T0 + 3 * DAY + timedelta(hours=1))

    current = world.report()
    replayed = world.report(as_of=current.at)

    assert current.streaks.kept_streak == 3
    assert current.streaks.longest_kept_streak == 3
    assert_same(current, replace(replayed, known_at=None))


def test_the_incremental_report_equals_one_computed_from_scratch(world: World) -> None:
    outcomes = [
        "keep",
        "break",
        "keep",
        "late",
        "keep",
        "release",
        "keep",
        "keep",
        "break",
        "keep",
    ]
    for i, outcome in enumerate(outcomes):
        at = T0 + i * timedelta(days=3)
        world.make(f"p{i}", at=at, promisee="sam" if i % 2 else "kim")
        done = at + (timedelta(days=2) if outcome == "late" else timedelta(hours=3))
        if outcome in ("keep", "late"):
            world.ledger.keep_promise(world.tenant, f"p{i}", at=done)
        elif outcome == "break":
            world.ledger.break_promise(world.tenant, f"p{i}", at=done)
        else:
            world.ledger.release_promise(world.tenant, f"p{i}", at=done)
    world.make("open", at=T0 + timedelta(days=40), due=timedelta(days=2))

    for query in ({}, {"promisee": "sam"}):
        current = world.report(**query)
        from_scratch = world.report(as_of=current.at, **query)
        assert_same(current, from_scratch)


def test_a_report_asked_before_a_recorded_outcome_time_leaves_that_outcome_out(
    world: World,
) -> None:
    world.make("p1", at=T0)
    world.make("p2", at=T0, due=timedelta(days=20))
    world.ledger.keep_promise(world.tenant, "p1", at=T0 + timedelta(days=1))
    world.ledger.break_promise(world.tenant, "p2", at=T0 + timedelta(days=20))

    before = world.report(now=T0 + timedelta(days=10))

    assert (before.counts.kept, before.counts.broken, before.counts.open) == (1, 0, 1)
    assert before.streaks.kept_streak == 1
    assert_same(before, world.report(as_of=T0 + timedelta(days=10)))
    assert world.report().counts.broken == 1


def test_an_unreported_promise_that_lapses_counts_against_the_score(world: World) -> None:
    world.make("p1", at=T0, due=DAY)
    policy = ScoringPolicy()
    world.ledger.lapse_promise(world.tenant, "p1", now=T0 + DAY + policy.lapse_after)

    report = world.report()

    assert (report.counts.lapsed, report.counts.open) == (1, 0)
    assert report.score.value < 100 * policy.prior_mean


def test_a_new_time_zone_moves_outcomes_into_the_persons_local_weeks(world: World) -> None:
    # Sunday 23:30 UTC is already Monday morning in Tokyo: the next local week.
    sunday_night = datetime(2026, 3, 8, 23, 30, tzinfo=UTC)
    world.make("p1", at=sunday_night - timedelta(hours=5), due=timedelta(hours=6))
    world.ledger.keep_promise(world.tenant, "p1", at=sunday_night)
    now = sunday_night + timedelta(days=10)

    def kept_by_week() -> dict[str, int]:
        trend = world.report(now=now, weeks=3).trend
        return {str(w.week_start): w.kept for w in trend.weeks}

    assert kept_by_week() == {"2026-03-02": 1, "2026-03-09": 0, "2026-03-16": 0}
    world.ledger.update_person(world.tenant, "ann", at=now, timezone="Asia/Tokyo")
    assert kept_by_week() == {"2026-03-02": 0, "2026-03-09": 1, "2026-03-16": 0}
    assert world.report(now=now).timezone == "Asia/Tokyo"
    current = world.report(now=now)
    assert_same(current, world.report(now=now, as_of=now))


def test_the_last_30_days_are_counted_by_the_weeks_of_the_zone_the_person_is_in(
    world: World,
) -> None:
    # Reports count the weeks after the one 30 days back from their rows, split where the
    # next week begins in the zone the last report found. Tokyo's weeks begin nine hours
    # before UTC's: an outcome late on a Sunday (UTC) is in Tokyo's next week.
    now = T0 + timedelta(days=60)  # the 30 days begin on Wednesday 1 April 2026
    sunday_night = datetime(2026, 4, 5, 23, tzinfo=UTC)
    world.make("p1", at=sunday_night - timedelta(hours=5), due=timedelta(hours=6))
    world.ledger.keep_promise(world.tenant, "p1", at=sunday_night)
    world.make("p2", at=now - timedelta(days=3))
    world.ledger.keep_promise(world.tenant, "p2", at=now - timedelta(days=2))

    assert world.report(now=now).recent.kept == 2  # the zone (UTC) read
    assert world.report(now=now).recent.kept == 2  # split by UTC weeks
    world.ledger.update_person(world.tenant, "ann", at=now, timezone="Asia/Tokyo")
    moved = world.report(now=now)

    assert moved.recent.kept == 2
    assert_same(moved, world.report(now=now, as_of=now))
    assert world.report(now=now).recent.kept == 2  # split by Tokyo weeks


def test_a_tenants_new_scoring_policy_rescores_every_report(world: World) -> None:
    world.make("p1", at=T0)
    world.make("p2", at=T0 + DAY)
    world.ledger.keep_promise(world.tenant, "p1", at=T0 + timedelta(hours=1))
    world.ledger.break_promise(world.tenant, "p2", at=T0 + DAY + timedelta(hours=1))
    before = world.report()

    harsher = ScoringPolicy(broken_weight=ScoringPolicy().broken_weight * 2)
    world.ledger.change_scoring_policy(world.tenant, harsher)
    after = world.report()

    assert after.score.value < before.score.value
    assert after.policy == harsher
    assert_same(after, world.report(as_of=after.at))


def test_a_new_scoring_policy_keeps_each_persons_local_weeks(world: World) -> None:
    # Sunday 23:30 UTC is Monday morning in Tokyo; the policy change comes in a later batch
    # that holds no event of ann's, and her weeks must stay Tokyo's.
    sunday_night = datetime(2026, 3, 8, 23, 30, tzinfo=UTC)
    world.ledger.update_person(world.tenant, "ann", at=T0, timezone="Asia/Tokyo")
    world.make("p1", at=sunday_night - timedelta(hours=5), due=timedelta(hours=6))
    world.ledger.keep_promise(world.tenant, "p1", at=sunday_night)
    now = sunday_night + timedelta(days=10)
    world.projector.catch_up()

    world.ledger.change_scoring_policy(world.tenant, ScoringPolicy(late_credit=0.25))
    report = world.report(now=now, weeks=3)

    assert {str(w.week_start): w.kept for w in report.trend.weeks} == {
        "2026-03-02": 0,
        "2026-03-09": 1,
        "2026-03-16": 0,
    }
    assert_same(report, world.report(now=now, weeks=3, as_of=now))


def test_daylight_saving_does_not_break_a_daily_run_of_kept_promises(world: World) -> None:
    # Berlin springs forward on 2026-03-29: that local day has 23 hours.
    berlin = ZoneInfo("Europe/Berlin")
    world.ledger.update_person(world.tenant, "ann", at=T0, timezone="Europe/Berlin")
    first = datetime(2026, 3, 23, 21, 0, tzinfo=berlin)
    for day in range(14):
        at = (first + day * DAY).astimezone(UTC)  # 21:00 local every evening
        world.make(f"p{day}", at=at - timedelta(hours=3), due=timedelta(hours=4))
        world.ledger.keep_promise(world.tenant, f"p{day}", at=at)
    now = (first + 13 * DAY + timedelta(hours=1)).astimezone(UTC)

    report = world.report(now=now, weeks=3)

    assert report.streaks.kept_streak == 14
    assert report.streaks.days_since_breach is None
    assert [w.kept for w in report.trend.weeks] == [0, 7, 7]  # weeks of 16, 23 and 30 March
    assert report.streaks.week_streak >= 2


def test_the_view_is_the_same_whatever_the_batch_size(world: World) -> None:
    for i in range(12):
        world.make(f"p{i}", at=T0 + i * DAY, promisee="sam", category="calls")
        if i % 3:
            world.ledger.keep_promise(world.tenant, f"p{i}", at=T0 + i * DAY + timedelta(hours=1))
    world.ledger.correct_outcome(
        world.tenant, "p1", outcome=PromiseStatus.BROKEN, at=T0 + DAY, reason="disputed"
    )
    world.ledger.update_person(world.tenant, "ann", at=T0, timezone="America/New_York")
    world.projector.catch_up()

    store = POPOReportViewStore()
    Projector(world.ledger.recorder, world.ledger.mapper, store, batch_size=1).catch_up()

    ann = SubjectKey(world.tenant, "promiser", "ann")
    keys = world.store.tenant_subjects(world.tenant)
    assert store.position() == world.store.position()
    assert store.list_promises(world.tenant) == world.store.list_promises(world.tenant)
    assert store.subject_outcomes(ann, current_only=False) == (
        world.store.subject_outcomes(ann, current_only=False)
    )
    assert store.tenant_subjects(world.tenant) == keys
    assert_same(store.subjects(keys), world.store.subjects(keys))
    assert_same(ReportReader(store).report(ann, now=NOW), world.reader.report(ann, now=NOW))


def test_a_projector_restarted_midway_continues_where_the_views_stopped(world: World) -> None:
    for i in range(10):
        world.make(f"p{i}", at=T0 + i * DAY)
        world.ledger.keep_promise(world.tenant, f"p{i}", at=T0 + i * DAY + timedelta(hours=1))
    first = Projector(world.ledger.recorder, world.ledger.mapper, world.store, batch_size=4)
    first.step()
    first.step()
    assert 0 < world.store.position() < world.ledger.head_position()

    restarted = Projector(world.ledger.recorder, world.ledger.mapper, world.store, batch_size=4)
    restarted.catch_up()

    report = world.report()
    assert world.store.position() == world.ledger.head_position()
    assert (report.counts.made, report.counts.kept) == (10, 10)
    assert_same(report, world.report(as_of=report.at))


def test_new_york_fall_back_keeps_local_days_and_weeks(world: World) -> None:
    # Clocks go back on Sunday 2026-11-01: that local day has 25 hours.
    new_york = ZoneInfo("America/New_York")
    world.ledger.update_person(world.tenant, "ann", at=T0, timezone="America/New_York")
    breach = datetime(2026, 10, 31, 22, 0, tzinfo=new_york)  # Saturday night
    late_sunday = datetime(2026, 11, 1, 23, 30, tzinfo=new_york)  # Monday 04:30 UTC
    world.make("broken", at=breach - timedelta(hours=2), due=timedelta(hours=1))
    world.ledger.break_promise(world.tenant, "broken", at=breach.astimezone(UTC))
    world.make("kept", at=late_sunday - timedelta(hours=2), due=timedelta(hours=3))
    world.ledger.keep_promise(world.tenant, "kept", at=late_sunday.astimezone(UTC))
    monday_morning = datetime(2026, 11, 2, 8, 0, tzinfo=new_york).astimezone(UTC)

    report = world.report(now=monday_morning, weeks=2)

    assert report.streaks.days_since_breach == 2  # Saturday -> Monday, whatever the hours
    # Both outcomes fall in the local week of Monday 26 October, none in the new week.
    assert [(str(w.week_start), w.kept, w.broken) for w in report.trend.weeks] == [
        ("2026-10-26", 1, 1),
        ("2026-11-02", 0, 0),
    ]
    assert_same(report, world.report(now=monday_morning, weeks=2, as_of=monday_morning))


def test_a_time_zone_change_within_a_batch_counts_each_outcome_in_one_week(world: World) -> None:
    # Sunday 20:00 UTC is Monday morning in Auckland: p1 moves to the next local week, and the
    # week it leaves only gets p2, reported after the move, in the same batch.
    sunday = datetime(2026, 1, 11, 20, 0, tzinfo=UTC)
    wednesday = datetime(2026, 1, 7, 12, 0, tzinfo=UTC)
    world.make("p1", at=sunday - timedelta(hours=5), due=timedelta(hours=6))
    world.ledger.keep_promise(world.tenant, "p1", at=sunday)
    world.ledger.update_person(world.tenant, "ann", at=sunday, timezone="Pacific/Auckland")
    world.make("p2", at=wednesday - timedelta(hours=2), due=timedelta(hours=6))
    world.ledger.keep_promise(world.tenant, "p2", at=wednesday)
    now = sunday + timedelta(days=10)

    report = world.report(now=now, weeks=3)

    assert [(str(w.week_start), w.kept) for w in report.trend.weeks] == [
        ("2026-01-05", 1),
        ("2026-01-12", 1),
        ("2026-01-19", 0),
    ]
    assert_same(report, world.report(now=now, weeks=3, as_of=now))


def test_outcomes_reported_weeks_late_or_corrected_long_after_count_as_if_in_order(
    world: World,
) -> None:
    for day in range(30):
        world.make(f"p{day}", at=T0 + day * DAY, promisee="sam", category="calls")
        if day not in (5, 28, 29):
            world.ledger.keep_promise(world.tenant, f"p{day}", at=T0 + day * DAY + HOUR)
    world.projector.catch_up()
    # A day late: the projector replays the last days only, and keeps only those from then on.
    world.ledger.keep_promise(world.tenant, "p29", at=T0 + 29 * DAY + HOUR)
    world.ledger.keep_promise(world.tenant, "p28", at=T0 + 28 * DAY + HOUR)
    world.projector.catch_up()
    # Weeks late: before anything the projector kept of the recent history.
    world.ledger.break_promise(world.tenant, "p5", at=T0 + 5 * DAY + HOUR)
    world.projector.catch_up()
    world.ledger.correct_outcome(
        world.tenant, "p12", outcome=PromiseStatus.BROKEN, at=T0 + 12 * DAY, reason="disputed"
    )

    for query in ({}, {"promisee": "sam"}, {"category": "calls"}):
        current = world.report(**query)
        assert current.streaks.kept_streak == 17
        assert_same(current, replace(world.report(as_of=current.at, **query), known_at=None))


def write_history(world: World, part: int) -> None:
    """Ten days of promises to two promisees, some kept late, one broken a day late, and
    (after the first part) a correction of the part before."""
    start = T0 + part * 10 * DAY
    for day in range(10):
        key = f"p{part}-{day}"
        world.make(key, at=start + day * DAY, promisee=("sam", "kim")[day % 2], category="calls")
        if day != 3:
            world.ledger.keep_promise(world.tenant, key, at=start + day * DAY + day * HOUR)
    world.ledger.break_promise(world.tenant, f"p{part}-3", at=start + 3 * DAY + HOUR)
    if part:
        world.ledger.correct_outcome(
            world.tenant,
            f"p{part - 1}-8",
            outcome=PromiseStatus.BROKEN,
            at=start - 2 * DAY,
            reason="disputed",
        )


def assert_same_views(store: POPOReportViewStore, world: World) -> None:
    """`store` holds the views `world`'s own projector makes of the whole log."""
    world.projector.catch_up()
    keys = world.store.tenant_subjects(world.tenant)
    assert store.position() == world.store.position()
    assert store.tenant_subjects(world.tenant) == keys
    assert_same(store.subjects(keys), world.store.subjects(keys))
    assert store.list_promises(world.tenant, limit=1000) == world.store.list_promises(
        world.tenant, limit=1000
    )
    for key in keys:
        assert_same(
            store.subject_weeks(key, date.min, date.max),
            [*world.store.subject_weeks(key, date.min, date.max)],
        )
        assert_same(ReportReader(store).report(key, now=NOW), world.reader.report(key, now=NOW))


def test_a_projector_carries_on_from_views_another_projector_moved(world: World) -> None:
    store = POPOReportViewStore()
    mine, other = (
        Projector(world.ledger.recorder, world.ledger.mapper, store, batch_size=size)
        for size in (3, 5)
    )
    write_history(world, 0)
    mine.catch_up()
    write_history(world, 1)
    other.catch_up()  # rows the first projector kept in memory are no longer the stored ones
    write_history(world, 2)
    mine.catch_up()

    assert_same_views(store, world)


class RacedStore(POPOReportViewStore):
    """Views whose next write lets another projector write first."""

    def __init__(self) -> None:
        super().__init__()
        self.first: Callable[[], object] | None = None

    def write(
        self,
        changes: ViewChanges,
        position: int,
        view: str = REPORTS_VIEW,
        *,
        previous: int | None = None,
    ) -> None:
        first, self.first = self.first, None
        if first is not None:
            first()
        super().write(changes, position, view, previous=previous)


def test_a_write_refused_because_another_projector_went_first_forgets_the_kept_rows(
    world: World,
) -> None:
    store = RacedStore()
    mine, other = (
        Projector(world.ledger.recorder, world.ledger.mapper, store, batch_size=7) for _ in range(2)
    )
    write_history(world, 0)
    mine.catch_up()
    write_history(world, 1)
    store.first = other.step

    assert mine.step() == 0
    assert mine.projection.cache.position is None
    write_history(world, 2)
    mine.catch_up()
    assert_same_views(store, world)
