"""Live lag on PostgreSQL: from an event's 202 answer until the report shows it.

Usage: python bench/lag.py [--seconds 20] [--rate 20] [--postgres URL]

On a fresh PostgreSQL schema, starts `troth projector` (a process of its own, woken by
LISTEN/NOTIFY) and `troth api`'s gunicorn, then posts signed webhook deliveries at a steady
rate (`promise.made` for a new promise, then `promise.kept` for it, alternating over 50 people)
and measures for each:

- views: from the 202 answer until the projector's tracking row holds the event's position
  (polled every millisecond on a connection of its own), i.e. until any report read shows it;
- `?after=`: from the 202 answer until `GET .../report?after=<position>` answers 200, the
  read-your-writes path a client uses (the server polls the position every 20 ms while it waits).

As the baseline from the same run it times `GET .../report` without `?after=`, the floor of
the `?after=` path. Prints p50/p90/p99 of each next to the goal (p50 <= 50 ms).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from bench.server import BIN, ROOT, add_server_arguments, free_port, gunicorn, server_name
from bench.stores import DEFAULT_POSTGRES, postgres_store
from domain.application import Ledger
from projections.views import REPORTS_VIEW
from service.settings import Settings
from service.webhooks.signatures import sign

TENANT = "acme"
PEOPLE = 50
GOAL_P50_MS = 50.0
POLL_SECONDS = 0.001


class Visibility:
    """Watches the projector's tracking row; records when each awaited position shows."""

    def __init__(self, settings: Settings) -> None:
        db = settings.database
        self._conn = psycopg.connect(db.conninfo(), autocommit=True)
        self._query = sql.SQL("SELECT position FROM {} WHERE view = %s").format(
            sql.Identifier(db.schema or "public", "troth_tracking")
        )
        self._awaited: list[tuple[int, float]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.lags: list[float] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def await_position(self, position: int, answered: float) -> None:
        """Time how long after `answered` the views reach `position`."""
        with self._lock:
            self._awaited.append((position, answered))

    def _run(self) -> None:
        while not self._stop.is_set():
            row = self._conn.execute(self._query, [REPORTS_VIEW], prepare=True).fetchone()
            seen = time.perf_counter()
            position = row[0] if row else 0
            with self._lock:
                shown = [a for a in self._awaited if a[0] <= position]
                self._awaited = [a for a in self._awaited if a[0] > position]
            self.lags.extend(seen - answered for _, answered in shown)
            time.sleep(POLL_SECONDS)

    def __enter__(self) -> Visibility:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        deadline = time.monotonic() + 5
        while self._awaited and time.monotonic() < deadline:
            time.sleep(0.01)
        self._stop.set()
        self._thread.join()
        self._conn.close()


@contextmanager
def projector(url: str) -> Iterator[None]:
    """`troth projector` following the store, stopped with SIGTERM afterwards."""
    process = subprocess.Popen(
        [str(BIN / "troth"), "projector"],
        cwd=ROOT,
        env={**os.environ, "TROTH_DATABASE_URL": url, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def envelope(i: int, now: datetime) -> bytes:
    """Event i: even ones make promise i/2, odd ones report it kept."""
    key = f"p{i // 2}"
    if i % 2 == 0:
        data = {
            "promise_id": key,
            "promiser": f"person-{(i // 2) % PEOPLE}",
            "title": "Call when I land",
            "due_at": (now + timedelta(hours=1)).isoformat(),
        }
        kind = "promise.made"
    else:
        data, kind = {"promise_id": key}, "promise.kept"
    return json.dumps({"type": kind, "timestamp": now.isoformat(), "data": data}).encode()


def ms(values: list[float], q: int) -> float:
    """The q-th percentile in milliseconds."""
    return statistics.quantiles(values, n=100)[q - 1] * 1000


def line(name: str, values: list[float]) -> str:
    return (
        f"{name:44s} p50 {ms(values, 50):6.1f}  p90 {ms(values, 90):6.1f}  "
        f"p99 {ms(values, 99):6.1f} ms  ({len(values)} events)"
    )


class Client:
    """One keep-alive connection per thread."""

    def __init__(self, base: str) -> None:
        self._port = int(base.rsplit(":", 1)[1])
        self._local = threading.local()

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection("127.0.0.1", self._port)
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()


def run(settings: Settings, url: str, args: argparse.Namespace) -> None:
    ledger = Ledger(env=settings.eventsourcing_env(Ledger.name))
    try:
        credentials = ledger.register_tenant(TENANT, at=datetime.now(UTC))
    finally:
        ledger.close()
    auth = {"Authorization": f"Bearer {credentials.api_key}"}
    env = {"TROTH_DATABASE_URL": url, "TROTH_RATE_LIMIT": "1000000/second"}
    after_lags: list[float] = []
    plain: list[float] = []
    statuses: dict[int, int] = {}
    with (
        projector(url),
        gunicorn("service.app:create_app()", free_port(), env, args) as base,
        Visibility(settings) as views,
        ThreadPoolExecutor(max_workers=8) as readers,
    ):
        client = Client(base)

        def read_after(person: str, position: int, answered: float) -> None:
            path = f"/v1/tenants/{TENANT}/people/{person}/report?after={position}"
            status, _ = client.request("GET", path, None, auth)
            if status == 200:
                after_lags.append(time.perf_counter() - answered)
            started = time.perf_counter()
            status, _ = client.request("GET", path.split("?", maxsplit=1)[0], None, auth)
            if status == 200:
                plain.append(time.perf_counter() - started)

        interval = 1 / args.rate
        count = int(args.seconds * args.rate) + 20
        warm_up = 20
        started = time.perf_counter()
        for i in range(count):
            pause = started + i * interval - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            now = datetime.now(UTC)
            body = envelope(i, now)
            headers = sign(credentials.webhook_secret, f"msg-{i}", now, body)
            headers["content-type"] = "application/json"
            status, answer = client.request("POST", f"/v1/tenants/{TENANT}/events", body, headers)
            answered = time.perf_counter()
            statuses[status] = statuses.get(status, 0) + 1
            if status != 202 or i < warm_up:
                continue
            position = json.loads(answer)["position"]
            views.await_position(position, answered)
            readers.submit(read_after, f"person-{(i // 2) % PEOPLE}", position, answered)
    print(
        f"{args.rate:.0f} events/s for {args.seconds:.0f} s (first {warm_up} untimed); "
        f"`troth projector` + {server_name(args)} "
        f"on the same 2 cores; POST statuses {statuses}"
    )
    print(line("202 -> views hold it (any report shows it)", views.lags))
    print(line("202 -> GET report?after=<position> answered", after_lags))
    print(line("GET report without ?after= (baseline)", plain))
    verdict = "met" if ms(views.lags, 50) <= GOAL_P50_MS else "NOT met"
    print(f"goal: p50 <= {GOAL_P50_MS:.0f} ms from accepted to visible: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=20, help="events per second")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    add_server_arguments(parser, threads=4)
    args = parser.parse_args()
    with postgres_store(args.postgres) as settings:
        url = settings.database_url
        run(settings, url, args)


if __name__ == "__main__":
    main()
