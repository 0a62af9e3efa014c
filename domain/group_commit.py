"""Group commit: concurrent units of work share one transaction, each keeping its own outcome.

Every insert into the event store takes the store's table lock and waits for one WAL
flush, so one transaction per request caps a process at about a thousand writes a second
however many threads it has. Threads that commit while another commit is under way queue
up; the next thread to lead takes the whole queue and saves it in one transaction. If that
combined transaction fails (two requests wrote the same aggregate version, or the same
receipt key), the leader saves each request alone, so each gets exactly the answer it
would have got by itself. If it fails because the database cannot be reached, the requests
that queued up meanwhile get the same error at once: each would otherwise wait out its own
ten connection attempts behind the others, nothing of theirs was recorded, and the caller
answers them all 503 anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError

from domain.receipts import Receipt

if TYPE_CHECKING:
    from eventsourcing.application import Application

Positions = dict[tuple[UUID, int], int]


@dataclass
class _Request:
    events: Sequence[Any]
    receipts: Sequence[Receipt]
    done: threading.Event = field(default_factory=threading.Event)
    positions: Positions = field(default_factory=dict)
    error: BaseException | None = None


class GroupCommitter:
    """Saves events and receipts for many threads, batching those that arrive together."""

    def __init__(self, application: Application[UUID], max_batch: int = 64) -> None:
        self._application = application
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Request] = []
        self._leading = False

    def commit(self, events: Sequence[Any], receipts: Sequence[Receipt]) -> Positions:
        """Store `events` and `receipts` atomically; returns each event's notification id.

        Raises IntegrityError when this request conflicts with what is stored.
        """
        request = _Request(events, receipts)
        with self._lock:
            self._queue.append(request)
            lead = not self._leading
            if lead:
                self._leading = True
        if lead:
            self._lead()
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.positions

    def _lead(self) -> None:
        while True:
            with self._lock:
                batch, self._queue = (
                    self._queue[: self._max_batch],
                    self._queue[self._max_batch :],
                )
                if not batch:
                    self._leading = False
                    return
            unreachable = self._save(batch)
            if unreachable is not None:
                with self._lock:
                    waiting, self._queue = self._queue, []
                self._finish(waiting, error=unreachable)

    def _save(self, batch: list[_Request]) -> BaseException | None:
        """Save `batch`; the error if the database could not be reached."""
        if len(batch) > 1:
            try:
                positions = self._insert(
                    [e for r in batch for e in r.events], [x for r in batch for x in r.receipts]
                )
            except IntegrityError:
                pass  # someone in the batch conflicts: fall back to one transaction each
            except BaseException as error:
                self._finish(batch, error=error)
                return _unreachable(error)
            else:
                self._finish(batch, positions=positions)
                return None
        for number, request in enumerate(batch):
            try:
                positions = self._insert(request.events, request.receipts)
            except BaseException as error:
                self._finish([request], error=error)
                if _unreachable(error) is not None:
                    self._finish(batch[number + 1 :], error=error)
                    return error
            else:
                self._finish([request], positions=positions)
        return None

    def _insert(self, events: Sequence[Any], receipts: Sequence[Receipt]) -> Positions:
        # The event store's `put`, not `Application.save`: given events rather than
        # aggregates, save only adds a runtime Protocol check per event (a tenth of a batch
        # import's CPU on Python 3.11); the Ledger takes no snapshots and has no save hooks.
        recordings = self._application.events.put(events, receipts=list(receipts))
        return {
            (r.domain_event.originator_id, r.domain_event.originator_version): r.notification.id
            for r in recordings
        }

    @staticmethod
    def _finish(
        batch: list[_Request],
        *,
        positions: Positions | None = None,
        error: BaseException | None = None,
    ) -> None:
        for request in batch:
            if error is not None:
                request.error = error
            elif positions is not None:
                request.positions = {
                    key: positions[key]
                    for event in request.events
                    if (key := (event.originator_id, event.originator_version)) in positions
                }
            request.done.set()


def _unreachable(error: BaseException) -> BaseException | None:
    """`error` if it says the database could not be reached (after the library's retries)."""
    return error if isinstance(error, OperationalError | InterfaceError) else None
