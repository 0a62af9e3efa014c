"""Leader election for scheduler replicas: one PostgreSQL advisory lock, held on its own
connection; the lock goes with the connection, so a dead leader's lock is freed at once."""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any, Final

import psycopg

from service.settings import Settings

# Any constant works; it only has to be the same in every Troth scheduler.
SCHEDULER_LOCK_KEY: Final = 0x7470_736B
logger = logging.getLogger(__name__)


class Leadership:
    """Whether this process may run the scheduler; SQLite and memory stores always may
    (one process owns them), PostgreSQL replicas take turns on an advisory lock."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        # Advisory locks are per database: the schema keeps separate installations apart.
        self._scope = settings.database.schema or "public"

    @property
    def is_exclusive(self) -> bool:
        """Whether several processes may compete (PostgreSQL)."""
        return self._settings.database.kind == "postgres"

    def acquire(self, stop: threading.Event, poll: float) -> bool:
        """Wait until the lock is ours (True) or `stop` is set (False)."""
        if not self.is_exclusive:
            return True
        while not stop.is_set():
            try:
                if self._try():
                    return True
            except psycopg.Error as error:
                logger.warning("scheduler lock not reachable: %s", error)
                self._drop()
            stop.wait(poll)
        return False

    def is_held(self) -> bool:
        """Whether the lock is still ours (its connection is alive)."""
        if not self.is_exclusive:
            return True
        if self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error:
            self._drop()
            return False
        return True

    def release(self) -> None:
        """Give the lock up (closing the connection would too)."""
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.execute(
                    "SELECT pg_advisory_unlock(%s, hashtext(%s))", (SCHEDULER_LOCK_KEY, self._scope)
                )
            self._drop()

    def _try(self) -> bool:
        if self._conn is None:
            db = self._settings.database
            self._conn = psycopg.connect(
                db.conninfo(), autocommit=True, connect_timeout=self._settings.db_connect_timeout
            )
        row = self._conn.execute(
            "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (SCHEDULER_LOCK_KEY, self._scope)
        ).fetchone()
        return bool(row and row[0])

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
