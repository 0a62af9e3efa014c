"""Rate-limit counters kept in each process, for flask-limiter."""

from __future__ import annotations

import threading
from typing import Final

from limits.storage import MemoryStorage

SWEEP_SECONDS: Final = 1.0


class SweptMemoryStorage(MemoryStorage):
    """limits' in-memory counters, with expired ones swept at most once a second.

    The parent sweeps 10 ms after a hit and starts a new timer thread whenever the last
    one has run, so a busy worker starts up to a hundred threads a second (a tenth of the
    CPU of webhook ingestion, measured). Reading a counter already drops it once expired,
    so the sweep only frees memory and can run far less often.
    """

    STORAGE_SCHEME: Final = ["troth-memory"]  # type: ignore[misc]

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 (overrides the private hook)
        if not self.timer.is_alive():
            sweep = self._MemoryStorage__expire_events  # type: ignore[attr-defined]
            self.timer = threading.Timer(SWEEP_SECONDS, sweep)
            self.timer.daemon = True
            self.timer.start()
