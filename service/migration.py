"""Schema creation: the only code that runs DDL, serialised across processes."""

from __future__ import annotations

from domain.application import Ledger
from service.settings import Settings

# Any constant works; it only has to be the same in every Troth process.
MIGRATION_LOCK_KEY = 0x7470_6D67


def migrate(settings: Settings) -> None:
    """Create the schema, the event store and every view table if they do not exist.

    On PostgreSQL the work runs under an advisory lock, because concurrent
    `CREATE TABLE IF NOT EXISTS` statements can still collide in the catalogue.
    """
    db = settings.database
    if db.kind == "postgres":
        import psycopg
        from psycopg import sql

        with psycopg.connect(db.conninfo(), autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
            try:
                if db.schema:
                    conn.execute(
                        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(db.schema))
                    )
                _create_tables(settings)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
        return
    directory = settings.sqlite_directory()
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    _create_tables(settings)


def _create_tables(settings: Settings) -> None:
    from service.bootstrap import build_delivery_store, build_due_work, build_views

    ledger = Ledger(env=settings.eventsourcing_env(Ledger.name, create_tables=True))
    ledger.close()
    views = build_views(settings)
    try:
        views.create_tables()
    finally:
        views.close()
    due_work = build_due_work(settings)
    try:
        due_work.create_tables()
    finally:
        due_work.close()
    deliveries = build_delivery_store(settings)
    try:
        deliveries.create_tables()
    finally:
        deliveries.close()
