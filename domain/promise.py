"""The Promise aggregate: one promise from being made to its (current) outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from eventsourcing.domain import Aggregate

from domain.errors import (
    InvalidInputError,
    PromiseAlreadySettledError,
    PromiseNotSettledError,
    PromiseNotYetLapsableError,
    RenegotiationTooLateError,
)
from domain.identity import promise_id, validate_key, validate_promise_key
from domain.timekeeping import utc_instant, zone_name

MAX_TITLE: Final = 200
MAX_TEXT: Final = 2000
MAX_CATEGORY: Final = 64
MAX_REMINDERS: Final = 10
NOT_YET: Final = datetime.min.replace(tzinfo=UTC)  # placeholder until `Made` is applied
LAPSE_SUPERSEDED: Final = "an outcome was reported for a time before the presumed lapse"


class PromiseStatus(StrEnum):
    """Where a promise stands; every status but OPEN is an outcome."""

    OPEN = "open"
    KEPT = "kept"
    BROKEN = "broken"
    RELEASED = "released"
    LAPSED = "lapsed"


CORRECTABLE_OUTCOMES: Final = frozenset(
    {PromiseStatus.KEPT, PromiseStatus.BROKEN, PromiseStatus.RELEASED}
)


@dataclass(frozen=True)
class PromiseTerms:
    """What was promised: the content of `Promise.Made`, validated."""

    tenant: str
    key: str
    promiser: str
    title: str
    made_at: datetime
    promisee: str | None = None
    details: str | None = None
    category: str | None = None
    due_at: datetime | None = None
    timezone: str | None = None
    reminders: tuple[timedelta, ...] = ()

    def __post_init__(self) -> None:
        validate_promise_key("promise_id", self.key)
        check_parties_and_title(self.promiser, self.promisee, self.title)
        _check_text("details", self.details)
        if self.category is not None and not 0 < len(self.category.strip()) <= MAX_CATEGORY:
            raise InvalidInputError("category", f"must be 1-{MAX_CATEGORY} characters")
        object.__setattr__(self, "made_at", utc_instant("timestamp", self.made_at))
        if self.due_at is not None:
            due_at = utc_instant("due_at", self.due_at)
            if due_at < self.made_at:
                raise InvalidInputError("due_at", "must not be before the promise was made")
            object.__setattr__(self, "due_at", due_at)
        if self.timezone is not None:
            zone_name("timezone", self.timezone)
        object.__setattr__(self, "reminders", lead_times(self.reminders, self.due_at))

    def as_event_fields(self) -> dict[str, Any]:
        """The fields of the `Made` event recording these terms."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def check_parties_and_title(promiser: str, promisee: str | None, title: str) -> None:
    """Who promises to whom, and what: the rules a promise (and a commitment) must meet."""
    validate_key("promiser", promiser)
    if promisee is not None:
        validate_key("promisee", promisee)
        if promisee == promiser:
            raise InvalidInputError("promisee", "a promise is made to someone else")
    if not title.strip() or len(title) > MAX_TITLE:
        raise InvalidInputError("title", f"must be 1-{MAX_TITLE} characters")


def _check_text(field: str, value: str | None) -> None:
    if value is not None and len(value) > MAX_TEXT:
        raise InvalidInputError(field, f"must be at most {MAX_TEXT} characters")


def lead_times(reminders: tuple[timedelta, ...], due_at: datetime | None) -> tuple[timedelta, ...]:
    """The reminder lead times, checked, without repeats, longest first."""
    if not reminders:
        return ()
    if due_at is None:
        raise InvalidInputError("reminders", "reminders need a due_at")
    if len(reminders) > MAX_REMINDERS:
        raise InvalidInputError("reminders", f"at most {MAX_REMINDERS} reminders")
    if any(lead <= timedelta(0) for lead in reminders):
        raise InvalidInputError("reminders", "lead times must be positive durations")
    return tuple(sorted(set(reminders), reverse=True))


class Promise(Aggregate):
    """A promise from a promiser (optionally to a promisee), with at most one current outcome."""

    TOPIC = "troth:Promise"

    def __init__(self) -> None:
        self.tenant: str = ""
        self.key: str = ""
        self.promiser: str = ""
        self.promisee: str | None = None
        self.title: str = ""
        self.details: str | None = None
        self.category: str | None = None
        self.due_at: datetime | None = None
        self.timezone: str | None = None
        self.reminders: tuple[timedelta, ...] = ()
        self.made_at: datetime = NOT_YET
        self.status: PromiseStatus = PromiseStatus.OPEN
        self.outcome_at: datetime | None = None
        self.is_late: bool = False

    class Event(Aggregate.Event):
        pass

    class Created(Event, Aggregate.Created):
        TOPIC = "troth:Promise.Created"

    class Made(Created):
        """The promise was made (version 2: v1 had no `category` or `reminders`)."""

        TOPIC = "troth:Promise.Made"
        class_version = 2

        tenant: str
        key: str
        promiser: str
        promisee: str | None
        title: str
        details: str | None
        category: str | None
        due_at: datetime | None
        timezone: str | None
        reminders: tuple[timedelta, ...]
        made_at: datetime

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["category"] = None
            state["reminders"] = []

        def apply(self, aggregate: Promise) -> None:
            for name in PromiseTerms.__dataclass_fields__:
                setattr(aggregate, name, getattr(self, name))
            aggregate.reminders = tuple(self.reminders)

    class Kept(Event):
        """The promise was kept at `at`; `is_late` when after `due_at` + the tenant's grace."""

        TOPIC = "troth:Promise.Kept"
        at: datetime
        is_late: bool
        note: str | None
        reported_by: str | None

        def apply(self, aggregate: Promise) -> None:
            aggregate._settle(PromiseStatus.KEPT, self.at, is_late=self.is_late)

    class Broken(Event):
        """The promise was reported broken at `at`."""

        TOPIC = "troth:Promise.Broken"
        at: datetime
        reason: str | None
        reported_by: str | None

        def apply(self, aggregate: Promise) -> None:
            aggregate._settle(PromiseStatus.BROKEN, self.at)

    class Renegotiated(Event):
        """Before it was due, the promise got a new due time (neutral for the score)."""

        TOPIC = "troth:Promise.Renegotiated"
        due_at: datetime
        at: datetime
        reason: str | None

        def apply(self, aggregate: Promise) -> None:
            aggregate.due_at = self.due_at

    class Released(Event):
        """The promisee released the promiser (excused or cancelled): no score effect."""

        TOPIC = "troth:Promise.Released"
        at: datetime
        reason: str | None

        def apply(self, aggregate: Promise) -> None:
            aggregate._settle(PromiseStatus.RELEASED, self.at)

    class Lapsed(Event):
        """No outcome arrived by `due_at + lapse_after`; `at` is that instant."""

        TOPIC = "troth:Promise.Lapsed"
        at: datetime

        def apply(self, aggregate: Promise) -> None:
            aggregate._settle(PromiseStatus.LAPSED, self.at)

    class OutcomeCorrected(Event):
        """The current outcome was replaced (a dispute, or a report superseding a lapse)."""

        TOPIC = "troth:Promise.OutcomeCorrected"
        outcome: str
        at: datetime
        is_late: bool
        reason: str

        def apply(self, aggregate: Promise) -> None:
            aggregate._settle(PromiseStatus(self.outcome), self.at, is_late=self.is_late)

    @classmethod
    def make(cls, terms: PromiseTerms) -> Promise:
        """Record that a promise was made."""
        return cls._create(
            cls.Made, id=promise_id(terms.tenant, terms.key), **terms.as_event_fields()
        )

    @property
    def terms(self) -> PromiseTerms:
        """The promise's content as made (with the current `due_at`)."""
        return PromiseTerms(
            tenant=self.tenant,
            key=self.key,
            promiser=self.promiser,
            promisee=self.promisee,
            title=self.title,
            details=self.details,
            category=self.category,
            due_at=self.due_at,
            timezone=self.timezone,
            reminders=self.reminders,
            made_at=self.made_at,
        )

    @property
    def is_settled(self) -> bool:
        """Whether the promise has an outcome."""
        return self.status is not PromiseStatus.OPEN

    def keep(
        self,
        *,
        at: datetime,
        grace: timedelta,
        note: str | None = None,
        reported_by: str | None = None,
    ) -> None:
        """Report the promise kept at `at`."""
        at = self._outcome_time(at)
        _check_text("note", note)
        if reported_by is not None:
            validate_key("reported_by", reported_by)
        is_late = self._is_late(at, grace)
        if self._supersedes_lapse(at):
            self._correct(PromiseStatus.KEPT, at, LAPSE_SUPERSEDED, is_late=is_late)
            return
        self._require_open()
        self.trigger_event(self.Kept, at=at, is_late=is_late, note=note, reported_by=reported_by)

    def break_(
        self, *, at: datetime, reason: str | None = None, reported_by: str | None = None
    ) -> None:
        """Report the promise broken at `at`."""
        at = self._outcome_time(at)
        _check_text("reason", reason)
        if reported_by is not None:
            validate_key("reported_by", reported_by)
        if self._supersedes_lapse(at):
            self._correct(PromiseStatus.BROKEN, at, LAPSE_SUPERSEDED, is_late=False)
            return
        self._require_open()
        self.trigger_event(self.Broken, at=at, reason=reason, reported_by=reported_by)

    def release(self, *, at: datetime, reason: str | None = None) -> None:
        """The promisee releases the promiser from the promise."""
        at = self._outcome_time(at)
        _check_text("reason", reason)
        if self._supersedes_lapse(at):
            self._correct(PromiseStatus.RELEASED, at, LAPSE_SUPERSEDED, is_late=False)
            return
        self._require_open()
        self.trigger_event(self.Released, at=at, reason=reason)

    def renegotiate(self, *, due_at: datetime, at: datetime, reason: str | None = None) -> None:
        """Agree a new due time; allowed only while open and before the current due time."""
        due_at = utc_instant("due_at", due_at)
        at = self._outcome_time(at)
        _check_text("reason", reason)
        self._require_open()
        if self.due_at is not None and at >= self.due_at:
            raise RenegotiationTooLateError(
                f"the promise was due at {self.due_at.isoformat()}; renegotiate before that"
            )
        if due_at <= at:
            raise InvalidInputError("due_at", "the new due time must be in the future")
        if due_at == self.due_at:
            return
        self.trigger_event(self.Renegotiated, due_at=due_at, at=at, reason=reason)

    def lapse(self, *, now: datetime, lapse_after: timedelta) -> None:
        """Record the presumption that the promise lapsed: no outcome by `due_at + lapse_after`."""
        self._require_open()
        if self.due_at is None:
            raise PromiseNotYetLapsableError("a promise without due time never lapses")
        lapse_at = self.due_at + lapse_after
        if utc_instant("now", now) < lapse_at:
            raise PromiseNotYetLapsableError(f"the promise can lapse at {lapse_at.isoformat()}")
        self.trigger_event(self.Lapsed, at=lapse_at)

    def correct_outcome(
        self, *, outcome: PromiseStatus, at: datetime, reason: str, grace: timedelta
    ) -> bool:
        """Replace the current outcome; False when it already is that outcome at that time."""
        if outcome not in CORRECTABLE_OUTCOMES:
            raise InvalidInputError("outcome", "must be kept, broken or released")
        if not reason.strip():
            raise InvalidInputError("reason", "a correction needs a reason")
        _check_text("reason", reason)
        at = self._outcome_time(at)
        if not self.is_settled:
            raise PromiseNotSettledError("the promise is still open; report its outcome instead")
        if self.status is outcome and self.outcome_at == at:
            return False
        is_late = outcome is PromiseStatus.KEPT and self._is_late(at, grace)
        self._correct(outcome, at, reason, is_late=is_late)
        return True

    def _correct(self, outcome: PromiseStatus, at: datetime, reason: str, *, is_late: bool) -> None:
        self.trigger_event(
            self.OutcomeCorrected, outcome=outcome.value, at=at, is_late=is_late, reason=reason
        )

    def _settle(self, status: PromiseStatus, at: datetime, *, is_late: bool = False) -> None:
        self.status = status
        self.outcome_at = at
        self.is_late = is_late

    def _outcome_time(self, at: datetime) -> datetime:
        at = utc_instant("at", at)
        if at < self.made_at:
            raise InvalidInputError("at", "an outcome cannot come before the promise was made")
        return at

    def _is_late(self, at: datetime, grace: timedelta) -> bool:
        return self.due_at is not None and at > self.due_at + grace

    def _supersedes_lapse(self, at: datetime) -> bool:
        # A lapse is a presumption: a report of what really happened before the lapse
        # time replaces it, so slow reporters and backfills end with the truth.
        return (
            self.status is PromiseStatus.LAPSED
            and self.outcome_at is not None
            and at < self.outcome_at
        )

    def _require_open(self) -> None:
        if self.is_settled:
            raise PromiseAlreadySettledError(f"the promise is already {self.status.value}")
