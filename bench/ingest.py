"""Ingestion throughput: signed webhooks into Troth on PostgreSQL, next to a bare Flask app.

Usage: python bench/ingest.py [--seconds 10] [--postgres URL] [--workers 2]
                              [--worker-class gthread --threads 32]

Starts Troth's API under `troth api`'s gunicorn configuration (gevent workers) on a fresh
PostgreSQL schema and, in the same run, `bench/bare_app.py` under the same gunicorn settings (it
parses the same JSON and answers 202). `--worker-class gthread --threads 32` runs both under
threads instead, the set-up before gevent. Both get the same closed-loop load of distinct signed
`promise.made` deliveries for the same duration; prints both rates and their ratio. Then posts
NDJSON batches of 5,000 lines and prints events/s next to the library's own bulk insert rate of
as many events.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent
from psycopg import sql

from bench.load import Request, run_load
from bench.server import add_server_arguments, free_port, gunicorn, server_name
from domain.application import Ledger
from service.migration import migrate
from service.settings import Database, Settings
from service.webhooks.signatures import sign


class LibraryStore(Application[UUID]):
    """A bare library application on the Ledger's tables (the bulk-insert baseline)."""

    name = Ledger.name


def made_body(key: str, now: datetime) -> bytes:
    return json.dumps(
        {
            "type": "promise.made",
            "timestamp": now.isoformat(),
            "data": {
                "promise_id": key,
                "promiser": f"person-{hash(key) % 500}",
                "promisee": "partner",
                "title": "Call when I land",
                "due_at": (now + timedelta(days=1)).isoformat(),
            },
        }
    ).encode()


def signed_requests(tenant: str, secret: str, count: int, prefix: str) -> list[Request]:
    now = datetime.now(UTC)
    requests: list[Request] = []
    for i in range(count):
        body = made_body(f"{prefix}-{i}", now)
        headers = sign(secret, f"msg-{prefix}-{i}", now, body)
        headers["content-type"] = "application/json"
        requests.append((f"/v1/tenants/{tenant}/events", body, headers))
    return requests


def p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else 0.0


def bulk_baseline(settings: Settings, events: int) -> float:
    """The library's own recorder inserting as many events, a thousand per transaction."""
    env = settings.eventsourcing_env(Ledger.name)
    # The library's PostgreSQL recorder on the same table, not Troth's subclass of it.
    del env[Ledger.name.upper() + "_APPLICATION_RECORDER_TOPIC"]
    store = LibraryStore(env=env)
    state = store.mapper.transcoder.encode({"title": "Call when I land", "at": datetime.now(UTC)})
    started = time.perf_counter()
    for _ in range(events // 1000):
        store.recorder.insert_events(
            [
                StoredEvent(originator_id=uuid4(), originator_version=1, topic="x", state=state)
                for _ in range(1000)
            ]
        )
    rate = events / (time.perf_counter() - started)
    store.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--postgres", default="postgresql://root@127.0.0.1:5432/test")
    add_server_arguments(parser, threads=32)
    parser.add_argument("--batches", type=int, default=10)
    args = parser.parse_args()

    base = Database.from_url(args.postgres)
    schema = "bench_" + secrets.token_hex(4)
    url = f"postgresql://{base.user}@{base.host}:{base.port}/{base.dbname}?schema={schema}"
    admin = psycopg.connect(base.conninfo(), autocommit=True)
    admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        settings = Settings(database_url=url)
        migrate(settings)
        ledger = Ledger(env=settings.eventsourcing_env(Ledger.name))
        tenant = ledger.register_tenant("bench", at=datetime.now(UTC))
        ledger.close()
        env = {
            "TROTH_DATABASE_URL": url,
            "TROTH_RATE_LIMIT": "1000000/second",
        }
        count = int(args.seconds * 6000)
        bare_requests = signed_requests("bench", tenant.webhook_secret, count, "bare")
        troth_requests = signed_requests("bench", tenant.webhook_secret, count, "troth")
        load = {"seconds": args.seconds, "processes": 2, "threads": 16}
        with gunicorn("bench.bare_app:create_app()", free_port(), {}, args) as url_b:
            run_load(url_b, bare_requests[:200], seconds=2)
            bare = run_load(url_b, bare_requests[200:], **load)
        with gunicorn("service.app:create_app()", free_port(), env, args) as url_t:
            run_load(url_t, troth_requests[:200], seconds=5)
            troth = run_load(url_t, troth_requests[200:], **load)

            batch_lines = 5000
            now = datetime.now(UTC)
            batches = []
            for b in range(args.batches):
                lines = [
                    json.dumps({"id": f"line-{b}-{i}", **json.loads(made_body(f"b{b}-{i}", now))})
                    for i in range(batch_lines)
                ]
                body = "\n".join(lines).encode()
                headers = sign(tenant.webhook_secret, f"batch-{b}", now, body)
                headers["content-type"] = "application/x-ndjson"
                batches.append(("/v1/tenants/bench/events/batch", body, headers))
            started = time.perf_counter()
            batch_result = run_load(url_t, batches, seconds=600, processes=1, threads=1)
            batch_rate = args.batches * batch_lines / (time.perf_counter() - started)
        baseline_bulk = bulk_baseline(settings, args.batches * batch_lines)

        print(f"{server_name(args)}, same machine (2 cores)")
        print(f"bare Flask (baseline): {bare.rate:8.0f} req/s  statuses {bare.statuses}")
        print(
            f"troth ingest:          {troth.rate:8.0f} req/s  statuses {troth.statuses}  "
            f"p50 {p(troth.latencies, 50):.1f} ms  p99 {p(troth.latencies, 99):.1f} ms"
        )
        print(f"ratio troth/bare:      {troth.rate / bare.rate:8.2f}  (goal >= 0.35)")
        print(
            f"batch import:          {batch_rate:8.0f} events/s  statuses {batch_result.statuses}"
            f"  | library bulk insert (baseline): {baseline_bulk:8.0f} events/s"
        )
    finally:
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        admin.close()


if __name__ == "__main__":
    main()
