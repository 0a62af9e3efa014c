"""Waking the projector when events arrive: LISTEN/NOTIFY on PostgreSQL, polling elsewhere."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from eventsourcing.persistence import ApplicationRecorder

from service.settings import Settings

POLL_SECONDS: Final = 0.05
logger = logging.getLogger(__name__)


def event_waiter(settings: Settings, recorder: ApplicationRecorder) -> Callable[[float], None]:
    """A function that sleeps until new events may exist, or `timeout` seconds pass."""
    db = settings.database
    channel = getattr(recorder, "channel_name", None)
    if db.kind != "postgres" or channel is None:
        return lambda timeout: time.sleep(min(timeout, POLL_SECONDS))

    import psycopg
    from psycopg import sql

    state: dict[str, psycopg.Connection[tuple[object, ...]] | None] = {"conn": None}

    def wait(timeout: float) -> None:
        # Polling stays the fallback: a lost connection only means waiting for the timeout.
        try:
            conn = state["conn"]
            if conn is None or conn.closed:
                conn = psycopg.connect(db.conninfo(), autocommit=True, connect_timeout=5)
                if db.schema:
                    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(db.schema)))
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                state["conn"] = conn
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                break
        except psycopg.Error:
            logger.warning("LISTEN connection lost; polling until it returns")
            state["conn"] = None
            time.sleep(min(timeout, 1.0))

    return wait
