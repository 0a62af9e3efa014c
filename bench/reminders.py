"""Reminder lateness: N reminders due in the same minute, dispatched and delivered to a local
HTTP receiver by the scheduler, next to a light load of 100 in the same run (the baseline).

Usage: python bench/reminders.py [--reminders N] [--postgres [URL]]

A fresh store (a temp SQLite file, or a PostgreSQL schema of its own with `--postgres`)
gets one tenant subscribed to a receiver (a local HTTP server process of its own), and N
promises whose one-hour reminders fall evenly within one minute that starts after the setup.
The scheduler runs as in `troth scheduler` (APScheduler, 1 s ticks, the dispatcher and the
delivery worker) on the real clock. Lateness is the time from a reminder's fire time to its
arrival at the receiver ("received"), and to its message being recorded in the outbox
("queued"; negative: queued ahead, as the dispatcher does one tick early). Target: every
reminder arrives, p99 of received lateness within 2 s.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path

from bench.stores import DEFAULT_POSTGRES, postgres_store, sqlite_store
from domain.message import Message
from domain.promise import PromiseTerms
from service.bootstrap import bootstrap, build_due_work
from service.scheduler import Scheduler
from service.settings import Settings

LEAD = timedelta(hours=1)
WINDOW = timedelta(minutes=1)
BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0)


def serve_arrivals(path: str, port: Connection) -> None:
    """The receiver, in a process of its own (so it takes no CPU time from the scheduler's
    interpreter): answers 204 and appends `webhook-id arrival-time fire-time` to `path`."""
    lock = threading.Lock()
    with open(path, "a", buffering=1) as out:  # one flushed line per arrival

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                arrived = time.time()
                fired = datetime.fromisoformat(json.loads(body)["timestamp"]).timestamp()
                with lock:
                    out.write(f"{self.headers['webhook-id']} {arrived} {fired}\n")
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        port.send(server.server_address[1])
        server.serve_forever()


class Arrivals:
    """What the receiver process recorded: the first arrival of each message id."""

    def __init__(self, path: Path, port: int) -> None:
        self.path = path
        self.url = f"http://127.0.0.1:{port}/hooks"

    @property
    def first(self) -> dict[str, tuple[float, float]]:
        found: dict[str, tuple[float, float]] = {}
        for line in self.path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:
                found.setdefault(parts[0], (float(parts[1]), float(parts[2])))
        return found


@contextmanager
def receiving() -> Iterator[Arrivals]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "arrivals.txt"
        path.touch()
        ours, theirs = multiprocessing.Pipe()
        process = multiprocessing.get_context("spawn").Process(
            target=serve_arrivals, args=(str(path), theirs), daemon=True
        )
        process.start()
        try:
            yield Arrivals(path, ours.recv())
        finally:
            process.terminate()
            process.join(10)


def run(settings: Settings, count: int, tenant: str, setup_seconds: float) -> dict[str, object]:
    """Make `count` reminders due within one minute after the setup; return their lateness."""
    settings = replace(settings, allow_private_targets=True)
    components = bootstrap(settings)
    store = build_due_work(settings)
    ledger = components.ledger
    with receiving() as arrivals:
        now = datetime.now(UTC)
        ledger.register_tenant(tenant, at=now)
        ledger.create_subscription(tenant, url=arrivals.url, types=["*"], description="", at=now)
        start = now + timedelta(seconds=setup_seconds)
        step = WINDOW / count
        for first in range(0, count, 500):
            uow = ledger.unit_of_work()
            for i in range(first, min(first + 500, count)):
                fire_at = start + i * step
                uow.make_promise(
                    PromiseTerms(
                        tenant=tenant, key=f"p{i}", promiser=f"person-{i % 200}", title="Call",
                        made_at=now, due_at=fire_at + LEAD, reminders=(LEAD,),
                    )
                )  # fmt: skip
            uow.commit()
        scheduler = Scheduler(components, store)
        scheduler.dispatcher.projector.catch_up()  # a running scheduler is always caught up
        components.delivery_projector.catch_up()
        setup_left = (start - datetime.now(UTC)).total_seconds()
        if setup_left < 1:
            msg = f"setup took too long: raise --setup-seconds above {setup_seconds}"
            raise SystemExit(msg)
        scheduler.start()
        deadline = time.monotonic() + setup_left + WINDOW.total_seconds() + 60
        while len(arrivals.first) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        scheduler.stop(timeout=120)  # the delivery job may still be working off a backlog
        received = [arrived - fired for arrived, fired in arrivals.first.values()]
    queued = _queued_lateness(components.ledger.recorder, components.ledger.mapper)
    store.close()
    components.close()
    return {"count": count, "arrived": len(received), "received": received, "queued": queued}


def _queued_lateness(recorder: object, mapper: object) -> list[float]:
    lateness = []
    start = 1
    while True:
        page = recorder.select_notifications(  # type: ignore[attr-defined]
            start=start, limit=1000, topics=[Message.Queued.TOPIC]
        )
        for notification in page:
            event = mapper.to_domain_event(notification)  # type: ignore[attr-defined]
            lateness.append((event.timestamp - event.at).total_seconds())
        if len(page) < 1000:
            return lateness
        start = page[-1].id + 1


def describe(label: str, result: dict[str, object]) -> None:
    """Print arrivals and the lateness distribution."""
    print(f"{label}: {result['arrived']}/{result['count']} reminders arrived")
    for stage in ("queued", "received"):
        values = sorted(result[stage])  # type: ignore[call-overload]
        if not values:
            print(f"  {stage:8}: none")
            continue
        q = statistics.quantiles(values, n=100, method="inclusive")
        buckets = "  ".join(
            f"<={b:g}s {sum(v <= b for v in values) / len(values):6.1%}" for b in BUCKETS
        )
        print(
            f"  {stage:8}: p50 {q[49]:.3f} s  p90 {q[89]:.3f} s  p99 {q[98]:.3f} s  "
            f"max {values[-1]:.3f} s  |  {buckets}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument("--setup-seconds", type=float, default=90.0)
    parser.add_argument("--postgres", nargs="?", const=DEFAULT_POSTGRES, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    stores = [("SQLite", sqlite_store)]
    if args.postgres:
        stores.append(("PostgreSQL", lambda: postgres_store(args.postgres)))
    for name, store in stores:
        with store() as settings:
            baseline = run(settings, 100, "baseline", setup_seconds=10)
            figure = run(settings, args.reminders, "bench", setup_seconds=args.setup_seconds)
        print(f"== {name}: {args.reminders:,} reminders due within one minute, 1 s ticks")
        describe("baseline (100 in the minute)", baseline)
        describe(f"figure ({args.reminders:,} in the minute)", figure)


if __name__ == "__main__":
    main()
