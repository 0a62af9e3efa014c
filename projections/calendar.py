"""Local calendar arithmetic: the promiser's days and ISO weeks as instants, DST included."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

WEEK = timedelta(days=7)
DEFAULT_TIMEZONE = "UTC"
"""The time zone of a person who never set one."""


def local_date(at: datetime, tz: str) -> date:
    """The calendar date of the instant `at` in the time zone `tz`."""
    return at.astimezone(ZoneInfo(tz)).date()


def week_start(at: datetime, tz: str) -> date:
    """The Monday of the local ISO week that contains the instant `at`."""
    # Cached by the UTC instant: two equal datetimes in one zone may be different instants
    # (the repeated hour, told apart only by `fold`, which equality ignores).
    return _week_start(at.astimezone(UTC), tz)


# The projector asks for the same (instant, zone) once per subject, week row and streak of an
# outcome; a zone conversion costs several times a cache hit.
@lru_cache(maxsize=65536)
def _week_start(at: datetime, tz: str) -> date:
    day = local_date(at, tz)
    return day - timedelta(days=day.weekday())


# Each report's trend asks for the start of the same dozen weeks, request after request.
@lru_cache(maxsize=65536)
def day_start_instant(day: date, tz: str) -> datetime:
    """The UTC instant at which the local calendar day `day` begins in `tz`."""
    zone = ZoneInfo(tz)
    # fold=0 picks the first of two repeated midnights, which is when the day begins.
    first = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == datetime.combine(day, time(0)):
        return first
    # Midnight falls in a DST gap (e.g. Asia/Tehran, America/Santiago): the day begins at the
    # transition, the first instant whose local date is `day`. `first` is at or after it and the
    # fold=1 reading is before it, so bisect between them to the second (tzdata's resolution).
    before = datetime.combine(day, time(0), tzinfo=zone).replace(fold=1).astimezone(UTC)
    low, high = 0, int((first - before).total_seconds())
    while high - low > 1:
        middle = (low + high) // 2
        if (before + timedelta(seconds=middle)).astimezone(zone).date() >= day:
            high = middle
        else:
            low = middle
    return before + timedelta(seconds=high)


def week_end_instant(week_start: date, tz: str) -> datetime:
    """The UTC instant at which the local week beginning on `week_start` ends (next Monday)."""
    return day_start_instant(week_start + WEEK, tz)


_LOOK_STEP = timedelta(minutes=15)  # no zone's clocks change twice within a quarter hour
_LOOKS_AHEAD = 4 * 24


@lru_cache(maxsize=4096)
def week_split(week_start: date, tz: str) -> datetime | None:
    """The instant that splits time into the local week beginning on `week_start` (and the
    weeks before) and the weeks after it, in `tz`; None where no instant does.

    That is `week_end_instant`, the first instant of the next week, unless the clocks go back
    over that week's first midnight soon after, so that later instants are in this week again:
    the rules allow it, though no zone of the tz database has done it in any week from 1900 to
    2039. Only the next day is looked at: no zone has gone back by a day.
    """
    zone = ZoneInfo(tz)
    end = week_end_instant(week_start, tz)
    next_week = week_start + WEEK
    earlier, offset = end, end.astimezone(zone).utcoffset()
    for step in range(1, _LOOKS_AHEAD + 1):
        at = end + step * _LOOK_STEP
        now_offset = at.astimezone(zone).utcoffset()
        if offset is not None and now_offset is not None and now_offset < offset:
            # The clocks went back between `earlier` and `at`; just after that they show the
            # earliest local time since, so that is where to look for the week going back.
            back = _first_at_offset(earlier, at, zone, now_offset)
            if back.astimezone(zone).date() < next_week:
                return None
        earlier, offset = at, now_offset
    return end


def _first_at_offset(low: datetime, high: datetime, zone: ZoneInfo, offset: timedelta) -> datetime:
    """The first instant in (low, high] at `offset` (which `high` is at, `low` is not), to the
    second (tzdata's resolution)."""
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == offset:
            high = middle
        else:
            low = middle
    return high


def whole_local_days(earlier: datetime, later: datetime, tz: str) -> int:
    """The number of local calendar days from `earlier` to `later` (dates, not 24-hour spans)."""
    return (local_date(later, tz) - local_date(earlier, tz)).days
