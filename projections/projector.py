"""The projector: feeds the report views from the notification log, a batch at a time.

Each batch is read as one page of notifications, decoded, applied in memory and written with
its tracking position in one transaction, so after a crash the next run starts exactly
after the last batch written: every event affects the views once.

With `pipelined`, a catch-up writes each batch, and reads the next page of the log, in threads of
their own while a batch is applied (at most one batch is being written, and they commit in
order): the database works on the batches before and after while Python works on one.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from eventsourcing.persistence import ApplicationRecorder, IntegrityError, Mapper, Notification

from projections.reports import ReportProjection
from projections.views import REPORTS_VIEW, ReportViewStore, ViewChanges

# A subject or week row changed by several events of a batch is frozen and written once per
# batch: at 20,000 events instead of 10,000 a catch-up wrote fewer rows and ran an eighth
# faster, and a batch still commits in about a second. A follower's batches are as small as
# what arrived meanwhile, so this only bounds catch-ups.
BATCH_SIZE: Final = 20_000
# Objects left since the last collection above which pipelines end by moving them to the
# oldest generation (see `_collector_paused`): about half a full batch's worth.
_LONG_LIVED: Final = 100_000
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """Where a catch-up stands after a batch."""

    position: int
    head: int
    applied: int
    seconds: float


@dataclass(frozen=True)
class _Batch:
    """One batch's changes, to be written over the views at `previous`."""

    changes: ViewChanges
    previous: int
    position: int
    events: int
    started: float


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
        pipelined: bool = False,
    ) -> None:
        self.recorder = recorder
        self.mapper = mapper
        self.store = store
        self.batch_size = batch_size
        self.view = view
        self.pipelined = pipelined
        self.projection = ReportProjection(store)

    def position(self) -> int:
        """The notification id of the last event applied."""
        return self.store.position(self.view)

    def head(self) -> int:
        """The notification id of the newest event in the log."""
        return self.recorder.max_notification_id() or 0

    def step(self) -> int:
        """Apply and write the next batch, if any; returns how many events it held."""
        applied = 0

        def written(batch: _Batch) -> None:
            nonlocal applied
            applied = batch.events

        try:
            with self._pipeline(written, threaded=False) as pipeline:
                pipeline.advance()
        except IntegrityError as error:
            logger.warning("batch not written: %s (another projector?)", error)
        return applied

    def catch_up(self, on_batch: Callable[[Progress], None] | None = None) -> int:
        """Apply batches until the log's head; returns how many events were applied."""
        started = time.perf_counter()
        applied = 0

        def written(batch: _Batch) -> None:
            nonlocal applied
            applied += batch.events
            if on_batch is not None:
                seconds = time.perf_counter() - started
                on_batch(Progress(batch.position, self.head(), applied, seconds))

        try:
            with self._pipeline(written) as pipeline:
                while pipeline.advance():
                    pass
        except IntegrityError as error:
            logger.warning("stopped catching up: %s (another projector?)", error)
        return applied

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

        def written(batch: _Batch) -> None:
            if on_batch is not None:
                on_batch(batch.events, time.perf_counter() - batch.started)

        while not stop.is_set():
            try:
                with self._pipeline(written) as pipeline:
                    while not stop.is_set() and pipeline.advance():
                        pass
            except IntegrityError as error:
                logger.warning("batch not written: %s (another projector?)", error)
            except Exception:
                # The database may be away; keep trying instead of dying (logged, not raised).
                logger.exception("projector batch failed; retrying")
                stop.wait(1.0)
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

    def _read(self, previous: int) -> Sequence[Notification]:
        """The page of the log after position `previous`."""
        return self.recorder.select_notifications(start=previous + 1, limit=self.batch_size)

    def _apply(
        self, previous: int, notifications: Sequence[Notification], settle: Callable[[], None]
    ) -> _Batch:
        """The batch of `notifications` (the page after position `previous`), applied in
        memory. `settle` waits until every earlier batch is stored, for the reads that need
        them there (see `ReportProjection.apply`)."""
        started = time.perf_counter()
        events = [self.mapper.to_domain_event(n) for n in notifications]
        positions = [n.id for n in notifications]
        changes = self.projection.apply(events, positions, previous=previous, settle=settle)
        return _Batch(changes, previous, positions[-1], len(events), started)

    def _write(self, batch: _Batch) -> None:
        """Write the batch; if this raises, the rows kept by the projection must be forgotten:
        the write was refused (another projector moved the position first) or failed, written
        or not, so the stored rows may not be those the batch made."""
        self.store.write(batch.changes, batch.position, self.view, previous=batch.previous)

    @contextmanager
    def _pipeline(
        self, written: Callable[[_Batch], None], *, threaded: bool | None = None
    ) -> Iterator[_Pipeline]:
        """Batches from the stored position on, in threads of their own if `threaded`
        (default: if the projector is `pipelined`); on any failure the kept rows are dropped."""
        pipeline = _Pipeline(self, written, self.pipelined if threaded is None else threaded)
        try:
            with _collector_paused():
                yield pipeline
            pipeline.settle()
        except BaseException:
            pipeline.abandon()
            raise
        finally:
            pipeline.close()


class _Pipeline:
    """Batches from the views' stored position on, each written (in the background if
    `threaded`) once the one before is stored; `written` is told of each in order."""

    def __init__(
        self, projector: Projector, written: Callable[[_Batch], None], threaded: bool
    ) -> None:
        self._projector = projector
        self._written = written
        self._previous = projector.position()
        self._writer = ThreadPoolExecutor(1, "troth-view-writer") if threaded else None
        self._reader = ThreadPoolExecutor(1, "troth-log-reader") if threaded else None
        self._pending: tuple[_Batch, Future[None]] | None = None
        self._next_page: Future[Sequence[Notification]] | None = None

    def advance(self) -> bool:
        """Apply the next batch and start writing it; False if none is left."""
        projector = self._projector
        if self._next_page is None:
            notifications = projector._read(self._previous)
        else:
            notifications, self._next_page = self._next_page.result(), None
        if not notifications:
            self.settle()
            return False
        if self._reader is not None and len(notifications) == projector.batch_size:
            # A full page: more probably waits, and reading it is mostly the database's work.
            self._next_page = self._reader.submit(projector._read, notifications[-1].id)
        batch = projector._apply(self._previous, notifications, self.settle)
        self.settle()
        if self._writer is None:
            projector._write(batch)
            self._written(batch)
        else:
            self._pending = (batch, self._writer.submit(projector._write, batch))
        self._previous = batch.position
        return True

    def settle(self) -> None:
        """Wait until the batch being written is stored; raises what its write raised."""
        if self._pending is None:
            return
        batch, writing = self._pending
        self._pending = None
        writing.result()
        self._written(batch)

    def abandon(self) -> None:
        """After a failure: let the batch being written end, whatever its fate, and forget
        the kept rows (the next pipeline starts from the stored position with none)."""
        if self._pending is not None:
            batch, writing = self._pending
            self._pending = None
            error = writing.exception()
            if error is None:
                self._written(batch)
            else:
                logger.warning("batch ending at %s not written either: %r", batch.position, error)
        # Here, not in the writer thread, which must not empty the cache under a batch
        # being applied (that batch is dropped anyway: it was applied over the failed one).
        self._projector.projection.forget()

    def close(self) -> None:
        """Stop the threads (with nothing left to write; a page read ahead is dropped)."""
        for pool in (self._writer, self._reader):
            if pool is not None:
                pool.shutdown()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while batches are applied and written.

    A batch holds a few hundred thousand objects until it is written (events, rows, tallies)
    and the rows of recent batches stay in memory: the collector, triggered by the many
    allocations, went through all of them again and again, a third of a catch-up's time.
    Batches make next to no reference cycles (a few hundred objects in a 60,000-event
    catch-up; the rest is freed by reference counting), and the collector runs again as
    usual once the projector has caught up, for the whole process.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        # What many batches left alive (the kept rows, tallies and streak windows) is
        # long-lived by now, yet all of it sits in the youngest generation, and the first
        # collection after `enable` went through all of it (a twentieth of a 200,000-event
        # catch-up). Freezing and unfreezing moves it to the oldest generation (list splices,
        # no traversal), where the next full collection looks at it as usual. Only then: a
        # follower's small batches leave the young generation to its usual collections.
        if gc.get_count()[0] > _LONG_LIVED:
            gc.freeze()
            gc.unfreeze()
        if was_enabled:
            gc.enable()
