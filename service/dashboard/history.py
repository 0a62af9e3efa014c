"""The recent history of a person's promises, event by event, as people read it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from domain.application import Ledger
from domain.promise import Promise
from projections.views import PromiseRow

HISTORY_LIMIT: Final = 50


@dataclass(frozen=True)
class HistoryItem:
    """One recorded event of a promise: what happened, when, and the words given with it."""

    at: datetime
    recorded_at: datetime
    promise_id: str
    title: str
    promisee: str | None
    category: str | None
    kind: str  # made | kept | kept_late | broken | renegotiated | released | lapsed | corrected
    outcome: str | None = None  # what a correction changed the outcome to
    due_at: datetime | None = None  # the due time a promise was made or renegotiated with
    note: str | None = None


def recent_history(
    ledger: Ledger, promises: Iterable[PromiseRow], *, until: datetime, limit: int = HISTORY_LIMIT
) -> list[HistoryItem]:
    """The latest `limit` events (by business time, at or before `until`), newest first.

    Only the `limit` promises with the latest activity are read: the newest `limit` events
    all belong to them, except renegotiations of older open promises, which the views do
    not time and which the list may therefore miss.
    """
    rows = sorted(
        (row for row in promises if row.made_at <= until),
        key=lambda row: _activity(row, until),
        reverse=True,
    )[:limit]
    by_id = {row.aggregate_id: row for row in rows}
    items = [
        item
        for aggregate_id, events in ledger.event_streams(list(by_id)).items()
        for event in events
        if (item := _item(by_id[aggregate_id], event)) is not None and item.at <= until
    ]
    items.sort(key=lambda item: (item.at, item.recorded_at), reverse=True)
    return items[:limit]


def _activity(row: PromiseRow, until: datetime) -> datetime:
    if row.outcome_at is not None and row.outcome_at <= until:
        return max(row.outcome_at, row.made_at)
    return row.made_at


def _item(row: PromiseRow, event: Any) -> HistoryItem | None:
    common = {
        "recorded_at": event.timestamp,
        "promise_id": row.key,
        "title": row.title,
        "promisee": row.promisee,
        "category": row.category,
    }
    if isinstance(event, Promise.Made):
        return HistoryItem(at=event.made_at, kind="made", due_at=event.due_at, **common)
    if isinstance(event, Promise.Kept):
        kind = "kept_late" if event.is_late else "kept"
        return HistoryItem(at=event.at, kind=kind, note=event.note, **common)
    if isinstance(event, Promise.Broken):
        return HistoryItem(at=event.at, kind="broken", note=event.reason, **common)
    if isinstance(event, Promise.Renegotiated):
        return HistoryItem(
            at=event.at, kind="renegotiated", due_at=event.due_at, note=event.reason, **common
        )
    if isinstance(event, Promise.Released):
        return HistoryItem(at=event.at, kind="released", note=event.reason, **common)
    if isinstance(event, Promise.Lapsed):
        return HistoryItem(at=event.at, kind="lapsed", **common)
    if isinstance(event, Promise.OutcomeCorrected):
        outcome = "kept_late" if event.outcome == "kept" and event.is_late else event.outcome
        return HistoryItem(
            at=event.at, kind="corrected", outcome=outcome, note=event.reason, **common
        )
    return None
