"""Feeding a view that needs only some kinds of event from the notification log.

Each batch is the next page of the wanted topics, decoded, turned into the view's changes
and written with its tracking position in one transaction, so a crash never applies a
batch twice or loses one. The head is read before the page: a page shorter than the batch
holds every wanted event up to that head (the library's recorders commit notification ids
in order), so the position moves to the head and the next read does not scan the other
events again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from eventsourcing.persistence import ApplicationRecorder, IntegrityError, Mapper

C = TypeVar("C")
C_contra = TypeVar("C_contra", contravariant=True)
logger = logging.getLogger(__name__)


class TrackedView(Protocol[C_contra]):
    """A view store that writes each batch of changes with its tracking position."""

    def position(self) -> int: ...

    def write(self, changes: C_contra, position: int, *, previous: int) -> None: ...


class TopicProjector(Generic[C]):
    """Applies the events of `topics` to a view a batch at a time; safe to run anywhere,
    stop at any moment and run in several processes (a batch written elsewhere first is
    skipped)."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        mapper: Mapper[Any],
        store: TrackedView[C],
        apply: Callable[[Sequence[Any]], C],
        topics: Sequence[str],
        *,
        batch_size: int,
        view: str,
    ) -> None:
        self.recorder = recorder
        self.mapper = mapper
        self.store = store
        self.batch_size = batch_size
        self._apply = apply
        self._topics = list(topics)
        self._view = view

    def step(self) -> int:
        """Apply the next batch; how many events it held (0 also when only the position
        moved, or when the view was at the log's head already)."""
        previous = self.store.position()
        head = self.recorder.max_notification_id() or 0
        if head <= previous:
            return 0
        notifications = self.recorder.select_notifications(
            start=previous + 1, limit=self.batch_size, stop=head, topics=self._topics
        )
        end = notifications[-1].id if len(notifications) == self.batch_size else head
        changes = self._apply([self.mapper.to_domain_event(n) for n in notifications])
        try:
            self.store.write(changes, end, previous=previous)
        except IntegrityError:
            logger.info("%s batch ending at %s already applied elsewhere", self._view, end)
            return 0
        return len(notifications)

    def catch_up(self) -> int:
        """Apply batches until the view reaches the log's head as it was when called;
        returns how many events were applied."""
        head = self.recorder.max_notification_id() or 0
        applied = 0
        while self.store.position() < head:
            applied += self.step()
        return applied
