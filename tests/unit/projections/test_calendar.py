"""Local days and ISO weeks in the promiser's time zone, across DST transitions."""

from __future__ import annotations

import struct
import zoneinfo
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import assume, given
from hypothesis import strategies as st

from projections.calendar import (
    day_start_instant,
    local_date,
    week_end_instant,
    week_split,
    week_start,
    whole_local_days,
)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
ZONES = (
    "UTC",
    BERLIN,
    NEW_YORK,
    "Asia/Tehran",
    "America/Santiago",
    "America/Havana",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(tz: str, wall_time: str) -> datetime:
    # As a UTC instant: subtracting two datetimes sharing a tzinfo would give wall-clock time.
    return datetime.fromisoformat(wall_time).replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


def test_a_local_date_is_the_date_on_the_promisers_clock() -> None:
    late_evening = utc(2026, 3, 2, 23, 30)
    assert local_date(late_evening, "UTC") == date(2026, 3, 2)
    assert local_date(late_evening, BERLIN) == date(2026, 3, 3)
    assert local_date(utc(2026, 3, 3, 3, 0), NEW_YORK) == date(2026, 3, 2)


def test_a_week_starts_at_local_monday_midnight() -> None:
    # Berlin is on CEST (UTC+2) after 2026-03-29: local Monday 00:00 is Sunday 22:00 UTC.
    assert week_start(utc(2026, 3, 29, 21, 59), BERLIN) == date(2026, 3, 23)
    assert week_start(utc(2026, 3, 29, 22, 0), BERLIN) == date(2026, 3, 30)
    # New York is on EST (UTC-5) in early March: local Sunday 23:30 is Monday 04:30 UTC.
    assert week_start(utc(2026, 3, 2, 4, 30), NEW_YORK) == date(2026, 2, 23)
    assert week_start(utc(2026, 3, 2, 5, 0), NEW_YORK) == date(2026, 3, 2)


def test_a_berlin_week_with_the_spring_change_is_an_hour_short() -> None:
    # Starts Mon 2026-03-23 00:00 CET (UTC+1), ends Mon 2026-03-30 00:00 CEST (UTC+2).
    start, end = (
        day_start_instant(date(2026, 3, 23), BERLIN),
        week_end_instant(date(2026, 3, 23), BERLIN),
    )
    assert (start, end) == (utc(2026, 3, 22, 23, 0), utc(2026, 3, 29, 22, 0))
    assert end - start == timedelta(hours=167)


def test_a_berlin_week_with_the_autumn_change_is_an_hour_long() -> None:
    # Starts Mon 2026-10-19 00:00 CEST (UTC+2), ends Mon 2026-10-26 00:00 CET (UTC+1).
    start, end = (
        day_start_instant(date(2026, 10, 19), BERLIN),
        week_end_instant(date(2026, 10, 19), BERLIN),
    )
    assert (start, end) == (utc(2026, 10, 18, 22, 0), utc(2026, 10, 25, 23, 0))
    assert end - start == timedelta(hours=169)


def test_new_york_weeks_follow_the_local_clock_across_both_changes() -> None:
    # 2026-03-08 EST (UTC-5) -> EDT (UTC-4); 2026-11-01 EDT -> EST.
    assert week_end_instant(date(2026, 3, 2), NEW_YORK) == utc(2026, 3, 9, 4, 0)
    assert week_end_instant(date(2026, 3, 2), NEW_YORK) - day_start_instant(
        date(2026, 3, 2), NEW_YORK
    ) == timedelta(hours=167)
    assert week_end_instant(date(2026, 10, 26), NEW_YORK) == utc(2026, 11, 2, 5, 0)
    assert week_end_instant(date(2026, 10, 26), NEW_YORK) - day_start_instant(
        date(2026, 10, 26), NEW_YORK
    ) == timedelta(hours=169)


def test_a_week_ending_at_a_nonexistent_midnight_ends_at_the_transition() -> None:
    # Tehran jumped from 00:00 (UTC+3:30) to 01:00 (UTC+4:30) on Monday 2021-03-22, so the week
    # ended when the clocks changed: 2021-03-22 00:00 at UTC+3:30 = 2021-03-21 20:30 UTC.
    end = week_end_instant(date(2021, 3, 15), "Asia/Tehran")
    assert end == utc(2021, 3, 21, 20, 30)
    assert local_date(end, "Asia/Tehran") == date(2021, 3, 22)
    assert local_date(end - timedelta(microseconds=1), "Asia/Tehran") == date(2021, 3, 21)


def test_a_day_without_a_midnight_begins_when_the_clocks_change() -> None:
    # Santiago skips from 00:00 (UTC-4) to 01:00 (UTC-3) on 2026-09-06: that is 04:00 UTC.
    assert day_start_instant(date(2026, 9, 6), "America/Santiago") == utc(2026, 9, 6, 4, 0)
    # Havana skips from 00:00 (UTC-5) to 01:00 (UTC-4) on 2026-03-08: that is 05:00 UTC.
    assert day_start_instant(date(2026, 3, 8), "America/Havana") == utc(2026, 3, 8, 5, 0)


def test_a_day_with_two_midnights_begins_at_the_first() -> None:
    # Havana falls back from 01:00 (UTC-4) to 00:00 (UTC-5) on 2026-11-01: 00:00 comes twice,
    # first at 04:00 UTC, then at 05:00 UTC.
    assert day_start_instant(date(2026, 11, 1), "America/Havana") == utc(2026, 11, 1, 4, 0)


def test_whole_local_days_count_dates_not_24_hour_spans() -> None:
    # 23:00 to 01:00 local is two hours but one day; 00:10 to 23:50 is a day's length but none.
    assert whole_local_days(utc(2026, 3, 3, 23, 0), utc(2026, 3, 4, 1, 0), "UTC") == 1
    assert whole_local_days(utc(2026, 3, 3, 0, 10), utc(2026, 3, 3, 23, 50), "UTC") == 0


def test_two_local_days_pass_in_24_hours_over_the_berlin_spring_change() -> None:
    # 2026-03-28 23:30 CET = 22:30 UTC; 2026-03-30 00:30 CEST = 2026-03-29 22:30 UTC.
    breach = local(BERLIN, "2026-03-28T23:30")
    later = local(BERLIN, "2026-03-30T00:30")
    assert later - breach == timedelta(hours=24)
    assert whole_local_days(breach, later, BERLIN) == 2


def test_two_local_days_pass_over_the_berlin_autumn_change() -> None:
    # 2026-10-24 23:30 CEST = 21:30 UTC; 2026-10-26 00:10 CET = 2026-10-25 23:10 UTC.
    breach = local(BERLIN, "2026-10-24T23:30")
    later = local(BERLIN, "2026-10-26T00:10")
    assert later - breach == timedelta(hours=25, minutes=40)
    assert whole_local_days(breach, later, BERLIN) == 2


def test_two_local_days_pass_in_under_24_hours_over_the_new_york_spring_change() -> None:
    # 2026-03-07 23:30 EST = 03-08 04:30 UTC; 2026-03-09 00:15 EDT = 04:15 UTC: the UTC dates
    # differ by one, the local dates by two.
    breach = local(NEW_YORK, "2026-03-07T23:30")
    later = local(NEW_YORK, "2026-03-09T00:15")
    assert later - breach == timedelta(hours=23, minutes=45)
    assert whole_local_days(breach, later, "UTC") == 1
    assert whole_local_days(breach, later, NEW_YORK) == 2


def test_two_local_days_pass_over_the_new_york_autumn_change() -> None:
    # 2026-10-31 23:30 EDT = 11-01 03:30 UTC; 2026-11-02 00:05 EST = 05:05 UTC.
    breach = local(NEW_YORK, "2026-10-31T23:30")
    later = local(NEW_YORK, "2026-11-02T00:05")
    assert later - breach == timedelta(hours=25, minutes=35)
    assert whole_local_days(breach, later, NEW_YORK) == 2


@given(
    at=st.integers(0, 36 * 366 * 86400).map(lambda s: utc(2000, 1, 1) + timedelta(seconds=s)),
    tz=st.sampled_from(ZONES),
)
def test_every_instant_lies_in_the_local_week_its_monday_names(at: datetime, tz: str) -> None:
    monday = week_start(at, tz)
    start, end = day_start_instant(monday, tz), week_end_instant(monday, tz)
    assert monday.weekday() == 0
    assert start <= at < end
    assert local_date(start, tz) == monday
    assert local_date(start - timedelta(microseconds=1), tz) == monday - timedelta(days=1)
    assert local_date(end, tz) == monday + timedelta(days=7)
    assert local_date(end - timedelta(microseconds=1), tz) == monday + timedelta(days=6)


def test_a_week_is_split_from_the_next_where_the_next_begins() -> None:
    for tz in ZONES:
        assert week_split(date(2025, 3, 24), tz) == week_end_instant(date(2025, 3, 24), tz)
        assert week_split(date(2025, 10, 20), tz) == week_end_instant(date(2025, 10, 20), tz)


def test_no_instant_splits_a_week_from_the_next_if_the_clocks_go_back_over_their_midnight(
    tmp_path: Path,
) -> None:
    # Rules no zone has had: summer time ends on the last Monday of October at 00:30, when
    # the clocks go back to Sunday 23:30, so the week of 19 October 2026 begins again.
    folder = tmp_path / "Test"
    folder.mkdir()
    (folder / "Monday_Fallback").write_bytes(_tzif("CET-1CEST,M3.5.0,M10.5.1/0:30"))
    zoneinfo.reset_tzpath([str(tmp_path)])
    try:
        tz = "Test/Monday_Fallback"
        assert week_split(date(2026, 10, 19), tz) is None
        assert week_split(date(2026, 10, 12), tz) == week_end_instant(date(2026, 10, 12), tz)
        assert week_split(date(2026, 10, 26), tz) == week_end_instant(date(2026, 10, 26), tz)
    finally:
        zoneinfo.reset_tzpath()


def _tzif(rule: str) -> bytes:
    """A TZif file (RFC 8536, version 2) with no transitions, only the POSIX `rule`."""
    header = b"TZif2" + bytes(15) + struct.pack(">6l", 0, 0, 0, 0, 1, 4)
    block = header + struct.pack(">lBB", 3600, 0, 0) + b"CET\0"
    return block + block + b"\n" + rule.encode() + b"\n"


@given(
    at=st.integers(0, 36 * 366 * 86400).map(lambda s: utc(2000, 1, 1) + timedelta(seconds=s)),
    seconds=st.integers(-40 * 86400, 40 * 86400),
    tz=st.sampled_from(sorted(zoneinfo.available_timezones())),
)
def test_a_weeks_split_parts_instants_of_that_week_or_before_from_those_of_later_weeks(
    at: datetime, seconds: int, tz: str
) -> None:
    week = week_start(at, tz)
    split = week_split(week, tz)
    assume(split is not None)
    assert split is not None
    other = at + timedelta(seconds=seconds)
    assert (week_start(other, tz) > week) == (other >= split)
