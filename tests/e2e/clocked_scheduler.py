"""`troth scheduler` as a separate process whose business clock is read from a file, so the
end-to-end tests can move time (never the wall clock) and kill the process for real.

Usage: python -m tests.e2e.clocked_scheduler CLOCK_FILE  (settings from TROTH_* as usual)
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from datetime import datetime
from pathlib import Path

from service.bootstrap import bootstrap, build_due_work
from service.scheduler import Scheduler
from service.settings import Settings


def main() -> None:
    clock_file = Path(sys.argv[1])

    def clock() -> datetime:
        return datetime.fromisoformat(clock_file.read_text().strip())

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    settings = Settings.from_env(os.environ)
    components = bootstrap(settings, clock=clock)
    store = build_due_work(settings)
    scheduler = Scheduler(components, store)
    signal.signal(signal.SIGTERM, lambda *_: scheduler.stop())
    try:
        scheduler.run()
    finally:
        store.close()
        components.close()


if __name__ == "__main__":
    main()
