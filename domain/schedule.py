"""Recurrence schedules (RFC 5545 RRULE or cron) expanded in a time zone's local time.

Occurrences are computed on the local wall clock and only then turned into instants, so a
20:00 Europe/Berlin occurrence stays at 20:00 local across daylight-saving changes. A local
time that does not exist (skipped by a spring-forward change) is shifted forward by the
gap (02:30 becomes 03:30); a local time that happens twice (autumn) means the first one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter
from dateutil.rrule import rrule, rrulestr

from domain.errors import InvalidInputError
from domain.timekeeping import zone_name

MAX_SCHEDULE: Final = 500
CHECKED_OCCURRENCES: Final = 60
"""How many first occurrences are checked for "at most one per local day"."""


@dataclass(frozen=True)
class Occurrence:
    """One occurrence: its local date (which names it) and its due instant in UTC."""

    local_date: date
    due_at: datetime


@dataclass(frozen=True)
class Schedule:
    """A validated schedule: `rule` is an RRULE (with `due_time`) or a 5-field cron line."""

    rule: str
    timezone: str
    starts_on: date
    due_time: str | None = None

    def __post_init__(self) -> None:
        zone_name("timezone", self.timezone)
        if not self.rule.strip() or len(self.rule) > MAX_SCHEDULE:
            raise InvalidInputError("schedule", f"must be 1-{MAX_SCHEDULE} characters")
        if self.is_cron:
            if len(self.rule.split()) != 5 or not croniter.is_valid(self.rule):
                raise InvalidInputError("schedule", "not a valid RRULE or 5-field cron line")
            if self.due_time is not None:
                raise InvalidInputError("due_time", "a cron schedule gives its own time of day")
        else:
            if self.due_time is None:
                raise InvalidInputError("due_time", "an RRULE schedule needs a due_time (HH:MM)")
            try:
                time.fromisoformat(self.due_time)
            except ValueError:
                raise InvalidInputError("due_time", "must be a time like 20:00") from None
            self._rrule()
        try:
            first = [
                o.local_date for o in self.between(self._start_local() - timedelta(seconds=1), None)
            ]
        except CroniterBadDateError:
            raise InvalidInputError("schedule", "the schedule never occurs") from None
        if not first:
            raise InvalidInputError("schedule", "the schedule never occurs")
        if len(set(first)) != len(first):
            raise InvalidInputError("schedule", "at most one occurrence per local day")

    @property
    def is_cron(self) -> bool:
        """Whether the rule is a cron line rather than an RRULE."""
        return "=" not in self.rule

    def between(
        self, after: datetime, until: datetime | None, limit: int = CHECKED_OCCURRENCES
    ) -> list[Occurrence]:
        """Occurrences with `after < due_at <= until` (the first `limit` when `until` is None)."""
        zone = ZoneInfo(self.timezone)
        start = max(self._local_naive(after, zone), self._start_local_naive())
        end = self._local_naive(until, zone) if until is not None else None
        result = []
        for local in self._iterate(start):
            if end is not None and local > end + timedelta(hours=3):
                break  # a margin for local times shifted by a daylight-saving change
            due_at = local.replace(tzinfo=zone).astimezone(UTC)
            if due_at <= after:
                continue
            if until is not None and due_at > until:
                break
            result.append(Occurrence(local.date(), due_at))
            if len(result) >= limit:
                break
        return result

    def _iterate(self, start: datetime) -> Iterator[datetime]:
        if self.is_cron:
            return croniter(self.rule, start - timedelta(minutes=1)).all_next(datetime)
        return self._rrule().xafter(start - timedelta(microseconds=1), inc=False)

    def _rrule(self) -> rrule:
        text = self.rule.strip()
        text = text.removeprefix("RRULE:")
        if "DTSTART" in text.upper() or "\n" in text:
            raise InvalidInputError("schedule", "give one RRULE without DTSTART")
        try:
            rule = rrulestr(text, dtstart=self._start_local_naive())
        except (ValueError, TypeError):
            raise InvalidInputError("schedule", "not a valid RRULE or 5-field cron line") from None
        if not isinstance(rule, rrule):
            raise InvalidInputError("schedule", "give one RRULE")
        return rule

    def _start_local_naive(self) -> datetime:
        clock = time.fromisoformat(self.due_time) if self.due_time else time(0, 0)
        return datetime.combine(self.starts_on, clock)

    def _start_local(self) -> datetime:
        zone = ZoneInfo(self.timezone)
        return datetime.combine(self.starts_on, time(0, 0), tzinfo=zone).astimezone(UTC)

    @staticmethod
    def _local_naive(instant: datetime, zone: ZoneInfo) -> datetime:
        return instant.astimezone(zone).replace(tzinfo=None)
