"""Projector catch-up rate: events/s from position 0 to the head, next to reading the log alone.

Usage: python bench/projector.py [--events N] [--postgres [URL]]

Fills a fresh store (a temp SQLite file; also a PostgreSQL schema of its own with
`--postgres`) with about N events of a realistic mix: a few tenants, about 200 people, promises
made and mostly kept (some late), some broken, released, renegotiated or lapsed, lapses
superseded by late reports, a few disputed outcomes corrected, and time zones set and changed.
Then times `Projector.catch_up()` on fresh views from position 0 to the head, and, as the
baseline from the same run, reading and decoding the same notifications in pages of 1,000
(`select_notifications` + `to_domain_event`): the floor of any projection.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta

from bench.history import (
    Step,
    break_,
    dispute,
    keep,
    lapse,
    make,
    move,
    record,
    release,
    renegotiate,
)
from bench.stores import DEFAULT_POSTGRES, each_store
from domain.application import Ledger
from domain.promise import PromiseTerms
from projections.projector import BATCH_SIZE
from service.bootstrap import bootstrap
from service.settings import Settings

T0 = datetime(2025, 1, 6, 9, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
TENANTS = {"acme": 100, "globex": 60, "initech": 40}  # people per tenant
CATEGORIES = ("work", "family", "health", "money", "")
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney")
MOVED_TO = "Pacific/Auckland"  # not in ZONES, so every move is a change
EVENTS_PER_TENANT = 3  # registered, API key issued, webhook secret added


def workload(events: int, seed: int = 7) -> list[Step]:
    """About `events` events' worth of use cases over a year, in no particular order."""
    # A seeded generator so every run records the same history; nothing here is a secret.
    rng = random.Random(seed)  # noqa: S311
    steps: list[Step] = []
    count = len(TENANTS) * EVENTS_PER_TENANT
    people = [(t, f"{t}-person-{i}") for t, size in TENANTS.items() for i in range(size)]
    for tenant, person in people:
        if rng.random() < 0.3:
            steps.append(move(tenant, person, rng.choice(ZONES), T0))
            count += 2  # registered, time zone changed
    for tenant, person in rng.sample(people, 5):
        steps.append(move(tenant, person, MOVED_TO, T0 + timedelta(days=rng.randint(120, 240))))
        count += 2
    i = 0
    while count < events:
        tenant, promiser = rng.choice(people)
        others = [p for t, p in people if t == tenant and p != promiser]
        made = T0 + timedelta(minutes=rng.randint(0, 365 * 24 * 60))
        terms = PromiseTerms(
            tenant=tenant,
            key=f"p{i}",
            promiser=promiser,
            promisee=rng.choice(others) if rng.random() < 0.7 else None,
            category=rng.choice(CATEGORIES) or None,
            title="Send the quarterly numbers",
            made_at=made,
            due_at=made + timedelta(hours=rng.randint(4, 7 * 24)),
        )
        i += 1
        fate = _fate(rng, terms)
        steps += [make(terms), *fate]
        count += 1 + len(fate)
    return steps


def _fate(rng: random.Random, terms: PromiseTerms) -> list[Step]:
    """What happens to a promise after it is made (one event per step)."""
    tenant, key, made, due = terms.tenant, terms.key, terms.made_at, terms.due_at
    assert due is not None
    roll = rng.random()
    if roll < 0.08:
        return []  # still open
    if roll < 0.13:
        new_due = due + timedelta(days=rng.randint(1, 5))
        kept = new_due - timedelta(hours=rng.randint(1, 3))
        return [renegotiate(tenant, key, new_due, made + (due - made) / 2), keep(tenant, key, kept)]
    if roll < 0.20:
        return [break_(tenant, key, due + timedelta(hours=rng.randint(1, 48)))]
    if roll < 0.24:
        return [release(tenant, key, made + (due - made) / 3)]
    if roll < 0.30:
        noticed = due + 2 * DAY
        if rng.random() < 0.2:
            # What really happened, reported after the lapse: it replaces the lapse.
            return [
                lapse(tenant, key, noticed),
                keep(tenant, key, due + HOUR, reported_at=noticed + DAY),
            ]
        return [lapse(tenant, key, noticed)]
    is_late = rng.random() < 0.15
    at = due + timedelta(hours=rng.randint(1, 24)) if is_late else due - HOUR
    at = max(at, made + timedelta(minutes=5))
    if rng.random() < 0.02:
        return [keep(tenant, key, at), dispute(tenant, key, at, reported_at=at + 3 * DAY)]
    return [keep(tenant, key, at)]


def fill(settings: Settings, events: int) -> int:
    """Record the workload; returns the log's head."""
    ledger = Ledger(env=settings.eventsourcing_env(Ledger.name))
    try:
        for tenant in TENANTS:
            ledger.register_tenant(tenant, at=T0 - DAY)
        record(ledger, workload(events))
        return ledger.head_position()
    finally:
        ledger.close()


def read_rate(settings: Settings) -> float:
    """Events/s of reading and decoding the whole log in projector-sized pages."""
    ledger = Ledger(env=settings.eventsourcing_env(Ledger.name))
    try:
        started = time.perf_counter()
        decoded = 0
        start = 1
        while True:
            page = ledger.recorder.select_notifications(start=start, limit=BATCH_SIZE)
            if not page:
                break
            decoded += len([ledger.mapper.to_domain_event(n) for n in page])
            start = page[-1].id + 1
        return decoded / (time.perf_counter() - started)
    finally:
        ledger.close()


def run(name: str, settings: Settings, events: int) -> None:
    head = fill(settings, events)
    # The first read warms the caches for both measurements; the faster of two is the floor.
    baseline = max(read_rate(settings), read_rate(settings))
    components = bootstrap(settings)
    try:
        started = time.perf_counter()
        applied = components.projector.catch_up()
        rate = applied / (time.perf_counter() - started)
        position = components.projector.position()
    finally:
        components.close()
    print(
        f"{name:9s} projector catch-up: {rate:8.0f} events/s | read + decode (baseline): "
        f"{baseline:8.0f} events/s | ratio {rate / baseline:.2f} | "
        f"{applied} events, views at {position} of head {head}: "
        f"{'OK' if position == head else 'MISMATCH'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--postgres", nargs="?", const=DEFAULT_POSTGRES, default=None)
    args = parser.parse_args()
    for name, settings in each_store(args.postgres):
        run(name, settings, args.events)


if __name__ == "__main__":
    main()
