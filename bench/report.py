"""Report latency over HTTP with a large store, next to a bare Flask endpoint on the same server.

Usage: python bench/report.py [--events 1000000] [--seconds 10] [--postgres URL]
                              [--schema NAME] [--keep] [--connections 4]
                              [--worker-class gthread --threads 4] [--paced [RATE]]

Fills a fresh PostgreSQL schema with `--events` events (default 1,000,000): thousands of people
with short histories, one person (`long`) with 100,000 outcomes over four years and one
(`short`) with 100, all in one tenant. Runs the projector to the head (timed), then starts
gunicorn serving `service.app:create_app()` with `troth api`'s configuration (gevent workers)
and, under the same gunicorn settings,
`bench/bare_app.py` (a GET that answers a fixed JSON body with no database). Each gets the same
closed-loop keep-alive load of GET requests for the same duration: the bare endpoint, then the
report of `short`, then the report of `long`. Prints p50/p90/p99, mean and req/s side by side,
and the goal (p99 <= 10 ms, not growing with history).

Closed loop, the server is saturated: on two cores shared with the load generator and
PostgreSQL, a request's latency is then mostly its wait behind the other connections'. With
`--paced`, the same three then get a steady `RATE` requests per second instead (by default
half the slowest report's closed-loop rate), each request's latency counted from when it was
due: what a caller sees while the server keeps up.

`--keep` leaves the schema in place and prints its name; `--schema NAME` reuses such a schema
(already filled and projected) so repeated runs skip the fill.
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import time
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from bench.history import Step, break_, keep, make, move, record
from bench.load import LoadResult, Request, run_load
from bench.server import add_server_arguments, free_port, gunicorn, server_name
from bench.stores import DEFAULT_POSTGRES
from domain.application import Ledger
from domain.credentials import Scope
from domain.promise import PromiseTerms
from projections.projector import Progress
from projections.report_postgres import PostgresReportViewStore
from service.bootstrap import bootstrap
from service.migration import migrate
from service.settings import Database, Settings

TENANT = "acme"
SPAN = timedelta(days=4 * 365)
LONG, SHORT = ("long", 100_000), ("short", 100)
STILL_OPEN = 3
PER_PERSON = 100  # outcomes of each of the many other people
GOAL_P99_MS = 10.0


def person_steps(rng: random.Random, person: str, outcomes: int, start: datetime) -> list[Step]:
    """`outcomes` promises of one person spread over the span, each settled, plus a few open."""
    steps = [move(TENANT, person, "Europe/Berlin", start)]
    gap = SPAN / (outcomes + STILL_OPEN)
    for i in range(outcomes + STILL_OPEN):
        made = start + gap * i
        # Each outcome comes before the person's next promise is made, so every outcome
        # reaches the projector in time order even though a unit of work records its events
        # grouped by promise (an outcome out of order replays the subject's whole streak).
        due = made + gap * rng.uniform(0.2, 0.6)
        terms = PromiseTerms(
            tenant=TENANT,
            key=f"{person}-{i}",
            promiser=person,
            promisee=rng.choice(("sam", "kim", "lee")),
            category=rng.choice(("work", "family", "health")),
            title="Send the quarterly numbers",
            made_at=made,
            due_at=due,
        )
        steps.append(make(terms))
        if i >= outcomes:
            continue
        if rng.random() < 0.15:
            steps.append(break_(TENANT, terms.key, due + gap * 0.2))
        else:
            steps.append(keep(TENANT, terms.key, due - gap * 0.1))
    return steps


def fill(settings: Settings, events: int) -> str:
    """Record the history; returns an API key with reports:read."""
    # A seeded generator so every run records the same history; nothing here is a secret.
    rng = random.Random(7)  # noqa: S311
    # Histories end an hour before the run, so the reports' trend and 30-day windows are full.
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - SPAN - timedelta(hours=1)
    ledger = Ledger(env=settings.eventsourcing_env(Ledger.name))
    try:
        credentials = ledger.register_tenant(TENANT, at=start - timedelta(days=1))
        long_outcomes = min(LONG[1], max(events // 10, 1))
        steps = person_steps(rng, LONG[0], long_outcomes, start)
        steps += person_steps(rng, SHORT[0], SHORT[1], start)
        planned = 3 + len(steps) + 2  # the tenant's events, one per step, two registrations
        others = 0
        while planned < events:
            person = f"person-{others:05d}"
            others += 1
            more = person_steps(rng, person, PER_PERSON, start)
            steps.extend(more)
            planned += len(more) + 1
        started = time.perf_counter()
        record(ledger, steps, per_commit=1000)
        head = ledger.head_position()
        seconds = time.perf_counter() - started
        print(
            f"filled: log head at {head:,} ({long_outcomes:,} outcomes of {LONG[0]!r}, "
            f"{SHORT[1]} of {SHORT[0]!r}, {others:,} others with {PER_PERSON}) "
            f"in {seconds:.0f} s ({head / seconds:,.0f} positions/s)",
            flush=True,
        )
        return credentials.api_key
    finally:
        ledger.close()


def issue_key(settings: Settings) -> str:
    """A fresh reports:read key for a schema filled by an earlier run."""
    ledger = Ledger(env=settings.eventsourcing_env(Ledger.name))
    try:
        scopes = frozenset({Scope.REPORTS_READ})
        return ledger.issue_api_key(TENANT, scopes=scopes, at=datetime.now(UTC)).api_key
    finally:
        ledger.close()


def project(settings: Settings) -> None:
    """Run the projector to the head, printing the time it took; then gather the views'
    planner statistics, as autovacuum does soon after a bulk load (this machine's test server
    runs with autovacuum off)."""
    components = bootstrap(settings)
    last = [time.perf_counter()]

    def progress(p: Progress) -> None:
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            print(f"  projector at {p.position:,} of {p.head:,} ({p.seconds:.0f} s)", flush=True)

    try:
        started = time.perf_counter()
        applied = components.projector.catch_up(progress)
        seconds = time.perf_counter() - started
        print(
            f"projector catch-up: {applied:,} events in {seconds:.0f} s "
            f"({applied / max(seconds, 1e-9):,.0f} events/s)",
            flush=True,
        )
        assert isinstance(components.views, PostgresReportViewStore)
        components.views.analyze()
    finally:
        components.close()


def ms(values: list[float], q: int) -> float:
    """The q-th percentile in milliseconds."""
    return statistics.quantiles(values, n=100)[q - 1] * 1000


def line(name: str, result: LoadResult) -> str:
    values = result.latencies
    return (
        f"{name:34s} p50 {ms(values, 50):6.2f}  p90 {ms(values, 90):6.2f}  "
        f"p99 {ms(values, 99):6.2f}  mean {statistics.fmean(values) * 1000:6.2f} ms  "
        f"{result.rate:7.0f} req/s  statuses {result.statuses}"
    )


def measure(
    base: str,
    path: str,
    headers: dict[str, str],
    args: argparse.Namespace,
    rate: float | None = None,
) -> LoadResult:
    """Warm up, then load `path` for the configured time and concurrency: closed loop, or
    `rate` requests per second on a schedule (one connection per process)."""
    # Ample requests for the duration; the same tuple repeated costs nothing.
    requests: list[Request] = [(path, b"", headers)] * int(args.seconds * 20_000)
    processes = 2 if args.connections > 1 else 1
    threads = max(args.connections // processes, 1)
    if rate is not None:
        processes, threads = args.connections, 1
    run_load(base, requests[:2000], seconds=2, processes=processes, threads=threads)
    return run_load(
        base, requests, seconds=args.seconds, processes=processes, threads=threads, rate=rate
    )


def one_round(
    url: str, api_key: str, args: argparse.Namespace, rate: float | None = None
) -> list[tuple[str, LoadResult]]:
    """The bare endpoint, then the reports of `short` and `long`, each under the same load."""
    auth = {"Authorization": f"Bearer {api_key}"}
    env = {"TROTH_DATABASE_URL": url, "TROTH_RATE_LIMIT": "1000000/second"}
    report = f"/v1/tenants/{TENANT}/people/{{}}/report"
    results: list[tuple[str, LoadResult]] = []
    with gunicorn("bench.bare_app:create_app()", free_port(), {}, args) as base:
        results.append(("bare Flask GET (baseline)", measure(base, "/report", {}, args, rate)))
    with gunicorn("service.app:create_app()", free_port(), env, args) as base:
        for person, outcomes in (SHORT, LONG):
            name = f"troth report, {outcomes:,} outcomes"
            results.append((name, measure(base, report.format(person), auth, args, rate)))
    return results


def verdict(results: list[tuple[str, LoadResult]]) -> str:
    """Each line, then whether every report's p99 is within the goal."""
    for name, result in results:
        print(line(name, result))
    worst = max(ms(r.latencies, 99) for name, r in results if name.startswith("troth"))
    return "met" if worst <= GOAL_P99_MS else "NOT met"


def serve_and_measure(url: str, api_key: str, args: argparse.Namespace) -> None:
    results = [r for _ in range(args.rounds) for r in one_round(url, api_key, args)]
    print(
        f"{args.connections} keep-alive connections, {args.seconds:.0f} s each; "
        f"{server_name(args)}; same machine (2 cores)"
    )
    met = verdict(results)
    print(f"goal: report p99 <= {GOAL_P99_MS:.0f} ms at any history length: {met}")
    if args.paced is None:
        return
    # Below saturation: a steady load the server can keep up with, by default half of what
    # the slowest report answered closed loop, so a request queues only behind chance bursts.
    capacity = min(r.rate for name, r in results if name.startswith("troth"))
    rate = args.paced or round(capacity / 2, -1)
    paced = one_round(url, api_key, args, rate)
    chosen = "as asked" if args.paced else "half the slowest report's closed-loop rate"
    print(
        f"paced: {rate:.0f} req/s offered on {args.connections} connections ({chosen}), "
        "latency from when each request was due"
    )
    met = verdict(paced)
    print(f"paced: report p99 <= {GOAL_P99_MS:.0f} ms at {rate:.0f} req/s: {met}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--schema", default=None, help="reuse a filled schema (see --keep)")
    parser.add_argument("--keep", action="store_true", help="leave the schema for --schema")
    parser.add_argument("--connections", type=int, default=4)
    add_server_arguments(parser, threads=4)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--paced",
        type=float,
        nargs="?",
        const=0,
        default=None,
        help="then a paced run at this many req/s (none given: half the reports' capacity)",
    )
    args = parser.parse_args()

    base = Database.from_url(args.postgres)
    schema = args.schema or "bench_" + secrets.token_hex(4)
    url = f"postgresql://{base.user}@{base.host}:{base.port}/{base.dbname}?schema={schema}"
    admin = psycopg.connect(base.conninfo(), autocommit=True)
    try:
        if args.schema is None:
            admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            settings = Settings(database_url=url)
            migrate(settings)
            api_key = fill(settings, args.events)
            project(settings)
        else:
            api_key = issue_key(Settings(database_url=url))
        if args.keep:
            print(f"kept: reuse with --schema {schema}")
        serve_and_measure(url, api_key, args)
    finally:
        if not args.keep:
            admin.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )
        admin.close()


if __name__ == "__main__":
    main()
