"""Fresh, migrated stores for benchmarks, and a fast way to fill them through the Ledger.

A temp SQLite file, or a PostgreSQL schema of its own that is dropped afterwards, so a
benchmark never reads or disturbs anyone else's data.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from domain.application import Ledger
from domain.unit_of_work import Change, UnitOfWork
from service.migration import migrate
from service.settings import Database, Settings

DEFAULT_POSTGRES = "postgresql://root@127.0.0.1:5432/test"
Command = Callable[[UnitOfWork], Change]


@dataclass(frozen=True)
class Step:
    """One use case to record: when it is reported, and the promise it needs loaded (if any)."""

    reported_at: datetime
    tenant: str
    promise: str | None
    command: Command


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


def record(ledger: Ledger, steps: Sequence[Step], per_commit: int = 500) -> None:
    """Run `steps` in report order, `per_commit` use cases per unit of work.

    This is the batch-ingestion path (promises prefetched in one query, one transaction per
    unit), so filling a store takes seconds where one transaction per use case takes minutes.
    """
    ordered = sorted(steps, key=lambda s: s.reported_at)
    for start in range(0, len(ordered), per_commit):
        chunk = ordered[start : start + per_commit]
        uow = ledger.unit_of_work()
        wanted: dict[str, set[str]] = {}
        for step in chunk:
            if step.promise is not None:
                wanted.setdefault(step.tenant, set()).add(step.promise)
        for tenant, keys in wanted.items():
            uow.prefetch_promises(tenant, keys)
        for step in chunk:
            step.command(uow)
        uow.commit()
