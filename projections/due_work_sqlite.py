"""The due-work store on SQLite: its own connection to the event store's file."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar

from projections.due_work_sql import SQLDueWorkStore

T = TypeVar("T")
BUSY_TIMEOUT: Final = 10.0


class SQLiteDueWorkStore(SQLDueWorkStore):
    """The due-work tables in the SQLite file at `path`."""

    placeholder = "?"

    def __init__(self, path: str) -> None:
        self._lock = threading.RLock()
        # Autocommit mode: every transaction is an explicit BEGIN ... COMMIT.
        self._conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        self._conn.execute("PRAGMA journal_mode = WAL")

    def _transaction(self, work: Callable[[Any], T]) -> T:
        with self._lock:
            cursor = self._conn.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                result = work(cursor)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
            return result

    def close(self) -> None:
        with self._lock:
            self._conn.close()
