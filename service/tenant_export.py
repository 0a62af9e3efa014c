"""A tenant's whole history as webhook envelopes, in log order: their data, given back.

Each line is the envelope a sender would post for that event (`type`, `timestamp` = the
business time, `data`), plus `id` (stable: the source aggregate and version) and
`recorded_at` (when Troth recorded it). Two kinds have no webhook: `promise.lapsed`
(recorded by Troth when no outcome arrived) and `tenant.scoring_policy_changed`; they
are exported so an import reproduces the same reports. Credentials and share links are
never exported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import isodate

from domain.application import Ledger
from domain.identity import tenant_id
from domain.person import Person
from domain.promise import Promise
from domain.tenant import Tenant

PAGE: Final = 1000
LAPSED: Final = "promise.lapsed"
POLICY_CHANGED: Final = "tenant.scoring_policy_changed"
CREATIONS: Final = (Promise.Made.TOPIC, Person.Registered.TOPIC)
TOPICS: Final = (
    *CREATIONS,
    Promise.Kept.TOPIC,
    Promise.Broken.TOPIC,
    Promise.Renegotiated.TOPIC,
    Promise.Released.TOPIC,
    Promise.Lapsed.TOPIC,
    Promise.OutcomeCorrected.TOPIC,
    Person.TimezoneChanged.TOPIC,
    Person.QuietHoursChanged.TOPIC,
    Tenant.ScoringPolicyChanged.TOPIC,
)


def export_envelopes(
    ledger: Ledger, tenant: str, *, progress: Callable[[int, int], None] | None = None
) -> Iterator[dict[str, Any]]:
    """The tenant's events up to the log's head when called, oldest first, as envelopes.

    Reads the log a page at a time, so memory holds one page and the tenant's ids;
    `progress(position, head)` is called after each page.
    """
    ledger.tenant(tenant)  # TenantNotFoundError before anything is streamed
    head = ledger.head_position()
    own = tenant_id(tenant)
    keys: dict[UUID, str] = {}  # the tenant's promises and people: aggregate id -> key
    start = 1
    while start <= head:
        page = ledger.recorder.select_notifications(
            start=start, limit=PAGE, stop=head, topics=TOPICS
        )
        for notification in page:
            originator = UUID(str(notification.originator_id))
            # Only creations name their tenant; every later event is known by its originator.
            is_ours = originator == own or originator in keys
            if notification.topic not in CREATIONS and not is_ours:
                continue
            event: Any = ledger.mapper.to_domain_event(notification)
            envelope = _envelope(event, tenant, keys)
            if envelope is not None:
                yield {
                    "id": f"{originator}:{event.originator_version}",
                    **envelope,
                    "recorded_at": _time(event.timestamp),
                }
        start = page[-1].id + 1 if len(page) == PAGE else head + 1
        if progress is not None:
            progress(min(start - 1, head), head)


def _envelope(event: Any, tenant: str, keys: dict[UUID, str]) -> dict[str, Any] | None:
    if isinstance(event, Promise.Made | Person.Registered):
        if event.tenant != tenant:
            return None
        keys[event.originator_id] = event.key
    if isinstance(event, Promise.Event):
        return _promise(event, keys[event.originator_id])
    if isinstance(event, Person.Event):
        return _person(event, keys[event.originator_id])
    if isinstance(event, Tenant.ScoringPolicyChanged):
        policy = {
            name: isodate.duration_isoformat(value) if hasattr(value, "total_seconds") else value
            for name, value in event.policy.as_dict().items()
        }
        return {"type": POLICY_CHANGED, "timestamp": _time(event.timestamp), "data": policy}
    return None


def _promise(event: Any, key: str) -> dict[str, Any]:
    if isinstance(event, Promise.Made):
        data = {
            "promise_id": key,
            "promiser": event.promiser,
            "promisee": event.promisee,
            "title": event.title,
            "details": event.details,
            "category": event.category,
            "due_at": _time(event.due_at),
            "timezone": event.timezone,
            "reminders": [isodate.duration_isoformat(lead) for lead in event.reminders],
        }
        data = {k: v for k, v in data.items() if v not in (None, [])}
        return {"type": "promise.made", "timestamp": _time(event.made_at), "data": data}
    at = event.at
    data = {"promise_id": key}
    if isinstance(event, Promise.Kept):
        kind = "promise.kept"
        data |= {"at": _time(at), "note": event.note, "reported_by": event.reported_by}
    elif isinstance(event, Promise.Broken):
        kind = "promise.broken"
        data |= {"at": _time(at), "reason": event.reason, "reported_by": event.reported_by}
    elif isinstance(event, Promise.Renegotiated):
        kind = "promise.renegotiated"
        data |= {"due_at": _time(event.due_at), "reason": event.reason}
    elif isinstance(event, Promise.Released):
        kind = "promise.released"
        data |= {"at": _time(at), "reason": event.reason}
    elif isinstance(event, Promise.Lapsed):
        kind = LAPSED
        data |= {"at": _time(at)}
    else:
        kind = "promise.outcome_corrected"
        data |= {"outcome": event.outcome, "at": _time(at), "reason": event.reason}
    data = {k: v for k, v in data.items() if v is not None}
    return {"type": kind, "timestamp": _time(at), "data": data}


def _person(event: Any, key: str) -> dict[str, Any]:
    data: dict[str, Any] = {"person": key}
    if isinstance(event, Person.TimezoneChanged):
        data["timezone"] = event.timezone
    elif isinstance(event, Person.QuietHoursChanged):
        quiet = None if event.start is None else {"start": event.start, "end": event.end}
        data["quiet_hours"] = quiet
    return {"type": "person.updated", "timestamp": _time(event.at), "data": data}


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
