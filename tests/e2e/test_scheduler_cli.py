"""`troth scheduler`: runs until SIGTERM and exits cleanly; on PostgreSQL a second replica
stands by and takes the lock when the first is stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from service.migration import migrate
from service.settings import Settings

TROTH = str(Path(sys.executable).parent / "troth")


def start(url: str, log: Path) -> subprocess.Popen[str]:
    with log.open("a") as stream:
        return subprocess.Popen(
            [TROTH, "scheduler"],
            env={**os.environ, "TROTH_DATABASE_URL": url},
            stdout=stream,
            stderr=stream,
            text=True,
        )


def wait_for_line(log: Path, text: str, count: int = 1, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while log.read_text().count(text) < count:
        assert time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.1)


def test_the_scheduler_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/troth.db"
    migrate(Settings(database_url=url))
    log = tmp_path / "scheduler.log"
    process = start(url, log)
    wait_for_line(log, "scheduler leading")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    assert "Troth scheduler stopped" in log.read_text()


def test_a_stopped_leader_hands_the_lock_to_the_standby(
    isolated_postgres_url: str, tmp_path: Path
) -> None:
    migrate(Settings(database_url=isolated_postgres_url))
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = start(isolated_postgres_url, first_log)
    wait_for_line(first_log, "scheduler leading")
    second = start(isolated_postgres_url, second_log)
    wait_for_line(second_log, "Troth scheduler on")
    time.sleep(2)  # several standby polls: the lock is taken
    assert "scheduler leading" not in second_log.read_text()
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=15) == 0
    wait_for_line(second_log, "scheduler leading", timeout=10)
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=15) == 0
