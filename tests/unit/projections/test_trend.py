"""The weekly trend: counts per local week, the score as each week ends, and its slope."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.policy import ScoringPolicy
from projections.calendar import WEEK, week_start
from projections.scoring import DecayedSums, OutcomeKind, ScoredOutcome, credit_and_mass
from projections.trend import Trend, WeekBucket, WeekPoint, trend_at, trend_from_buckets

KEPT, LATE, BROKEN, LAPSED, RELEASED = OutcomeKind
POLICY = ScoringPolicy()
WEEKLY_HALF_LIFE = ScoringPolicy(half_life=WEEK)
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)


def local(tz: str, wall_time: str) -> datetime:
    return datetime.fromisoformat(wall_time).replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


def test_each_week_scores_as_it_ends_and_the_current_week_as_of_now() -> None:
    # Half-life one week. Kept Mon Mar 2, broken Mon Mar 9, kept Mon Mar 16, all at 00:00 UTC;
    # asked at Mon Mar 16 00:00 for three weeks.
    outcomes = [
        ScoredOutcome(KEPT, MONDAY, 0),
        ScoredOutcome(BROKEN, MONDAY + WEEK, 1),
        ScoredOutcome(KEPT, MONDAY + 2 * WEEK, 2),
    ]
    trend = trend_at(outcomes, MONDAY + 2 * WEEK, "UTC", 3, WEEKLY_HALF_LIFE)
    assert [p.week_start for p in trend.weeks] == [
        date(2026, 3, 2),
        date(2026, 3, 9),
        date(2026, 3, 16),
    ]
    assert [(p.kept, p.broken) for p in trend.weeks] == [(1, 0), (0, 1), (1, 0)]
    # Week of Mar 2 ends Mar 9 00:00, before the breach at that instant: K = N = 0.5,
    # 100 * (1 + 0.5) / (2 + 0.5) = 60.
    assert trend.weeks[0].score == pytest.approx(60.0)
    # Week of Mar 9 ends Mar 16 00:00, before the second keep: K = 0.25, N = 0.25 + 2 * 0.5,
    # 100 * 1.25 / 3.25 = 500/13.
    assert trend.weeks[1].score == pytest.approx(500 / 13)
    # Current week, at Mar 16 00:00: K = 1.25, N = 2.25, 100 * 2.25 / 4.25 = 900/17.
    assert trend.weeks[2].score == pytest.approx(900 / 17)
    # Least squares over x = 0, 1, 2: slope = (y2 - y0) / 2 = (900/17 - 60) / 2 = -60/17.
    assert trend.slope == pytest.approx(-60 / 17)
    assert trend.direction == "declining"


def test_with_no_outcomes_every_week_scores_50_and_the_trend_is_steady() -> None:
    trend = trend_at([], MONDAY + timedelta(days=3), "UTC", 12, POLICY)
    assert len(trend.weeks) == 12
    assert trend.weeks[0].week_start == date(2025, 12, 15)
    assert trend.weeks[-1] == WeekPoint(date(2026, 3, 2), 0, 0, 0, 0, 0, 50.0)
    assert all(b.week_start - a.week_start == WEEK for a, b in pairwise(trend.weeks))
    assert (trend.slope, trend.direction) == (0.0, "steady")


def test_every_kind_of_outcome_is_counted_in_its_week() -> None:
    kinds = [KEPT, KEPT, LATE, BROKEN, LAPSED, LAPSED, RELEASED]
    outcomes = [ScoredOutcome(k, MONDAY + timedelta(hours=i), i) for i, k in enumerate(kinds)]
    point = trend_at(outcomes, MONDAY + timedelta(days=1), "UTC", 1, POLICY).weeks[0]
    assert (point.kept, point.kept_late, point.broken, point.lapsed, point.released) == (
        2,
        1,
        1,
        2,
        1,
    )


def test_outcomes_after_now_are_not_counted() -> None:
    outcomes = [
        ScoredOutcome(KEPT, MONDAY, 0),
        ScoredOutcome(BROKEN, MONDAY + timedelta(days=2), 1),
    ]
    point = trend_at(outcomes, MONDAY + timedelta(days=1), "UTC", 1, POLICY).weeks[0]
    assert (point.kept, point.broken) == (1, 0)
    assert point.score == pytest.approx(100 * (1 + 0.5 ** (1 / 30)) / (2 + 0.5 ** (1 / 30)))


def test_outcomes_before_the_window_are_not_counted_but_still_score() -> None:
    # Half-life one week; a breach four weeks before the window's only week, at Monday 00:00.
    # At the current week's Monday: N = 2 * 0.5**4 = 0.125, 100 * 1 / 2.125.
    early = ScoredOutcome(BROKEN, MONDAY - 4 * WEEK, 0)
    point = trend_at([early], MONDAY, "UTC", 1, WEEKLY_HALF_LIFE).weeks[0]
    assert point == WeekPoint(date(2026, 3, 2), 0, 0, 0, 0, 0, point.score)
    assert point.score == pytest.approx(100 / 2.125)


def test_keeping_promises_after_breaches_is_an_improving_trend() -> None:
    breaches = [ScoredOutcome(BROKEN, MONDAY - WEEK + timedelta(hours=i), i) for i in range(3)]
    keeps = [ScoredOutcome(KEPT, MONDAY + i * WEEK, 10 + i) for i in range(4)]
    trend = trend_at(breaches + keeps, MONDAY + 3 * WEEK + timedelta(days=6), "UTC", 4, POLICY)
    assert trend.slope > 1
    assert trend.direction == "improving"


def test_a_slope_within_one_point_a_week_is_steady() -> None:
    # One keep long before the window: the score only drifts back toward 50, slowly.
    old = ScoredOutcome(KEPT, MONDAY - 20 * WEEK, 0)
    trend = trend_at([old], MONDAY, "UTC", 4, POLICY)
    assert -1 < trend.slope < 0
    assert trend.direction == "steady"


def test_weeks_are_local_weeks_across_the_berlin_spring_change() -> None:
    # Mon 2026-03-30 00:15 CEST is Sun 22:15 UTC: Berlin's new week, UTC's old one.
    berlin = "Europe/Berlin"
    kept = ScoredOutcome(KEPT, local(berlin, "2026-03-30T00:15"), 0)
    when = local(berlin, "2026-04-01T12:00")
    local_weeks = trend_at([kept], when, berlin, 2, POLICY).weeks
    assert [(p.week_start, p.kept) for p in local_weeks] == [
        (date(2026, 3, 23), 0),
        (date(2026, 3, 30), 1),
    ]
    utc_weeks = trend_at([kept], when, "UTC", 2, POLICY).weeks
    assert [p.kept for p in utc_weeks] == [1, 0]


def test_a_trend_needs_at_least_one_week() -> None:
    with pytest.raises(ValueError, match="at least one week"):
        trend_at([], MONDAY, "UTC", 0, POLICY)


def test_prior_sums_must_end_before_the_window() -> None:
    inside = DecayedSums().add(MONDAY + timedelta(hours=1), 1.0, 1.0, POLICY.half_life)
    with pytest.raises(ValueError, match="before the trend's first week"):
        trend_from_buckets(inside, {}, MONDAY + timedelta(days=1), "UTC", 1, policy=POLICY)


def test_a_bucket_counts_and_sums_its_outcomes_and_takes_corrections_back() -> None:
    kept = ScoredOutcome(KEPT, MONDAY, 0)
    broken = ScoredOutcome(BROKEN, MONDAY + timedelta(days=1), 1)
    released = ScoredOutcome(RELEASED, MONDAY, 2)
    bucket = WeekBucket().add(kept, POLICY).add(broken, POLICY).add(released, POLICY)
    assert (bucket.kept, bucket.broken, bucket.released) == (1, 1, 1)
    # At the breach: K = 0.5**(1/30), N = 0.5**(1/30) + 2.
    assert bucket.sums.at(broken.at, POLICY.half_life) == pytest.approx(
        (0.5 ** (1 / 30), 0.5 ** (1 / 30) + 2)
    )
    corrected = bucket.remove(broken, POLICY).add(ScoredOutcome(KEPT, broken.at, 1), POLICY)
    assert (corrected.kept, corrected.broken) == (2, 0)
    assert corrected.sums.at(broken.at, POLICY.half_life) == pytest.approx(
        (0.5 ** (1 / 30) + 1, 0.5 ** (1 / 30) + 1)
    )


def buckets_for(
    fed: list[ScoredOutcome], first: date, tz: str
) -> tuple[DecayedSums, dict[date, WeekBucket]]:
    """What a view would hold after `fed`: prior sums and the weekly buckets from `first` on."""
    prior = DecayedSums()
    buckets: dict[date, WeekBucket] = defaultdict(WeekBucket)
    for item in fed:
        week = week_start(item.at, tz)
        if week >= first:
            # A redelivery taken back again must leave no trace.
            buckets[week] = buckets[week].add(item, POLICY).add(item, POLICY).remove(item, POLICY)
            continue
        weights = credit_and_mass(item.kind, POLICY)
        if weights is not None:
            prior = prior.add(item.at, *weights, POLICY.half_life)
    return prior, buckets


def assert_trends_close(actual: Trend, expected: Trend) -> None:
    assert len(actual.weeks) == len(expected.weeks)
    for got, want in zip(actual.weeks, expected.weeks, strict=True):
        assert got.week_start == want.week_start
        assert (got.kept, got.kept_late, got.broken, got.lapsed, got.released) == (
            want.kept,
            want.kept_late,
            want.broken,
            want.lapsed,
            want.released,
        )
        assert math.isclose(got.score, want.score, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(actual.slope, expected.slope, rel_tol=1e-9, abs_tol=1e-9)
    if abs(abs(expected.slope) - 1) > 1e-6:
        assert actual.direction == expected.direction


@given(
    items=st.lists(
        st.tuples(st.sampled_from(list(OutcomeKind)), st.integers(0, 24 * 7 * 20)), max_size=40
    ),
    when_hours=st.integers(0, 24 * 7 * 22),
    tz=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Tehran"]),
    weeks=st.integers(1, 12),
    data=st.data(),
)
def test_a_trend_from_weekly_buckets_equals_the_trend_from_scratch(
    items: list[tuple[OutcomeKind, int]],
    when_hours: int,
    tz: str,
    weeks: int,
    data: st.DataObject,
) -> None:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    outcomes = [
        ScoredOutcome(kind, start + timedelta(hours=hours), order)
        for order, (kind, hours) in enumerate(items)
    ]
    when = start + timedelta(hours=when_hours, minutes=30)
    # Views hold only what has happened by `when`, delivered in any order.
    fed = data.draw(st.permutations([o for o in outcomes if o.at <= when]))
    prior, buckets = buckets_for(fed, week_start(when, tz) - (weeks - 1) * WEEK, tz)
    expected = trend_at(outcomes, when, tz, weeks, POLICY)
    assert_trends_close(
        trend_from_buckets(prior, buckets, when, tz, weeks, policy=POLICY), expected
    )
