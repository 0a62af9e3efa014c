"""Write-model throughput: Ledger use cases per second, next to raw library inserts.

Usage: python bench/ledger_writes.py [--count N] [--postgres URL]

For each backend (a temp SQLite file; PostgreSQL when reachable) it times
`make_promise` + `keep_promise` through the Ledger (load, rules, save, one transaction each),
and, as the baseline from the same run, inserting the same number of pre-encoded stored events
one transaction each straight through the library's recorder (no domain logic).
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import psycopg
from eventsourcing.persistence import StoredEvent
from psycopg import sql

from domain.application import Ledger
from domain.promise import PromiseTerms
from service.migration import migrate
from service.settings import Database, Settings

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)


def ledger_rate(settings: Settings, count: int) -> float:
    ledger = Ledger(env=settings.eventsourcing_env(Ledger.name))
    tenant = "bench-" + secrets.token_hex(3)
    ledger.register_tenant(tenant, at=T0)
    started = time.perf_counter()
    for i in range(count // 2):
        ledger.make_promise(
            PromiseTerms(
                tenant=tenant,
                key=f"p{i}",
                promiser="alex",
                promisee="sam",
                title="Call when I land",
                made_at=T0,
                due_at=T0 + timedelta(days=1),
            )
        )
        ledger.keep_promise(tenant, f"p{i}", at=T0 + timedelta(hours=3))
    elapsed = time.perf_counter() - started
    ledger.close()
    return (count // 2) * 2 / elapsed


def raw_insert_rate(settings: Settings, count: int) -> float:
    ledger = Ledger(env=settings.eventsourcing_env(Ledger.name))
    state = ledger.mapper.transcoder.encode({"title": "Call when I land", "at": T0})
    started = time.perf_counter()
    for _ in range(count):
        ledger.recorder.insert_events(
            [StoredEvent(originator_id=uuid4(), originator_version=1, topic="x", state=state)]
        )
    elapsed = time.perf_counter() - started
    ledger.close()
    return count / elapsed


def run(name: str, settings: Settings, count: int) -> None:
    migrate(settings)
    baseline = raw_insert_rate(settings, count)
    rate = ledger_rate(settings, count)
    print(
        f"{name:9s} ledger writes: {rate:8.0f} events/s | raw library inserts (baseline): "
        f"{baseline:8.0f} events/s | ratio {rate / baseline:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--postgres", default="postgresql://root@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run("sqlite", Settings(database_url=f"sqlite:///{folder}/bench.db"), args.count)
    base = Database.from_url(args.postgres)
    schema = "bench_" + secrets.token_hex(4)
    try:
        conn = psycopg.connect(base.conninfo(), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        print(f"postgres  skipped: {error}")
        return
    with conn:
        try:
            url = f"postgresql://{base.user}@{base.host}:{base.port}/{base.dbname}?schema={schema}"
            run("postgres", Settings(database_url=url), args.count)
        finally:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


if __name__ == "__main__":
    main()
