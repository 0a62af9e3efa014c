"""Streaks as an incremental fold over outcomes in (outcome time, recording order) order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

from projections.calendar import WEEK, week_start, whole_local_days
from projections.frozen import built
from projections.scoring import BREACHES, KEPT, OutcomeKind, ScoredOutcome


@dataclass(frozen=True)
class Streaks:
    """The streak figures of a report at one instant."""

    kept_streak: int
    longest_kept_streak: int
    longest_kept_first_at: datetime | None
    longest_kept_last_at: datetime | None
    days_since_breach: int | None
    week_streak: int
    longest_week_streak: int


@dataclass(frozen=True)
class StreakState:
    """The O(1) state of the streak fold; `to_dict()` stores it in one JSON column.

    Weeks are local ISO weeks in the time zone passed to `append`; when a promiser's time zone
    changes, the state must be rebuilt with `replay`.
    """

    last_at: datetime | None = None
    last_order: int = 0
    kept_streak: int = 0
    run_first_at: datetime | None = None
    longest_kept_streak: int = 0
    longest_first_at: datetime | None = None
    longest_last_at: datetime | None = None
    last_breach_at: datetime | None = None
    week: date | None = None
    week_has_kept: bool = False
    week_has_breach: bool = False
    weeks_before: int = 0
    longest_weeks_before: int = 0

    @property
    def weeks_through(self) -> int:
        """The run of good weeks ending at `week` (0 unless `week` is, so far, a good week)."""
        return _weeks_through(self.week_has_kept, self.week_has_breach, self.weeks_before)

    def append(self, outcome: ScoredOutcome, tz: str) -> StreakState:
        """Fold in one outcome at or after all folded so far; raises ValueError otherwise."""
        return self.folding().add(outcome, tz).state()

    def folding(self) -> StreakFold:
        """A fold that goes on from this state, changed in place by each `add`."""
        return StreakFold(**vars(self))

    @classmethod
    def replay(cls, outcomes: Iterable[ScoredOutcome], tz: str) -> StreakState:
        """The state after folding `outcomes` (in any order) sorted by (time, recording order)."""
        fold = cls().folding()
        for outcome in sorted(outcomes, key=lambda o: (o.at, o.order)):
            fold.add(outcome, tz)
        return fold.state()

    def at(self, when: datetime, tz: str) -> Streaks:
        """The streaks at `when`, which must not precede the last folded outcome.

        This equals replaying the outcomes at or before `when` only because none is after it;
        callers asking about an earlier instant must replay the filtered outcomes instead.

        `week_streak` counts back from the week of `when` if it is already good; if it has a
        breach the streak is 0; if it has no kept promise yet and no breach, the count ends at the
        week before (the current week is not over) and is 0 unless that week was good.
        """
        if self.last_at is not None and when < self.last_at:
            msg = f"cannot read streaks at {when.isoformat()}, before {self.last_at.isoformat()}"
            raise ValueError(msg)
        days = (
            None if self.last_breach_at is None else whole_local_days(self.last_breach_at, when, tz)
        )
        return Streaks(
            kept_streak=self.kept_streak,
            longest_kept_streak=self.longest_kept_streak,
            longest_kept_first_at=self.longest_first_at,
            longest_kept_last_at=self.longest_last_at,
            days_since_breach=days,
            week_streak=self._week_streak(week_start(when, tz)),
            longest_week_streak=max(self.longest_weeks_before, self.weeks_through),
        )

    def to_dict(self) -> dict[str, Any]:
        """The state as JSON-ready values (ISO strings for instants and dates)."""
        return {
            "last_at": _iso(self.last_at),
            "last_order": self.last_order,
            "kept_streak": self.kept_streak,
            "run_first_at": _iso(self.run_first_at),
            "longest_kept_streak": self.longest_kept_streak,
            "longest_first_at": _iso(self.longest_first_at),
            "longest_last_at": _iso(self.longest_last_at),
            "last_breach_at": _iso(self.last_breach_at),
            "week": _iso(self.week),
            "week_has_kept": self.week_has_kept,
            "week_has_breach": self.week_has_breach,
            "weeks_before": self.weeks_before,
            "longest_weeks_before": self.longest_weeks_before,
        }

    def to_json(self) -> str:
        """`to_dict()` as JSON text, written out directly: a catch-up stores hundreds of
        thousands of states, and building a dict to encode was most of a write's own time.
        (ISO strings need no escaping; Python writes integers as JSON does.)"""
        return (
            f'{{"last_at":{_json(self.last_at)},"last_order":{self.last_order},'
            f'"kept_streak":{self.kept_streak},"run_first_at":{_json(self.run_first_at)},'
            f'"longest_kept_streak":{self.longest_kept_streak},'
            f'"longest_first_at":{_json(self.longest_first_at)},'
            f'"longest_last_at":{_json(self.longest_last_at)},'
            f'"last_breach_at":{_json(self.last_breach_at)},"week":{_json(self.week)},'
            f'"week_has_kept":{_JSON_BOOL[self.week_has_kept]},'
            f'"week_has_breach":{_JSON_BOOL[self.week_has_breach]},'
            f'"weeks_before":{self.weeks_before},'
            f'"longest_weeks_before":{self.longest_weeks_before}}}'
        )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StreakState:
        """Rebuild a state from `to_dict()` output."""
        return cls(
            last_at=_instant(values["last_at"]),
            last_order=values["last_order"],
            kept_streak=values["kept_streak"],
            run_first_at=_instant(values["run_first_at"]),
            longest_kept_streak=values["longest_kept_streak"],
            longest_first_at=_instant(values["longest_first_at"]),
            longest_last_at=_instant(values["longest_last_at"]),
            last_breach_at=_instant(values["last_breach_at"]),
            week=None if values["week"] is None else date.fromisoformat(values["week"]),
            week_has_kept=values["week_has_kept"],
            week_has_breach=values["week_has_breach"],
            weeks_before=values["weeks_before"],
            longest_weeks_before=values["longest_weeks_before"],
        )

    def _week_streak(self, current: date) -> int:
        if self.week == current:
            if self.week_has_breach:
                return 0
            return self.weeks_through if self.week_has_kept else self.weeks_before
        if self.week == current - WEEK:
            return self.weeks_through
        return 0


_JSON_BOOL: Final = {False: "false", True: "true"}


def _json(value: date | None) -> str:
    return "null" if value is None else f'"{value.isoformat()}"'


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _instant(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _weeks_through(has_kept: bool, has_breach: bool, weeks_before: int) -> int:
    return weeks_before + 1 if has_kept and not has_breach else 0


@dataclass
class StreakFold:
    """`StreakState`'s fields, changed in place: a replay folds hundreds of outcomes, and one
    frozen copy per field change made that the projector's largest cost."""

    last_at: datetime | None
    last_order: int
    kept_streak: int
    run_first_at: datetime | None
    longest_kept_streak: int
    longest_first_at: datetime | None
    longest_last_at: datetime | None
    last_breach_at: datetime | None
    week: date | None
    week_has_kept: bool
    week_has_breach: bool
    weeks_before: int
    longest_weeks_before: int

    def add(self, outcome: ScoredOutcome, tz: str) -> StreakFold:
        """Fold in one outcome at or after all folded so far; raises ValueError otherwise."""
        at = outcome.at.astimezone(UTC)
        return self.add_at(outcome.kind, at, outcome.order, week_start(at, tz))

    def add_at(self, kind: OutcomeKind, at: datetime, order: int, week: date) -> StreakFold:
        """`add` of an outcome given by its kind, UTC instant, recording order and local week
        (the projector works out the instant and week once for all of an outcome's subjects)."""
        if self.last_at is not None and (at, order) < (self.last_at, self.last_order):
            msg = f"outcome ({at.isoformat()}, {order}) is out of order; replay"
            raise ValueError(msg)
        self.last_at, self.last_order = at, order
        if week != self.week:
            # Outcomes arrive in time order, so the week being left can no longer change: its
            # run is final and may count towards the longest.
            through = _weeks_through(self.week_has_kept, self.week_has_breach, self.weeks_before)
            self.weeks_before = through if self.week == week - WEEK else 0
            self.longest_weeks_before = max(self.longest_weeks_before, through)
            self.week, self.week_has_kept, self.week_has_breach = week, False, False
        if kind in KEPT:
            first = at if self.kept_streak == 0 else self.run_first_at
            self.kept_streak += 1
            self.run_first_at = first
            self.week_has_kept = True
            # Strictly longer only: on a tie the earliest run stays the longest.
            if self.kept_streak > self.longest_kept_streak:
                self.longest_kept_streak = self.kept_streak
                self.longest_first_at, self.longest_last_at = first, at
        elif kind in BREACHES:
            self.kept_streak, self.run_first_at = 0, None
            self.last_breach_at, self.week_has_breach = at, True
        return self

    def state(self) -> StreakState:
        """The frozen state folded so far."""
        return built(StreakState, vars(self))
