"""The projector as a background thread of a process (`troth serve`, `troth projector`)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Final

from projections.projector import Projector
from service.metrics import Metrics
from service.settings import Settings
from service.wakeups import event_waiter

LAG_REFRESH_SECONDS: Final = 1.0
logger = logging.getLogger(__name__)


class FollowingProjector:
    """Keeps the report views following the event log until stopped."""

    def __init__(
        self, settings: Settings, projector: Projector, metrics: Metrics | None = None
    ) -> None:
        self._projector = projector
        self._metrics = metrics or Metrics()
        self._lag_read_at = 0.0
        self._wait = event_waiter(settings, projector.recorder)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="troth-projector", daemon=True)

    def start(self) -> None:
        """Start following in the background."""
        self._thread.start()

    def run_until_interrupted(self) -> None:
        """Follow in the calling thread until KeyboardInterrupt (SIGINT, or SIGTERM mapped
        to it), then return once the batch in hand is written."""
        self.start()
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def is_running(self) -> bool:
        """Whether the following thread is alive."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in hand and stop."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._wait.close()

    def _run(self) -> None:
        logger.info("projector following the log from position %s", self._projector.position())
        self._projector.run(self._stop, self._wait, self._observe)
        logger.info("projector stopped at position %s", self._projector.position())

    def _observe(self, events: int, seconds: float) -> None:
        self._metrics.observe_batch(events, seconds)
        # Reading the head costs a query: during a catch-up at most once a second, and
        # after a short batch (caught up, probably) so an idle projector shows its last lag.
        now = time.monotonic()
        if events < self._projector.batch_size or now - self._lag_read_at >= LAG_REFRESH_SECONDS:
            self._lag_read_at = now
            self._metrics.observe_projector(self._projector.position(), self._projector.head())
