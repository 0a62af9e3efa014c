"""Streaks: kept runs, days since a breach, and good local weeks, folded one outcome at a time."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.calendar import WEEK, week_start, whole_local_days
from projections.scoring import OutcomeKind, ScoredOutcome
from projections.streaks import Streaks, StreakState

KEPT, LATE, BROKEN, LAPSED, RELEASED = OutcomeKind
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def series(
    *kinds: OutcomeKind, start: datetime = MONDAY, step: timedelta = DAY
) -> list[ScoredOutcome]:
    return [ScoredOutcome(kind, start + i * step, i) for i, kind in enumerate(kinds)]


def streaks(outcomes: Sequence[ScoredOutcome], when: datetime, tz: str = "UTC") -> Streaks:
    return StreakState.replay([o for o in outcomes if o.at <= when], tz).at(when, tz)


def local(tz: str, wall_time: str) -> datetime:
    return datetime.fromisoformat(wall_time).replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


def test_with_no_outcomes_there_are_no_streaks() -> None:
    assert streaks([], MONDAY) == Streaks(0, 0, None, None, None, 0, 0)


def test_kept_and_late_keeps_count_since_the_last_breach() -> None:
    outcomes = series(KEPT, BROKEN, KEPT, LATE, KEPT)
    result = streaks(outcomes, MONDAY + 10 * DAY)
    assert result.kept_streak == 3


def test_released_promises_neither_count_nor_break_a_streak() -> None:
    outcomes = series(KEPT, RELEASED, KEPT, RELEASED)
    assert streaks(outcomes, MONDAY + 10 * DAY).kept_streak == 2


def test_a_lapse_breaks_a_streak_like_a_broken_promise() -> None:
    assert streaks(series(KEPT, KEPT, LAPSED), MONDAY + 10 * DAY).kept_streak == 0
    assert streaks(series(KEPT, KEPT, LAPSED, KEPT), MONDAY + 10 * DAY).kept_streak == 1


def test_the_longest_kept_streak_remembers_its_first_and_last_promise() -> None:
    outcomes = series(KEPT, BROKEN, KEPT, KEPT, RELEASED, KEPT, LAPSED, KEPT)
    result = streaks(outcomes, MONDAY + 10 * DAY)
    assert (result.kept_streak, result.longest_kept_streak) == (1, 3)
    assert (result.longest_kept_first_at, result.longest_kept_last_at) == (
        outcomes[2].at,
        outcomes[5].at,
    )


def test_on_a_tie_the_earliest_longest_run_is_kept() -> None:
    outcomes = series(KEPT, KEPT, BROKEN, KEPT, KEPT)
    result = streaks(outcomes, MONDAY + 10 * DAY)
    assert result.longest_kept_streak == 2
    assert (result.longest_kept_first_at, result.longest_kept_last_at) == (
        outcomes[0].at,
        outcomes[1].at,
    )


def test_equal_outcome_times_are_ordered_by_recording_order() -> None:
    # Recorded kept (0) then broken (1) at the same instant: the breach comes last.
    same_time = [ScoredOutcome(BROKEN, MONDAY, 1), ScoredOutcome(KEPT, MONDAY, 0)]
    assert streaks(same_time, MONDAY).kept_streak == 0
    swapped = [ScoredOutcome(BROKEN, MONDAY, 0), ScoredOutcome(KEPT, MONDAY, 1)]
    assert streaks(swapped, MONDAY).kept_streak == 1


def test_days_since_breach_counts_local_days_from_the_latest_breach() -> None:
    outcomes = series(BROKEN, KEPT, LAPSED, KEPT)  # the lapse is on Wednesday 09:00
    assert streaks(outcomes, MONDAY + 2 * DAY).days_since_breach == 0
    assert streaks(outcomes, MONDAY + 5 * DAY - timedelta(hours=10)).days_since_breach == 2
    assert streaks(outcomes, MONDAY + 5 * DAY).days_since_breach == 3
    assert streaks(series(KEPT, RELEASED), MONDAY + 5 * DAY).days_since_breach is None


def test_days_since_breach_in_berlin_spans_the_spring_change() -> None:
    # Breach Sat 2026-03-28 23:30 CET; two local dates later, only 24 hours have passed.
    breach = [ScoredOutcome(BROKEN, local("Europe/Berlin", "2026-03-28T23:30"), 0)]
    when = local("Europe/Berlin", "2026-03-30T00:30")
    assert streaks(breach, when, "Europe/Berlin").days_since_breach == 2
    assert streaks(breach, when, "UTC").days_since_breach == 1


def test_days_since_breach_in_berlin_spans_the_autumn_change() -> None:
    breach = [ScoredOutcome(LAPSED, local("Europe/Berlin", "2026-10-24T23:30"), 0)]
    when = local("Europe/Berlin", "2026-10-26T00:10")
    assert streaks(breach, when, "Europe/Berlin").days_since_breach == 2


def test_days_since_breach_in_new_york_spans_the_spring_change() -> None:
    # Breach Sat 2026-03-07 23:30 EST = 03-08 04:30 UTC; Mon 00:15 EDT is 23h45m later.
    breach = [ScoredOutcome(BROKEN, local("America/New_York", "2026-03-07T23:30"), 0)]
    when = local("America/New_York", "2026-03-09T00:15")
    assert streaks(breach, when, "America/New_York").days_since_breach == 2


def test_days_since_breach_in_new_york_spans_the_autumn_change() -> None:
    breach = [ScoredOutcome(BROKEN, local("America/New_York", "2026-10-31T23:30"), 0)]
    when = local("America/New_York", "2026-11-02T00:05")
    assert streaks(breach, when, "America/New_York").days_since_breach == 2


def weekly(*weeks: Sequence[OutcomeKind]) -> list[ScoredOutcome]:
    """Outcomes on the Mondays..Sundays of consecutive weeks from MONDAY, one list per week."""
    return [
        ScoredOutcome(kind, MONDAY + w * WEEK + d * DAY, w * 10 + d)
        for w, kinds in enumerate(weeks)
        for d, kind in enumerate(kinds)
    ]


GOOD = (KEPT,)


def test_good_weeks_count_back_from_the_week_before_an_empty_current_week() -> None:
    # Weeks 0, 1, 2 good; asked in week 3 with nothing yet: the current week is not over.
    assert streaks(weekly(GOOD, GOOD, GOOD), MONDAY + 3 * WEEK).week_streak == 3


def test_an_empty_week_ends_the_week_streak() -> None:
    assert streaks(weekly(GOOD, GOOD, GOOD), MONDAY + 4 * WEEK).week_streak == 0
    assert streaks(weekly(GOOD, (), GOOD), MONDAY + 3 * WEEK).week_streak == 1


def test_a_good_current_week_extends_the_week_streak() -> None:
    assert streaks(weekly(GOOD, GOOD, GOOD), MONDAY + 2 * WEEK + DAY).week_streak == 3


def test_a_breach_in_the_current_week_ends_the_week_streak() -> None:
    outcomes = weekly(GOOD, GOOD, (KEPT, BROKEN))
    assert streaks(outcomes, MONDAY + 2 * WEEK + 2 * DAY).week_streak == 0


def test_a_week_with_a_breach_is_not_good_even_with_keeps() -> None:
    outcomes = weekly(GOOD, (KEPT, LAPSED, KEPT), GOOD)
    result = streaks(outcomes, MONDAY + 3 * WEEK)
    assert (result.week_streak, result.longest_week_streak) == (1, 1)


def test_a_week_of_only_released_promises_is_not_good() -> None:
    outcomes = weekly(GOOD, (RELEASED,), GOOD)
    assert streaks(outcomes, MONDAY + 3 * WEEK).week_streak == 1


def test_only_releases_so_far_this_week_leave_the_streak_at_last_weeks() -> None:
    outcomes = weekly(GOOD, GOOD, (RELEASED,))
    assert streaks(outcomes, MONDAY + 2 * WEEK + DAY).week_streak == 2


def test_the_longest_week_streak_covers_all_history_including_this_week() -> None:
    outcomes = weekly(GOOD, GOOD, GOOD, (BROKEN,), GOOD, GOOD, GOOD, GOOD)
    result = streaks(outcomes, MONDAY + 7 * WEEK + DAY)
    assert (result.week_streak, result.longest_week_streak) == (4, 4)
    assert streaks(outcomes[:-1], MONDAY + 6 * WEEK + DAY).longest_week_streak == 3


def test_a_breach_late_in_a_week_takes_back_its_count_toward_the_longest() -> None:
    # Week 2 looked good until its Sunday breach; it never counts, even for the longest.
    outcomes = weekly(GOOD, GOOD, (KEPT, KEPT, KEPT, KEPT, KEPT, KEPT, BROKEN))
    assert streaks(outcomes[:3], MONDAY + 2 * WEEK + DAY).longest_week_streak == 3
    assert streaks(outcomes, MONDAY + 3 * WEEK).longest_week_streak == 2


def test_berlin_weeks_change_at_local_monday_midnight_in_summer_time() -> None:
    # Sun 2026-03-29 23:30 CEST (21:30 UTC) is in the week of Mar 23; Mon 00:15 CEST is not.
    berlin = "Europe/Berlin"
    sunday = ScoredOutcome(KEPT, local(berlin, "2026-03-29T23:30"), 0)
    monday = ScoredOutcome(KEPT, local(berlin, "2026-03-30T00:15"), 1)
    assert week_start(sunday.at, berlin) == date(2026, 3, 23)
    when = local(berlin, "2026-03-30T12:00")
    assert streaks([sunday, monday], when, berlin).week_streak == 2
    assert streaks([sunday, monday], when, "UTC").week_streak == 1


def test_new_york_weeks_change_at_local_monday_midnight_after_the_autumn_change() -> None:
    # Sun 2026-11-01 23:30 EST is Mon 04:30 UTC, still the local week of Oct 26.
    york = "America/New_York"
    kept = ScoredOutcome(KEPT, local(york, "2026-11-01T23:30"), 0)
    broken = ScoredOutcome(BROKEN, local(york, "2026-11-02T00:30"), 1)
    when = local(york, "2026-11-02T08:00")
    assert streaks([kept, broken], when, york).week_streak == 0
    assert streaks([kept, broken], when, york).longest_week_streak == 1
    assert streaks([kept], local(york, "2026-11-08T23:59"), york).week_streak == 1
    assert streaks([kept], local(york, "2026-11-09T00:00"), york).week_streak == 0


def test_an_outcome_out_of_order_is_refused() -> None:
    state = StreakState.replay(series(KEPT, KEPT), "UTC")
    with pytest.raises(ValueError, match="out of order"):
        state.append(ScoredOutcome(KEPT, MONDAY, 5), "UTC")
    with pytest.raises(ValueError, match="out of order"):
        state.append(ScoredOutcome(KEPT, MONDAY + DAY, 0), "UTC")


def test_streaks_cannot_be_read_before_the_last_outcome() -> None:
    state = StreakState.replay(series(KEPT, KEPT), "UTC")
    with pytest.raises(ValueError, match="before"):
        state.at(MONDAY, "UTC")


def test_the_state_round_trips_through_json() -> None:
    state = StreakState.replay(weekly(GOOD, (KEPT, BROKEN), GOOD), "Europe/Berlin")
    assert StreakState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    assert StreakState.from_dict(json.loads(json.dumps(StreakState().to_dict()))) == StreakState()


def reference(outcomes: Sequence[ScoredOutcome], when: datetime, tz: str) -> Streaks:
    """The streaks computed straight from the specification, from the outcomes up to `when`."""
    ordered = sorted((o for o in outcomes if o.at <= when), key=lambda o: (o.at, o.order))
    runs: list[list[ScoredOutcome]] = [[]]
    for item in ordered:
        if item.kind.is_breach:
            runs.append([])
        elif item.kind.is_kept:
            runs[-1].append(item)
    longest = max(runs, key=len)  # max keeps the first of equals
    breaches = [o.at for o in ordered if o.kind.is_breach]
    kept_weeks = {week_start(o.at, tz) for o in ordered if o.kind.is_kept}
    breach_weeks = {week_start(o.at, tz) for o in ordered if o.kind.is_breach}
    good = kept_weeks - breach_weeks

    def run_to(week: date) -> int:
        count = 0
        while week in good:
            count, week = count + 1, week - WEEK
        return count

    current = week_start(when, tz)
    if current in breach_weeks:
        week_streak = 0
    else:
        week_streak = run_to(current if current in good else current - WEEK)
    return Streaks(
        kept_streak=len(runs[-1]),
        longest_kept_streak=len(longest),
        longest_kept_first_at=longest[0].at if longest else None,
        longest_kept_last_at=longest[-1].at if longest else None,
        days_since_breach=whole_local_days(max(breaches), when, tz) if breaches else None,
        week_streak=week_streak,
        longest_week_streak=max((run_to(w) for w in good), default=0),
    )


ZONES = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Tehran"])
HOURS = 24 * 120


@st.composite
def histories(draw: st.DrawFn) -> list[ScoredOutcome]:
    """Outcomes over four months around the 2026 spring changes; equal times are common."""
    kinds = st.sampled_from([KEPT, KEPT, KEPT, LATE, BROKEN, LAPSED, RELEASED])
    start = datetime(2026, 2, 1, tzinfo=UTC)
    items = draw(st.lists(st.tuples(kinds, st.integers(0, HOURS)), max_size=40))
    orders = draw(st.permutations(range(len(items))))
    return [
        ScoredOutcome(kind, start + timedelta(hours=hours), order)
        for (kind, hours), order in zip(items, orders, strict=True)
    ]


@given(history=histories(), data=st.data(), tz=ZONES, later=st.integers(0, 24 * 30))
def test_replaying_any_permutation_matches_the_specification(
    history: list[ScoredOutcome], data: st.DataObject, tz: str, later: int
) -> None:
    shuffled = data.draw(st.permutations(history))
    last = max((o.at for o in history), default=datetime(2026, 2, 1, tzinfo=UTC))
    when = last + timedelta(hours=later)
    in_order = StreakState.replay(sorted(history, key=lambda o: (o.at, o.order)), tz)
    assert StreakState.replay(shuffled, tz) == in_order
    assert in_order.at(when, tz) == reference(history, when, tz)


@given(history=histories(), tz=ZONES)
def test_the_json_text_of_a_state_says_what_its_dict_says(
    history: list[ScoredOutcome], tz: str
) -> None:
    state = StreakState.replay(history, tz)
    assert json.loads(state.to_json()) == state.to_dict()
    assert StreakState.from_dict(json.loads(state.to_json())) == state


@given(
    history=histories(), tz=ZONES, gaps=st.lists(st.integers(0, 24 * 10), min_size=40, max_size=40)
)
def test_appending_outcomes_one_by_one_matches_replaying_them(
    history: list[ScoredOutcome], tz: str, gaps: list[int]
) -> None:
    state = StreakState()
    ordered = sorted(history, key=lambda o: (o.at, o.order))
    for count, item in enumerate(ordered, start=1):
        # Views store the state between events, so fold through its JSON form.
        state = StreakState.from_dict(json.loads(json.dumps(state.to_dict()))).append(item, tz)
        assert state == StreakState.replay(ordered[:count], tz)
        when = item.at + timedelta(hours=gaps[count - 1])
        assert state.at(when, tz) == reference(ordered[:count], when, tz)
