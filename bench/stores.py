"""Fresh, migrated stores for benchmarks: nothing else's data is read or disturbed.

A temp SQLite file, or a PostgreSQL schema of its own that is dropped afterwards.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from service.migration import migrate
from service.settings import Database, Settings

DEFAULT_POSTGRES = "postgresql://root@127.0.0.1:5432/test"


@contextmanager
def sqlite_store() -> Iterator[Settings]:
    """Settings of a migrated SQLite file in a temp directory, removed afterwards."""
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(database_url=f"sqlite:///{folder}/bench.db")
        migrate(settings)
        yield settings


@contextmanager
def postgres_store(url: str) -> Iterator[Settings]:
    """Settings of a migrated schema of its own on `url`'s database, dropped afterwards."""
    base = Database.from_url(url)
    schema = "bench_" + secrets.token_hex(4)
    with psycopg.connect(base.conninfo(), autocommit=True, connect_timeout=3) as conn:
        try:
            settings = Settings(
                database_url=(
                    f"postgresql://{base.user}@{base.host}:{base.port}/{base.dbname}"
                    f"?schema={schema}"
                )
            )
            migrate(settings)
            yield settings
        finally:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def each_store(postgres: str | None) -> Iterator[tuple[str, Settings]]:
    """A fresh SQLite store, then, if `postgres` is given, a fresh schema there: each with
    its name, each removed once the caller has gone on to the next."""
    with sqlite_store() as settings:
        yield "sqlite", settings
    if postgres is not None:
        with postgres_store(postgres) as settings:
            yield "postgres", settings
