"""The projector: feeds the report views from the notification log, a batch at a time.

Each batch is read as one page of notifications, decoded, applied in memory and written with
its tracking position in one transaction, so after a crash the next run starts exactly
after the last batch written: every event affects the views once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from eventsourcing.persistence import ApplicationRecorder, IntegrityError, Mapper

from projections.reports import ReportProjection
from projections.views import REPORTS_VIEW, ReportViewStore

BATCH_SIZE: Final = 10_000
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """Where a catch-up stands after a batch."""

    position: int
    head: int
    applied: int
    seconds: float


class Projector:
    """Applies new events to the report views; safe to stop and restart at any moment."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        mapper: Mapper[Any],
        store: ReportViewStore,
        *,
        batch_size: int = BATCH_SIZE,
        view: str = REPORTS_VIEW,
    ) -> None:
        self.recorder = recorder
        self.mapper = mapper
        self.store = store
        self.batch_size = batch_size
        self.view = view
        self.projection = ReportProjection(store)

    def position(self) -> int:
        """The notification id of the last event applied."""
        return self.store.position(self.view)

    def head(self) -> int:
        """The notification id of the newest event in the log."""
        return self.recorder.max_notification_id() or 0

    def step(self) -> int:
        """Apply the next batch, if any; returns how many events it held."""
        previous = self.store.position(self.view)
        start = previous + 1
        notifications = self.recorder.select_notifications(start=start, limit=self.batch_size)
        if not notifications:
            return 0
        events = [self.mapper.to_domain_event(n) for n in notifications]
        positions = [n.id for n in notifications]
        changes = self.projection.apply(events, positions, previous=previous, settle=_nothing)
        try:
            self.store.write(changes, positions[-1], self.view, previous=previous)
        except IntegrityError:
            # Another projector wrote this batch first; nothing of ours was written.
            self.projection.forget()
            logger.warning("batch ending at %s already applied elsewhere", positions[-1])
            return 0
        except BaseException:
            # Written or not, the kept rows may not be the stored ones.
            self.projection.forget()
            raise
        return len(notifications)

    def catch_up(self, on_batch: Callable[[Progress], None] | None = None) -> int:
        """Apply batches until the log's head; returns how many events were applied."""
        started = time.perf_counter()
        applied = 0
        while True:
            count = self.step()
            if not count:
                return applied
            applied += count
            if on_batch is not None:
                on_batch(
                    Progress(self.position(), self.head(), applied, time.perf_counter() - started)
                )

    def run(
        self,
        stop: threading.Event,
        wait_for_events: Callable[[float], object],
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        """Follow the log until `stop` is set; `wait_for_events` sleeps until woken or timeout.

        `stop` is checked between batches, so stopping finishes the batch in hand and never
        waits for a whole catch-up; `on_batch` gets each batch's event count and seconds.
        """
        while not stop.is_set():
            started = time.perf_counter()
            try:
                count = self.step()
            except Exception:
                # The database may be away; keep trying instead of dying (logged, not raised).
                logger.exception("projector batch failed; retrying")
                stop.wait(1.0)
                continue
            if count:
                if on_batch is not None:
                    on_batch(count, time.perf_counter() - started)
                continue
            wait_for_events(0.5)

    def wait_for(self, position: int, timeout: float) -> bool:
        """Wait until the views include `position`; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.position() < position:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(0.02, remaining))
        return True


def _nothing() -> None:
    return None
