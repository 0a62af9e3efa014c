"""The Person aggregate: a tenant-scoped person, with their time zone and quiet hours."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time

from eventsourcing.domain import Aggregate

from domain.errors import InvalidInputError
from domain.identity import person_id, validate_key
from domain.timekeeping import utc_instant, zone_name

CLOCK_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


@dataclass(frozen=True)
class QuietHours:
    """A daily local-time window in which no reminder is sent; may span midnight."""

    start: str
    end: str

    def __post_init__(self) -> None:
        for field in ("start", "end"):
            if CLOCK_TIME.fullmatch(getattr(self, field)) is None:
                raise InvalidInputError(f"quiet_hours.{field}", "must be a time like 22:00")
        if self.start == self.end:
            raise InvalidInputError("quiet_hours.end", "must differ from start")

    @property
    def start_time(self) -> time:
        """`start` as a local clock time."""
        return time.fromisoformat(self.start)

    @property
    def end_time(self) -> time:
        """`end` as a local clock time."""
        return time.fromisoformat(self.end)


class Person(Aggregate):
    """Someone who makes or receives promises within one tenant."""

    TOPIC = "troth:Person"

    def __init__(self) -> None:
        self.tenant: str = ""
        self.key: str = ""
        self.timezone: str = "UTC"
        self.quiet_hours: QuietHours | None = None

    class Event(Aggregate.Event):
        pass

    class Created(Event, Aggregate.Created):
        TOPIC = "troth:Person.Created"

    class Registered(Created):
        """The person was first mentioned to Troth."""

        TOPIC = "troth:Person.Registered"
        tenant: str
        key: str
        at: datetime

        def apply(self, aggregate: Person) -> None:
            aggregate.tenant = self.tenant
            aggregate.key = self.key

    class TimezoneChanged(Event):
        """The person's IANA time zone changed (local days and weeks follow it)."""

        TOPIC = "troth:Person.TimezoneChanged"
        timezone: str
        at: datetime

        def apply(self, aggregate: Person) -> None:
            aggregate.timezone = self.timezone

    class QuietHoursChanged(Event):
        """The person's quiet hours were set (`start`/`end` like "22:00") or cleared (None)."""

        TOPIC = "troth:Person.QuietHoursChanged"
        start: str | None
        end: str | None
        at: datetime

        def apply(self, aggregate: Person) -> None:
            if self.start is None or self.end is None:
                aggregate.quiet_hours = None
            else:
                aggregate.quiet_hours = QuietHours(self.start, self.end)

    @classmethod
    def register(cls, tenant: str, key: str, *, at: datetime) -> Person:
        """Register a person under a tenant-scoped id."""
        validate_key("person", key)
        return cls._create(
            cls.Registered,
            id=person_id(tenant, key),
            tenant=tenant,
            key=key,
            at=utc_instant("at", at),
        )

    def change_timezone(self, timezone: str, *, at: datetime) -> bool:
        """Set the person's time zone; False when it already was that."""
        zone_name("timezone", timezone)
        if timezone == self.timezone:
            return False
        self.trigger_event(self.TimezoneChanged, timezone=timezone, at=utc_instant("at", at))
        return True

    def change_quiet_hours(self, quiet_hours: QuietHours | None, *, at: datetime) -> bool:
        """Set or clear the person's quiet hours; False when unchanged."""
        if quiet_hours == self.quiet_hours:
            return False
        self.trigger_event(
            self.QuietHoursChanged,
            start=quiet_hours.start if quiet_hours else None,
            end=quiet_hours.end if quiet_hours else None,
            at=utc_instant("at", at),
        )
        return True
