"""Outgoing webhook throughput: deliveries per second through `deliver_due`, next to bare
HTTP POSTs to the same local receiver.

Usage: python bench/deliveries.py [--count N] [--threads T] [--postgres URL]

For each backend (a temp SQLite file; PostgreSQL when reachable, in a schema dropped
afterwards) it queues N messages for one subscription and times one `deliver_due` call that
sends them all (claim, sign, SSRF check, POST, record). The baseline from the same run sends
as many POSTs of the same body to the same receiver with urllib3 on as many threads, over kept-alive
connections (as the sender keeps them), without signing, checks or database.
"""

from __future__ import annotations

import argparse
import multiprocessing
import secrets
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import urllib3
from psycopg import sql

from service.bootstrap import bootstrap
from service.migration import migrate
from service.settings import Database, Settings

BODY = b'{"type":"promise.reminder","timestamp":"2026-01-05T09:00:00.000Z","data":{}}'


class Quiet(BaseHTTPRequestHandler):
    """Reads the body and answers 204."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class Receiver(ThreadingHTTPServer):
    """A receiver with a long accept queue (the default 5 drops SYNs under 8 senders)."""

    request_queue_size = 128
    daemon_threads = True


def serve(port: multiprocessing.Queue[int]) -> None:
    """Run the receiver in its own process, so it does not share the senders' GIL."""
    server = Receiver(("127.0.0.1", 0), Quiet)
    port.put(server.server_address[1])
    server.serve_forever()


def troth_rate(settings: Settings, url: str, count: int, threads: int) -> float:
    settings = Settings(
        database_url=settings.database_url,
        allow_private_targets=True,
        delivery_threads=threads,
    )
    components = bootstrap(settings)
    now = datetime.now(UTC)
    tenant = "bench-" + secrets.token_hex(3)
    ledger = components.ledger
    ledger.register_tenant(tenant, at=now)
    ledger.create_subscription(tenant, url=url, types=["*"], description=None, at=now)
    for i in range(count):
        ledger.queue_message(tenant, message_id=f"m{i}", type="promise.reminder", at=now, data={})
    components.delivery_projector.catch_up()
    started = time.perf_counter()
    sent = components.delivery_worker.deliver_due(now)
    elapsed = time.perf_counter() - started
    components.close()
    assert sent == count, sent
    return count / elapsed


def bare_rate(url: str, count: int, threads: int) -> float:
    host, port = url.removeprefix("http://").split("/")[0].split(":")

    # Kept-alive connections, one per thread at most, as the sender keeps them.
    pool = urllib3.HTTPConnectionPool(host, int(port), retries=False, maxsize=threads)

    def post(_: int) -> int:
        return pool.urlopen("POST", "/hook", body=BODY, retries=False).status

    started = time.perf_counter()
    with pool, ThreadPoolExecutor(threads) as executor:
        statuses = list(executor.map(post, range(count)))
    elapsed = time.perf_counter() - started
    assert statuses == [204] * count
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--postgres", default="postgresql://root@127.0.0.1:5432/test")
    args = parser.parse_args()
    ports: multiprocessing.Queue[int] = multiprocessing.Queue()
    receiver = multiprocessing.Process(target=serve, args=(ports,), daemon=True)
    receiver.start()
    url = f"http://127.0.0.1:{ports.get(timeout=10)}/hook"
    print(f"{args.count} deliveries, {args.threads} threads, receiver {url}")
    print(
        f"baseline: bare urllib3 POSTs            {bare_rate(url, args.count, args.threads):8.0f}/s"
    )
    with tempfile.TemporaryDirectory() as directory:
        settings = Settings(database_url=f"sqlite:///{directory}/bench.db")
        migrate(settings)
        rate = troth_rate(settings, url, args.count, args.threads)
        print(f"SQLite:     deliver_due                  {rate:8.0f}/s")
    base = Database.from_url(args.postgres)
    try:
        conn = psycopg.connect(base.conninfo(), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        print("PostgreSQL: not reachable, skipped")
    else:
        schema = f"bench_{secrets.token_hex(4)}"
        try:
            settings = Settings(database_url=f"{args.postgres}?schema={schema}")
            migrate(settings)
            rate = troth_rate(settings, url, args.count, args.threads)
            print(f"PostgreSQL: deliver_due                  {rate:8.0f}/s")
        finally:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
            conn.close()
    print(
        f"baseline: bare urllib3 POSTs (again)    {bare_rate(url, args.count, args.threads):8.0f}/s"
    )
    receiver.terminate()


if __name__ == "__main__":
    main()
