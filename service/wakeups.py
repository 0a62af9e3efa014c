"""Waking the projector when events arrive: LISTEN/NOTIFY on PostgreSQL, polling elsewhere."""

from __future__ import annotations

import logging
import time
from typing import Any, Final

import psycopg
from eventsourcing.persistence import ApplicationRecorder
from psycopg import sql

from service.settings import Settings

POLL_SECONDS: Final = 0.05
logger = logging.getLogger(__name__)


class EventWaiter:
    """Sleeps until new events may exist or a timeout passes (polling, the fallback)."""

    def __call__(self, timeout: float) -> bool:
        """Wait; True when woken by a notification, False after a poll interval."""
        time.sleep(min(timeout, POLL_SECONDS))
        return False

    def close(self) -> None:
        """Release the listening connection, if any."""


class PostgresEventWaiter(EventWaiter):
    """Waits on the event store's NOTIFY channel (the recorder notifies on every insert)."""

    def __init__(self, settings: Settings, channel: str) -> None:
        self._settings = settings
        self._channel = channel
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def __call__(self, timeout: float) -> bool:
        # Polling stays the fallback: a lost connection only means waiting for the timeout.
        try:
            if self._conn is None or self._conn.closed:
                db = self._settings.database
                self._conn = psycopg.connect(db.conninfo(), autocommit=True, connect_timeout=5)
                self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                return True
        except psycopg.Error:
            logger.warning("LISTEN connection lost; polling until it returns")
            self.close()
            time.sleep(min(timeout, 1.0))
        return False

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def event_waiter(settings: Settings, recorder: ApplicationRecorder) -> EventWaiter:
    """The waiter for the configured backend."""
    channel = getattr(recorder, "channel_name", None)
    if settings.database.kind != "postgres" or channel is None:
        return EventWaiter()
    return PostgresEventWaiter(settings, channel)
