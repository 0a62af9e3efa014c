"""Streak windows: a checkpoint and the outcomes after it give the streak of the whole history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from projections.scoring import OutcomeKind, ScoredOutcome
from projections.streak_window import HORIZON, MOST_RECENT, StreakWindow
from projections.streaks import StreakState

KEPT, LATE, BROKEN, LAPSED, RELEASED = OutcomeKind
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
TZ = "Europe/Berlin"

# Each step: a new outcome (kind, hours after MONDAY) or, with None, taking out a current one.
steps = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(list(OutcomeKind)), st.integers(0, 24 * 60)),
        st.tuples(st.none(), st.integers(0, 1_000)),
    ),
    max_size=120,
)


@given(steps)
def test_a_window_folds_to_the_replay_of_every_current_outcome(
    changes: list[tuple[OutcomeKind | None, int]],
) -> None:
    current: list[ScoredOutcome] = []
    window, streak = StreakWindow.of([], TZ)
    for order, (kind, number) in enumerate(changes):
        if kind is None:
            if not current:
                continue
            outcome = current.pop(number % len(current))
            taken = window.remove(outcome)
        else:
            outcome = ScoredOutcome(kind, MONDAY + number * HOUR, order)
            current.append(outcome)
            taken = window.add(outcome)
        expected = StreakState.replay(current, TZ)
        if not taken:
            # Older than the checkpoint: the window cannot take it; a new one is built.
            window, streak = StreakWindow.of(sorted(current, key=lambda o: (o.at, o.order)), TZ)
        else:
            streak = window.replay(TZ)
            window.trim(TZ)
        assert streak == expected


def test_an_outcome_older_than_the_checkpoint_is_refused() -> None:
    outcomes = [ScoredOutcome(KEPT, MONDAY + i * timedelta(days=1), i) for i in range(30)]
    window, _ = StreakWindow.of(outcomes, TZ)

    late = ScoredOutcome(BROKEN, MONDAY + timedelta(days=2), 99)
    recent = ScoredOutcome(BROKEN, outcomes[-1].at - HORIZON / 2, 100)

    assert not window.add(late)
    assert not window.remove(outcomes[0])
    assert window.add(recent)
    assert window.replay(TZ) == StreakState.replay([*outcomes, recent], TZ)


def test_a_long_run_in_time_order_keeps_the_window_short() -> None:
    outcomes = [ScoredOutcome(KEPT, MONDAY + i * HOUR, i) for i in range(3 * MOST_RECENT)]
    window, _ = StreakWindow.of([], TZ)
    for outcome in outcomes:
        window.append(outcome)
        if window.is_long:
            window.trim(TZ)

    assert len(window.recent) <= MOST_RECENT
    assert window.replay(TZ) == StreakState.replay(outcomes, TZ)
