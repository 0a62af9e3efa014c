"""The views' stores serve again within seconds of PostgreSQL's return, however long it was
away (the projector reads its position this way every few seconds during an outage)."""

from __future__ import annotations

import time

import psycopg
import pytest

from projections.report_postgres import PostgresReportViewStore
from service.migration import migrate
from service.settings import Database, Settings
from tests.proxy import SeverableProxy

CONNECT_TIMEOUT = 1
OUTAGE_SECONDS = 35
# One failed attempt (the connect timeout) plus the projector's pause between tries, and slack.
BACK_WITHIN_SECONDS = 6


def test_a_view_store_serves_again_soon_after_a_long_outage(isolated_postgres_url: str) -> None:
    migrate(Settings(database_url=isolated_postgres_url))
    db = Database.from_url(isolated_postgres_url)
    proxy = SeverableProxy((db.host, db.port))
    proxied = f"postgresql://{db.user}@127.0.0.1:{proxy.port}/{db.dbname}"
    store = PostgresReportViewStore(
        proxied, schema=db.schema or "public", pool_size=2, connect_timeout=CONNECT_TIMEOUT
    )
    try:
        assert store.position() == 0
        proxy.sever()
        # Asked every second, like the projector, while the database is away: its pool
        # keeps failing to reconnect and, by itself, would wait longer and longer to retry.
        away_until = time.monotonic() + OUTAGE_SECONDS
        while time.monotonic() < away_until:
            with pytest.raises(psycopg.Error):
                store.position()
            time.sleep(1)
        proxy.restore()
        restored = time.monotonic()
        while True:
            try:
                assert store.position() == 0
                break
            except psycopg.Error:
                assert time.monotonic() - restored < BACK_WITHIN_SECONDS
                time.sleep(1)
        assert time.monotonic() - restored < BACK_WITHIN_SECONDS
    finally:
        store.close()
        proxy.close()
