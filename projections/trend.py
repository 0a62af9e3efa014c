"""The weekly trend: per local ISO week the outcome counts and the score as the week ends."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from domain.policy import ScoringPolicy
from projections.calendar import WEEK, day_start_instant, week_end_instant, week_start
from projections.scoring import (
    DecayedSums,
    ScoredOutcome,
    credit_and_mass,
    score_at,
    score_from_sums,
)

STEADY_SLOPE = 1.0
"""Points per week: a slope beyond this either way is a trend, within it the score is steady."""


@dataclass(frozen=True)
class WeekPoint:
    """One local ISO week of the trend: its outcome counts and the score as it ends."""

    week_start: date
    kept: int
    kept_late: int
    broken: int
    lapsed: int
    released: int
    score: float


@dataclass(frozen=True)
class Trend:
    """The last weeks' points, oldest first, with the least-squares slope and its direction."""

    weeks: tuple[WeekPoint, ...]
    slope: float
    direction: str


@dataclass(frozen=True)
class WeekBucket:
    """One week's outcome counts and the decayed sums of its scored outcomes (a view's row)."""

    kept: int = 0
    kept_late: int = 0
    broken: int = 0
    lapsed: int = 0
    released: int = 0
    sums: DecayedSums = field(default_factory=DecayedSums)

    def add(self, outcome: ScoredOutcome, policy: ScoringPolicy) -> WeekBucket:
        """This bucket with `outcome` counted and, unless released, added to the sums."""
        return self._changed(outcome, policy, 1)

    def remove(self, outcome: ScoredOutcome, policy: ScoringPolicy) -> WeekBucket:
        """This bucket with a previously added `outcome` taken out (a correction)."""
        return self._changed(outcome, policy, -1)

    def _changed(self, outcome: ScoredOutcome, policy: ScoringPolicy, step: int) -> WeekBucket:
        name = outcome.kind.value
        changed: dict[str, Any] = {name: getattr(self, name) + step}
        weights = credit_and_mass(outcome.kind, policy)
        if weights is not None:
            change = self.sums.add if step > 0 else self.sums.remove
            changed["sums"] = change(outcome.at, *weights, policy.half_life)
        return replace(self, **changed)

    def point(self, week_start: date, score: float) -> WeekPoint:
        """The trend point for this bucket as the week `week_start`."""
        return WeekPoint(
            week_start, self.kept, self.kept_late, self.broken, self.lapsed, self.released, score
        )


def window(when: datetime, tz: str, weeks: int) -> tuple[date, ...]:
    """The starts of the last `weeks` local ISO weeks up to and including the week of `when`."""
    if weeks < 1:
        msg = f"a trend needs at least one week, not {weeks}"
        raise ValueError(msg)
    current = week_start(when, tz)
    return tuple(current - WEEK * back for back in range(weeks - 1, -1, -1))


def trend_at(
    outcomes: Iterable[ScoredOutcome],
    when: datetime,
    tz: str,
    weeks: int,
    policy: ScoringPolicy,
) -> Trend:
    """The trend at `when` from scratch over all outcomes (the reference for views).

    A past week's score is taken at the instant it ends over the outcomes before that instant
    (one exactly at the next local Monday midnight belongs to the next week); the current,
    unfinished week's score is the score at `when`.
    """
    starts = window(when, tz, weeks)
    known = [o for o in outcomes if o.at <= when]
    points = []
    for start in starts:
        bucket = WeekBucket()
        for outcome in known:
            if week_start(outcome.at, tz) == start:
                bucket = bucket.add(outcome, policy)
        if start == starts[-1]:
            score = score_at(known, when, policy)
        else:
            end = week_end_instant(start, tz)
            score = score_at([o for o in known if o.at < end], end, policy)
        points.append(bucket.point(start, score.value))
    return _trend(points)


def trend_from_buckets(
    prior: DecayedSums,
    buckets: Mapping[date, WeekBucket],
    when: datetime,
    tz: str,
    weeks: int,
    *,
    policy: ScoringPolicy,
) -> Trend:
    """The trend at `when` from a view's weekly buckets, keyed by local week start.

    `prior` holds the sums of every outcome before the window's first week, and the buckets
    must hold no outcome after `when`; otherwise recompute with `trend_at`. Buckets outside the
    window are ignored.
    """
    starts = window(when, tz, weeks)
    if prior.t_ref is not None and prior.t_ref >= day_start_instant(starts[0], tz):
        msg = "prior sums must hold only outcomes before the trend's first week"
        raise ValueError(msg)
    running = prior
    points = []
    for start in starts:
        bucket = buckets.get(start, WeekBucket())
        running = running.merge(bucket.sums, policy.half_life)
        end = when if start == starts[-1] else week_end_instant(start, tz)
        k, n = running.at(end, policy.half_life)
        points.append(bucket.point(start, score_from_sums(k, n, policy).value))
    return _trend(points)


def _trend(points: list[WeekPoint]) -> Trend:
    count = len(points)
    mean_x = (count - 1) / 2
    mean_y = sum(p.score for p in points) / count
    spread = sum((x - mean_x) ** 2 for x in range(count))
    covariance = sum((x - mean_x) * (p.score - mean_y) for x, p in enumerate(points))
    slope = covariance / spread if spread else 0.0
    if slope > STEADY_SLOPE:
        direction = "improving"
    elif slope < -STEADY_SLOPE:
        direction = "declining"
    else:
        direction = "steady"
    return Trend(tuple(points), slope, direction)
