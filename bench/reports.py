"""Report latency: the current report from the views, next to the same report from scratch.

Usage: python bench/reports.py [--promises N] [--calls N] [--postgres [URL]]

Fills a fresh store (a temp SQLite file; also a PostgreSQL schema of its own with
`--postgres`) with one person's two years of promises (default 2,000: mostly kept, some
late, broken, released or lapsed, the last few still open) to three promisees in three
categories, and projects them. Then times `ReportReader.report(key, now=...)`, which reads the
subject's running sums, streak state and week rows, and, as the baseline from the same run,
the same report with `as_of=now`, which reads every outcome and replays them. Prints p50/p95
of each and whether both paths give the same figures.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bench.history import Step, break_, keep, lapse, make, move, record, release
from bench.stores import DEFAULT_POSTGRES, each_store
from domain.application import Ledger
from domain.promise import PromiseTerms
from projections.report_reader import Report
from projections.views import SubjectKey
from service.bootstrap import bootstrap
from service.settings import Settings

T0 = datetime(2024, 1, 1, 8, tzinfo=UTC)
SPAN = timedelta(days=730)
NOW = T0 + SPAN + timedelta(days=7)  # after every outcome, so the current path applies
TENANT = "acme"
PERSON = "alex"
PROMISEES = ("sam", "kim", "lee")
CATEGORIES = ("work", "family", "health")
STILL_OPEN = 5
WARM_UP = 10


def workload(promises: int, seed: int = 11) -> list[Step]:
    """One person's promises spread evenly over two years, with their outcomes."""
    # A seeded generator so every run records the same history; nothing here is a secret.
    rng = random.Random(seed)  # noqa: S311
    steps = [move(TENANT, PERSON, "Europe/Berlin", T0)]
    for i in range(promises):
        made = T0 + SPAN * i / promises
        due = made + timedelta(hours=rng.randint(6, 96))
        terms = PromiseTerms(
            tenant=TENANT,
            key=f"p{i}",
            promiser=PERSON,
            promisee=rng.choice(PROMISEES),
            category=rng.choice(CATEGORIES),
            title="Send the quarterly numbers",
            made_at=made,
            due_at=due,
        )
        steps.append(make(terms))
        roll = rng.random()
        if i >= promises - STILL_OPEN:
            continue
        if roll < 0.10:
            steps.append(break_(TENANT, terms.key, due + timedelta(hours=rng.randint(1, 24))))
        elif roll < 0.14:
            steps.append(release(TENANT, terms.key, made + timedelta(hours=1)))
        elif roll < 0.19:
            steps.append(lapse(TENANT, terms.key, due + timedelta(days=2)))
        elif roll < 0.30:
            steps.append(keep(TENANT, terms.key, due + timedelta(hours=3)))
        else:
            steps.append(keep(TENANT, terms.key, due - timedelta(hours=1)))
    return steps


def latencies(call: Callable[[], object], calls: int) -> list[float]:
    """Seconds per call, after a few untimed calls to warm caches and prepared statements."""
    for _ in range(WARM_UP):
        call()
    timings = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return timings


def ms(timings: list[float], q: int) -> float:
    """The q-th percentile in milliseconds."""
    return statistics.quantiles(timings, n=100)[q - 1] * 1000


def same_figures(a: Report, b: Report) -> bool:
    """Whether two reports agree on score, counts, streaks and trend (floats to 1e-9)."""
    return (
        math.isclose(a.score.value, b.score.value, abs_tol=1e-9)
        and a.counts == b.counts
        and a.streaks == b.streaks
        and len(a.trend.weeks) == len(b.trend.weeks)
        and all(
            replace(x, score=0.0) == replace(y, score=0.0)
            and math.isclose(x.score, y.score, abs_tol=1e-9)
            for x, y in zip(a.trend.weeks, b.trend.weeks, strict=True)
        )
    )


def run(name: str, settings: Settings, promises: int, calls: int) -> None:
    ledger = Ledger(env=settings.eventsourcing_env(Ledger.name))
    try:
        ledger.register_tenant(TENANT, at=T0 - timedelta(days=1))
        record(ledger, workload(promises))
    finally:
        ledger.close()
    components = bootstrap(settings)
    try:
        components.projector.catch_up()
        reader, key = components.reader, SubjectKey(TENANT, "promiser", PERSON)
        current, replayed = reader.report(key, now=NOW), reader.report(key, now=NOW, as_of=NOW)
        assert current is not None
        assert replayed is not None
        fast = latencies(lambda: reader.report(key, now=NOW), calls)
        slow = latencies(lambda: reader.report(key, now=NOW, as_of=NOW), calls)
    finally:
        components.close()
    outcomes = current.counts.made - current.counts.open
    print(
        f"{name:9s} current report: p50 {ms(fast, 50):6.2f} ms  p95 {ms(fast, 95):6.2f} ms | "
        f"from scratch, as_of=now (baseline): p50 {ms(slow, 50):6.2f} ms  "
        f"p95 {ms(slow, 95):6.2f} ms | p50 ratio {ms(fast, 50) / ms(slow, 50):.2f} | "
        f"{outcomes} outcomes, {calls} calls each | same figures: "
        f"{'yes' if same_figures(current, replayed) else 'NO'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--promises", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--postgres", nargs="?", const=DEFAULT_POSTGRES, default=None)
    args = parser.parse_args()
    for name, settings in each_store(args.postgres):
        run(name, settings, args.promises, args.calls)


if __name__ == "__main__":
    main()
