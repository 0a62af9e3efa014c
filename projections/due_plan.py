"""What is due when: the pure planning of reminders, follow-ups and lapses (no I/O).

Every due item carries a deterministic message id, so firing an item twice (a crash
between queuing its message and marking it done, or a replay) queues one message: the
outbox records a message id once per tenant.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo

from domain.person import QuietHours
from domain.policy import DEFAULT_FOLLOW_UP_AFTER, DEFAULT_REMINDERS
from projections.calendar import DEFAULT_TIMEZONE

MAX_MESSAGE_ID: Final = 128
JUST_BEFORE: Final = timedelta(minutes=1)
"""How long before quiet hours begin a reminder pulled forward is sent."""


class DueKind(StrEnum):
    """What a due item does when it fires."""

    DUE_SOON = "reminder.due_soon"  # queue a reminder message
    FOLLOW_UP = "promise.follow_up"  # queue a follow-up message
    LAPSE = "lapse"  # record `Promise.Lapsed` through the aggregate
    LAPSED = "promise.lapsed"  # queue the message announcing a recorded lapse


@dataclass(frozen=True)
class DuePromise:
    """An open or settled promise as the scheduler sees it."""

    aggregate_id: str
    tenant: str
    key: str
    promiser: str
    promisee: str | None
    title: str
    due_at: datetime | None
    reminders: tuple[timedelta, ...]
    planned_from: datetime  # made_at, or the time of the last renegotiation
    status: str  # open | kept | broken | released | lapsed
    outcome_at: datetime | None = None


@dataclass(frozen=True)
class DuePerson:
    """A person's time zone and quiet hours."""

    aggregate_id: str
    tenant: str
    person: str
    timezone: str = DEFAULT_TIMEZONE
    quiet_hours: QuietHours | None = None


@dataclass(frozen=True, order=True)
class DueItem:
    """One piece of scheduled work, keyed by its message id within its tenant."""

    fire_at: datetime
    tenant: str
    message_id: str
    kind: DueKind = field(compare=False)
    promise: str = field(compare=False)
    person: str = field(compare=False)
    data: dict[str, Any] = field(compare=False, default_factory=dict)


def plan(
    promise: DuePromise,
    person: DuePerson | None,
    lapse_after: timedelta,
    follow_up_after: timedelta = DEFAULT_FOLLOW_UP_AFTER,
) -> list[DueItem]:
    """Everything still to do for `promise`: reminders, follow-up and lapse while it is open;
    the lapse announcement once it lapsed; nothing otherwise."""
    if promise.due_at is None:
        return []
    if promise.status == "lapsed" and promise.outcome_at is not None:
        return [_item(promise, DueKind.LAPSED, promise.outcome_at, lapsed_at=promise.outcome_at)]
    if promise.status != "open":
        return []
    due_at = promise.due_at
    quiet = person.quiet_hours if person is not None else None
    zone = ZoneInfo(person.timezone if person is not None else DEFAULT_TIMEZONE)
    items = []
    for lead in promise.reminders or DEFAULT_REMINDERS:
        nominal = due_at - lead
        if nominal < promise.planned_from:
            continue  # already past when the promise was made (or renegotiated)
        fire_at = reminder_time(nominal, due_at, quiet, zone)
        if fire_at < promise.planned_from:
            continue  # pulled before quiet hours that had begun when the promise was made
        items.append(_item(promise, DueKind.DUE_SOON, fire_at, lead=lead))
    follow_up = due_at + follow_up_after
    if follow_up_after < lapse_after:
        items.append(_item(promise, DueKind.FOLLOW_UP, after_quiet_hours(follow_up, quiet, zone)))
    items.append(_item(promise, DueKind.LAPSE, due_at + lapse_after))
    return items


def reminder_time(
    nominal: datetime, due_at: datetime, quiet: QuietHours | None, zone: ZoneInfo
) -> datetime:
    """When a reminder meant for `nominal` is sent: then, unless inside quiet hours; else
    when they end if that is before the due time, or else just before they began."""
    window = quiet_window(nominal, quiet, zone)
    if window is None:
        return nominal
    start, end = window
    if end < due_at:
        return end
    return start - JUST_BEFORE


def after_quiet_hours(instant: datetime, quiet: QuietHours | None, zone: ZoneInfo) -> datetime:
    """`instant`, or the end of the quiet hours it falls in."""
    window = quiet_window(instant, quiet, zone)
    return instant if window is None else window[1]


def quiet_window(
    instant: datetime, quiet: QuietHours | None, zone: ZoneInfo
) -> tuple[datetime, datetime] | None:
    """The quiet-hours window (UTC start, end) containing `instant`, if any.

    Windows are local wall-clock times on each local day, so they follow daylight-saving
    changes; a window may span midnight (start on one day, end on the next).
    """
    if quiet is None:
        return None
    local_day = instant.astimezone(zone).date()
    for day in (local_day - timedelta(days=1), local_day):
        start = _local(day, quiet.start_time, zone)
        end_day = day if quiet.end_time > quiet.start_time else day + timedelta(days=1)
        end = _local(end_day, quiet.end_time, zone)
        if start <= instant < end:
            return start, end
    return None


def _local(day: date, clock: time, zone: ZoneInfo) -> datetime:
    # fold=0: a repeated local time means its first occurrence; a nonexistent one (in a
    # spring-forward gap) is read with the offset before the change, i.e. shifted forward.
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def _item(
    promise: DuePromise,
    kind: DueKind,
    fire_at: datetime,
    *,
    lead: timedelta | None = None,
    lapsed_at: datetime | None = None,
) -> DueItem:
    due_at = promise.due_at
    assert due_at is not None  # noqa: S101  (plan() returns early without a due time)
    stamp = int(due_at.timestamp())
    data: dict[str, Any] = {
        "promise_id": promise.key,
        "promiser": promise.promiser,
        "promisee": promise.promisee,
        "title": promise.title,
        "due_at": due_at.isoformat(),
    }
    if kind is DueKind.DUE_SOON:
        assert lead is not None  # noqa: S101
        seconds = int(lead.total_seconds())
        message_id = f"{kind.value}:{promise.key}:{seconds}:{stamp}"
        data["lead_seconds"] = seconds
    elif kind is DueKind.LAPSED:
        assert lapsed_at is not None  # noqa: S101
        message_id = f"{kind.value}:{promise.key}:{int(lapsed_at.timestamp())}"
        data["lapsed_at"] = lapsed_at.isoformat()
    else:
        message_id = f"{kind.value}:{promise.key}:{stamp}"
    return DueItem(
        fire_at=fire_at,
        tenant=promise.tenant,
        message_id=_bounded(message_id, kind, promise.key),
        kind=kind,
        promise=promise.key,
        person=promise.promiser,
        data=data,
    )


def _bounded(message_id: str, kind: DueKind, key: str) -> str:
    # Message ids are at most 128 characters of a client id's alphabet; a long promise id,
    # or an occurrence's (with its `/`), is replaced by its hash, which keeps the id
    # deterministic (and so the outbox's deduplication) and apart from every other id.
    if len(message_id) <= MAX_MESSAGE_ID and "/" not in key:
        return message_id
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return message_id.replace(f"{kind.value}:{key}:", f"{kind.value}:sha256-{digest}:", 1)
