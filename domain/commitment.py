"""The Commitment aggregate: a recurring promise whose occurrences become ordinary promises."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from eventsourcing.domain import Aggregate

from domain.errors import CommitmentConflictError, InvalidInputError
from domain.identity import OCCURRENCE_DATE_LENGTH, commitment_id, validate_key
from domain.promise import PromiseTerms, check_parties_and_title, lead_times
from domain.schedule import Occurrence, Schedule
from domain.timekeeping import utc_instant

MAX_COMMITMENT_ID: Final = 128 - OCCURRENCE_DATE_LENGTH
NOT_YET: Final = datetime.min.replace(tzinfo=UTC)


def occurrence_key(commitment: str, local_date: date) -> str:
    """The promise id of an occurrence: `<commitment_id>/<local date>`."""
    return f"{commitment}/{local_date.isoformat()}"


@dataclass(frozen=True)
class CommitmentTerms:
    """What recurs: the content of `Commitment.Created`, validated."""

    tenant: str
    key: str
    promiser: str
    title: str
    schedule: Schedule
    promisee: str | None = None
    reminders: tuple[timedelta, ...] = ()

    def __post_init__(self) -> None:
        validate_key("commitment_id", self.key)
        if len(self.key) > MAX_COMMITMENT_ID:
            raise InvalidInputError("commitment_id", f"at most {MAX_COMMITMENT_ID} characters")
        check_parties_and_title(self.promiser, self.promisee, self.title)
        # A placeholder due time only to validate the leads the same way promises do.
        object.__setattr__(self, "reminders", lead_times(self.reminders, NOT_YET))


class Commitment(Aggregate):
    """A recurring commitment; occurrences are promises made ahead by the scheduler."""

    TOPIC = "troth:Commitment"

    def __init__(self) -> None:
        self.tenant: str = ""
        self.key: str = ""
        self.promiser: str = ""
        self.promisee: str | None = None
        self.title: str = ""
        self.schedule: Schedule | None = None
        self.reminders: tuple[timedelta, ...] = ()
        self.created_at: datetime = NOT_YET
        self.is_paused: bool = False
        self.ended_at: datetime | None = None
        self.scheduled_through: datetime = NOT_YET

    class Event(Aggregate.Event):
        tenant: str
        key: str

    class Created(Event, Aggregate.Created):
        """The commitment was made; occurrences from `at` on follow `rule` in `timezone`."""

        TOPIC = "troth:Commitment.Created"
        promiser: str
        promisee: str | None
        title: str
        rule: str
        timezone: str
        starts_on: str
        due_time: str | None
        reminders: tuple[timedelta, ...]
        at: datetime

        def apply(self, aggregate: Commitment) -> None:
            aggregate.tenant = self.tenant
            aggregate.key = self.key
            aggregate.promiser = self.promiser
            aggregate.promisee = self.promisee
            aggregate.title = self.title
            aggregate.schedule = Schedule(
                self.rule, self.timezone, date.fromisoformat(self.starts_on), self.due_time
            )
            aggregate.reminders = tuple(self.reminders)
            aggregate.created_at = self.at
            aggregate.scheduled_through = self.at

    class Paused(Event):
        """No occurrence after `at` is made until resumed; made ones after `at` are released."""

        TOPIC = "troth:Commitment.Paused"
        at: datetime

        def apply(self, aggregate: Commitment) -> None:
            aggregate.is_paused = True

    class Resumed(Event):
        """Occurrences after `at` are made again."""

        TOPIC = "troth:Commitment.Resumed"
        at: datetime

        def apply(self, aggregate: Commitment) -> None:
            aggregate.is_paused = False
            aggregate.scheduled_through = max(aggregate.scheduled_through, self.at)

    class Ended(Event):
        """No occurrence after `at` is made; made ones after `at` are released."""

        TOPIC = "troth:Commitment.Ended"
        at: datetime

        def apply(self, aggregate: Commitment) -> None:
            aggregate.ended_at = self.at

    class Scheduled(Event):
        """Every occurrence due up to `through` was made as a promise."""

        TOPIC = "troth:Commitment.Scheduled"
        through: datetime

        def apply(self, aggregate: Commitment) -> None:
            aggregate.scheduled_through = self.through

    @classmethod
    def create(cls, terms: CommitmentTerms, *, at: datetime) -> Commitment:
        """Record a new recurring commitment."""
        schedule = terms.schedule
        return cls._create(
            cls.Created,
            id=commitment_id(terms.tenant, terms.key),
            tenant=terms.tenant,
            key=terms.key,
            promiser=terms.promiser,
            promisee=terms.promisee,
            title=terms.title,
            rule=schedule.rule,
            timezone=schedule.timezone,
            starts_on=schedule.starts_on.isoformat(),
            due_time=schedule.due_time,
            reminders=terms.reminders,
            at=utc_instant("at", at),
        )

    @property
    def terms(self) -> CommitmentTerms:
        """What recurs, as created."""
        assert self.schedule is not None  # noqa: S101  (set by Created)
        return CommitmentTerms(
            tenant=self.tenant,
            key=self.key,
            promiser=self.promiser,
            title=self.title,
            schedule=self.schedule,
            promisee=self.promisee,
            reminders=self.reminders,
        )

    @property
    def is_active(self) -> bool:
        """Whether occurrences are being made."""
        return not self.is_paused and self.ended_at is None

    @property
    def status(self) -> str:
        """active, paused or ended."""
        if self.ended_at is not None:
            return "ended"
        return "paused" if self.is_paused else "active"

    def terms_of(self, occurrence: Occurrence, horizon: timedelta) -> PromiseTerms:
        """The promise an occurrence is: made `horizon` before it is due (or when the
        commitment was made, if later), so making it again yields the same terms."""
        made_at = max(self.created_at, occurrence.due_at - horizon)
        assert self.schedule is not None  # noqa: S101  (set by Created)
        return PromiseTerms(
            tenant=self.tenant,
            key=occurrence_key(self.key, occurrence.local_date),
            promiser=self.promiser,
            promisee=self.promisee,
            title=self.title,
            due_at=occurrence.due_at,
            timezone=self.schedule.timezone,
            reminders=self.reminders,
            made_at=made_at,
        )

    def due_occurrences(self, *, now: datetime, horizon: timedelta) -> list[Occurrence]:
        """Occurrences not yet made that are due by `now + horizon` (none unless active)."""
        if not self.is_active or self.schedule is None:
            return []
        return self.schedule.between(self.scheduled_through, now + horizon, limit=1000)

    def mark_scheduled(self, through: datetime) -> None:
        """Record that every occurrence up to `through` was made."""
        if through > self.scheduled_through:
            self._trigger(self.Scheduled, through=through)

    def pause(self, *, at: datetime) -> None:
        """Stop making occurrences."""
        self._require_not_ended()
        if not self.is_paused:
            self._trigger(self.Paused, at=utc_instant("at", at))

    def resume(self, *, at: datetime) -> None:
        """Make occurrences again, from `at` on."""
        self._require_not_ended()
        if self.is_paused:
            self._trigger(self.Resumed, at=utc_instant("at", at))

    def end(self, *, at: datetime) -> None:
        """End the commitment for good."""
        if self.ended_at is None:
            self._trigger(self.Ended, at=utc_instant("at", at))

    def made_after(self, at: datetime) -> list[Occurrence]:
        """Occurrences already made as promises that are due after `at`."""
        if self.schedule is None:
            return []
        return self.schedule.between(at, self.scheduled_through, limit=1000)

    def _trigger(self, event: type[Aggregate.Event], **fields: Any) -> None:
        self.trigger_event(event, tenant=self.tenant, key=self.key, **fields)

    def _require_not_ended(self) -> None:
        if self.ended_at is not None:
            raise CommitmentConflictError("the commitment has ended")
