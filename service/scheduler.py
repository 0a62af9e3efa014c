"""The scheduler process: APScheduler (UTC) running the dispatcher, the occurrence maker
and the webhook delivery worker, only while this replica holds the scheduler lock
(`troth scheduler`, or a thread of `troth serve`). Never in web workers: two schedulers
would fire everything twice as often."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from projections.due_work import DueWorkStore
from service.bootstrap import Components
from service.leadership import Leadership
from service.reminders import Dispatcher, Occurrences

STANDBY_POLL_SECONDS: Final = 1.0
logger = logging.getLogger(__name__)


class Scheduler:
    """The scheduled jobs of one process; `run` takes turns with other replicas."""

    def __init__(
        self,
        components: Components,
        store: DueWorkStore,
        *,
        leadership: Leadership | None = None,
        extra_jobs: dict[str, Callable[[], object]] | None = None,
    ) -> None:
        settings = components.settings
        self.store = store
        self.leadership = leadership or Leadership(settings)
        # Messages are queued one tick ahead, stamped with their fire time (see `tick`).
        self.dispatcher = Dispatcher(
            components.ledger,
            store,
            components.clock,
            lookahead=timedelta(milliseconds=settings.scheduler_tick_ms),
            metrics=components.metrics,
        )
        self.occurrences = Occurrences(
            components.ledger,
            store,
            components.clock,
            timedelta(days=settings.commitment_horizon_days),
        )
        self._tick = settings.scheduler_tick_ms / 1000
        self._occurrence_interval = settings.occurrence_interval_s
        worker, clock = components.delivery_worker, components.clock
        # Outgoing webhooks are sent by the same leader: one sender per installation.
        self._extra_jobs = {"deliver": lambda: worker.deliver_due(clock()), **(extra_jobs or {})}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.is_leading = threading.Event()

    def run(self) -> None:
        """Wait for the lock, run the jobs while it is held, wait again if it is lost;
        return when stopped (the lock released, the running job finished)."""
        while not self._stop.is_set():
            if not self.leadership.acquire(self._stop, STANDBY_POLL_SECONDS):
                break
            logger.info("scheduler leading")
            jobs = self._jobs()
            jobs.start()
            self.is_leading.set()
            try:
                while not self._stop.wait(STANDBY_POLL_SECONDS):
                    if not self.leadership.is_held():
                        logger.warning("scheduler lock lost; standing by")
                        break
            finally:
                self.is_leading.clear()
                jobs.shutdown(wait=True)
                self.leadership.release()
        logger.info("scheduler stopped")

    def start(self) -> None:
        """Run in a background thread (the embedded `troth serve`)."""
        self._thread = threading.Thread(target=self.run, name="troth-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the running job; release the lock."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)

    def _jobs(self) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=4)},
            # A late or overlapping run is merged into one: each run does all that is due.
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        scheduler.add_job(
            self._guarded(self.dispatcher.tick),
            "interval",
            seconds=self._tick,
            id="dispatch",
            name="dispatch",
            next_run_time=datetime.now(UTC),
        )
        scheduler.add_job(
            self._guarded(self.occurrences.schedule),
            "interval",
            seconds=self._occurrence_interval,
            id="occurrences",
            name="occurrences",
            next_run_time=datetime.now(UTC),
        )
        for name, job in self._extra_jobs.items():
            scheduler.add_job(
                self._guarded(job),
                "interval",
                seconds=self._tick,
                id=name,
                name=name,
                next_run_time=datetime.now(UTC),
            )
        return scheduler

    @staticmethod
    def _guarded(job: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            try:
                job()
            except Exception:
                # The database may be away for a moment; the next run tries again.
                logger.exception("scheduled job %s failed", getattr(job, "__qualname__", job))

        return run
