"""Crash safety on PostgreSQL: a `troth projector` SIGKILLed again and again during catch-up of
50,000 events leaves exactly the views a clean rebuild of the same log gives."""

from __future__ import annotations

import itertools
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import psycopg
import pytest
from psycopg import sql

from bench.history import Command, Step, record
from domain.application import Ledger
from domain.policy import ScoringPolicy
from domain.promise import PromiseStatus, PromiseTerms
from projections.projector import Projector
from projections.report_postgres import PostgresReportViewStore
from service.bootstrap import Components, bootstrap
from service.migration import migrate
from service.settings import Database, Settings
from tests.clock import T0
from tests.stores import open_ledger

TROTH: Final = Path(sys.executable).parent / "troth"
EVENTS: Final = 50_000
SEED: Final = 20260302
STEPS_PER_COMMIT: Final = 500
DAY: Final = timedelta(days=1)
HOUR: Final = timedelta(hours=1)
TENANTS: Final = ("acme", "globex")
PEOPLE_PER_TENANT: Final = 150
ZONES: Final = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney")
MOVED_TO: Final = "Pacific/Auckland"  # in no tenant's ZONES, so every move is a change
VIEW_TABLES: Final = frozenset(
    {
        "troth_tracking",
        "troth_promises",
        "troth_outcomes",
        "troth_subjects",
        "troth_weeks",
        "troth_people",
        "troth_tenant_views",
    }
)
MIN_KILLS_MID_CATCH_UP: Final = 5
# Small batches, so the 50,000 events make enough batches to kill the projector in many times.
BATCH_SIZE: Final = 1000
# Only a safety net so a wedged projector fails the test instead of hanging it; no assertion
# depends on how fast anything runs.
STALL_SECONDS: Final = 120.0
POLL_SECONDS: Final = 0.02
WRITE_POLL_SECONDS: Final = 0.005
FALLBACK_BATCH_SECONDS: Final = 0.5
MIN_INTERRUPTED_WRITES: Final = 3


@pytest.fixture
def components(isolated_postgres_url: str) -> Iterator[Components]:
    settings = Settings(database_url=isolated_postgres_url)
    migrate(settings)
    built = bootstrap(settings, clock=lambda: T0)
    yield built
    built.close()


@pytest.fixture
def rebuild_schema(isolated_postgres_url: str) -> Iterator[str]:
    """A second schema on the same database, for views rebuilt cleanly; dropped afterwards."""
    conninfo = Database.from_url(isolated_postgres_url).conninfo()
    schema = f"troth_rebuild_{secrets.token_hex(4)}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            yield schema
        finally:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


class History:
    """A seeded, realistic history: ~300 people in two tenants over a year."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.people = [(t, f"{t}-{i:03d}") for t in TENANTS for i in range(PEOPLE_PER_TENANT)]
        self.registered: set[tuple[str, str]] = set()
        self.steps: list[Step] = []
        self.promises = 0
        # Registered, API key issued, webhook secret added; and the one policy change.
        self.events = 3 * len(TENANTS) + 1

    def plan(self, events: int) -> None:
        for tenant, person in self.people:
            if self.rng.random() < 0.4:
                self._time_zone(tenant, person, self.rng.choice(ZONES), T0)
        # People who move mid-year: their local weeks and streaks are rebuilt.
        for tenant, person in self.rng.sample(self.people, 6):
            self._time_zone(
                tenant, person, MOVED_TO, T0 + timedelta(days=self.rng.randint(60, 300))
            )
        while self.events < events:
            self._promise()

    def _time_zone(self, tenant: str, person: str, zone: str, at: datetime) -> None:
        self.steps.append(
            Step(
                at,
                tenant,
                None,
                lambda uow: uow.update_person(tenant, person, at=at, timezone=zone),
            )
        )
        self.events += 1 if (tenant, person) in self.registered else 2
        self.registered.add((tenant, person))

    def _promise(self) -> None:
        rng = self.rng
        tenant, promiser = rng.choice(self.people)
        others = [p for t, p in self.people if t == tenant and p != promiser]
        made = T0 + timedelta(minutes=rng.randint(0, 365 * 24 * 60))
        due = made + timedelta(hours=rng.randint(4, 7 * 24))
        terms = PromiseTerms(
            tenant=tenant,
            key=f"p{self.promises}",
            promiser=promiser,
            promisee=rng.choice(others) if rng.random() < 0.7 else None,
            category=rng.choice(("work", "family", "health", None)),
            title=f"promise {self.promises}",
            made_at=made,
            due_at=due,
        )
        self.promises += 1
        self._add(made, terms, lambda uow: uow.make_promise(terms))
        key = terms.key
        roll = rng.random()
        if roll < 0.06:
            return  # still open
        if roll < 0.10:
            at = made + (due - made) / 3
            self._add(at, terms, lambda uow: uow.release_promise(tenant, key, at=at))
        elif roll < 0.13:
            noticed = due + 2 * DAY
            self._add(noticed, terms, lambda uow: uow.lapse_promise(tenant, key, now=noticed))
        elif roll < 0.21:
            at = due + HOUR
            self._add(at, terms, lambda uow: uow.break_promise(tenant, key, at=at))
            if rng.random() < 0.05:
                self._correct(due + 3 * DAY, terms, PromiseStatus.KEPT, due)
        else:
            late = rng.random() < 0.15
            at = due + timedelta(hours=rng.randint(1, 48)) if late else made + (due - made) / 2
            self._add(at, terms, lambda uow: uow.keep_promise(tenant, key, at=at))
            if rng.random() < 0.02:
                self._correct(at + 3 * DAY, terms, PromiseStatus.BROKEN, at + HOUR)

    def _correct(
        self, reported: datetime, terms: PromiseTerms, outcome: PromiseStatus, at: datetime
    ) -> None:
        tenant, key = terms.tenant, terms.key
        self._add(
            reported,
            terms,
            lambda uow: uow.correct_outcome(tenant, key, outcome=outcome, at=at, reason="disputed"),
        )

    def _add(self, reported: datetime, terms: PromiseTerms, command: Command) -> None:
        self.steps.append(Step(reported, terms.tenant, terms.key, command))
        self.events += 1

    def record(self, ledger: Ledger) -> None:
        """Record the steps in report order, STEPS_PER_COMMIT use cases per transaction."""
        for tenant in TENANTS:
            ledger.register_tenant(tenant, at=T0 - DAY)
        ordered = sorted(self.steps, key=lambda s: s.reported_at)
        half = len(ordered) // 2
        record(ledger, ordered[:half], STEPS_PER_COMMIT)
        # Mid-year, one tenant's policy changes: every one of its sums is recomputed, one
        # large batch for a kill to land in.
        ledger.change_scoring_policy("globex", ScoringPolicy(grace=2 * HOUR, late_credit=0.25))
        record(ledger, ordered[half:], STEPS_PER_COMMIT)


class CleanRebuild(threading.Thread):
    """Projects the whole log once, without interruption, into fresh views in `schema`."""

    def __init__(self, settings: Settings, schema: str) -> None:
        super().__init__(name="clean-rebuild")
        self.settings = settings
        self.schema = schema
        self.applied = 0
        self.seconds = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        started = time.perf_counter()
        ledger = open_ledger(self.settings)
        store = PostgresReportViewStore(self.settings.database.conninfo(), schema=self.schema)
        try:
            store.create_tables()
            # In the default batch size, unlike the killed projector: the views must not
            # depend on how the log was cut into batches either.
            self.applied = Projector(ledger.recorder, ledger.mapper, store).catch_up()
        except BaseException as error:
            self.error = error
        finally:
            store.close()
            ledger.close()
        self.seconds = time.perf_counter() - started


@dataclass
class Kills:
    """Where the views stood after each kill, and how many kills cut a batch's write short."""

    positions: list[int] = field(default_factory=list)
    interrupted_writes: int = 0


def kill_repeatedly_until_caught_up(
    settings: Settings, projector: Projector, rng: random.Random, log: Path
) -> Kills:
    """Run `troth projector` and SIGKILL it until the views reach the head.

    Each run first writes 3-5 batches, so every run makes progress and the loop ends. Then
    every other run is killed at a random moment of its next batch, wherever that batch
    stands (reading, applying or writing), and the others while the batch's write
    transaction is open, the moment that matters most for exactly-once.
    """
    env = {
        **os.environ,
        "TROTH_DATABASE_URL": settings.database_url,
        "TROTH_PROJECTOR_BATCH_SIZE": str(BATCH_SIZE),
    }
    database = settings.database
    head = projector.head()
    kills = Kills()
    with psycopg.connect(database.conninfo(), autocommit=True) as watch:
        run = 0
        while projector.position() < head:
            with log.open("ab") as output:
                process = subprocess.Popen(
                    [TROTH, "projector"], env=env, stdout=output, stderr=subprocess.STDOUT
                )
            writer: Writer | None = None
            try:
                batch_seconds = wait_for_batches(projector, process, rng.randint(3, 5), head, log)
                if run % 2:
                    writer = wait_for_write_transaction(watch, database.schema, projector, head)
                else:
                    time.sleep(rng.uniform(0.0, batch_seconds))
            finally:
                process.send_signal(signal.SIGKILL)
                process.wait()
            assert process.returncode == -signal.SIGKILL, tail(log)
            if writer is not None:
                wait_for_backend_to_end(watch, writer.pid)
                if projector.position() == writer.position:
                    # The write transaction seen open never committed: its batch rolled back.
                    kills.interrupted_writes += 1
            kills.positions.append(projector.position())
            run += 1
    return kills


@dataclass(frozen=True)
class Writer:
    """A server process with a write transaction open, and the views' position before it."""

    pid: int
    position: int


def wait_for_write_transaction(
    watch: psycopg.Connection[tuple[Any, ...]], schema: str, projector: Projector, head: int
) -> Writer | None:
    """A transaction writing `schema`'s views now (it has a transaction id, which PostgreSQL
    assigns at the first write), or None once the views reach `head`."""
    pattern = f"%{sql.Identifier(schema).as_string(watch)}.%"
    deadline = time.monotonic() + STALL_SECONDS
    # The position is read before looking for the transaction, so it cannot include it.
    while (position := projector.position()) < head:
        row = watch.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE backend_xid IS NOT NULL AND query LIKE %s AND pid <> pg_backend_pid()",
            (pattern,),
        ).fetchone()
        if row is not None:
            return Writer(row[0], position)
        if time.monotonic() > deadline:
            pytest.fail(f"no write transaction on {schema} in {STALL_SECONDS} s")
        time.sleep(WRITE_POLL_SECONDS)
    return None


def wait_for_backend_to_end(watch: psycopg.Connection[tuple[Any, ...]], pid: int) -> None:
    deadline = time.monotonic() + STALL_SECONDS
    while watch.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
        if time.monotonic() > deadline:
            pytest.fail(f"the killed projector's server process {pid} did not end")
        time.sleep(POLL_SECONDS)


def wait_for_batches(
    projector: Projector, process: subprocess.Popen[bytes], count: int, head: int, log: Path
) -> float:
    """Wait until the running projector has written `count` batches (or reached `head`);
    returns how long a batch took it, as seen from here."""
    first = position = projector.position()
    target = min(first + count * BATCH_SIZE, head)
    changes: list[tuple[float, int]] = []
    deadline = time.monotonic() + STALL_SECONDS
    while position < target:
        if process.poll() is not None:
            pytest.fail(f"the projector exited by itself ({process.returncode}):\n{tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"the projector wrote no batch in {STALL_SECONDS} s:\n{tail(log)}")
        time.sleep(POLL_SECONDS)
        if (current := projector.position()) != position:
            position = current
            changes.append((time.monotonic(), position))
            deadline = time.monotonic() + STALL_SECONDS
    # Per-batch times between the commits seen; the median, as one batch (the policy change)
    # takes many times longer than the others.
    times = [
        (t2 - t1) / max((p2 - p1) / BATCH_SIZE, 1)
        for (t1, p1), (t2, p2) in itertools.pairwise(changes)
    ]
    return statistics.median(times) if times else FALLBACK_BATCH_SECONDS


def tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def table_rows(conninfo: str, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in `schema`, in a total order (sorted by all columns)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            )
        ]
        rows: dict[str, list[tuple[Any, ...]]] = {}
        for table in tables:
            columns = [
                row[0]
                for row in conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                    (schema, table),
                )
            ]
            names = sql.SQL(", ").join(map(sql.Identifier, columns))
            statement = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
                names, sql.Identifier(schema, table), names
            )
            rows[table] = conn.execute(statement).fetchall()
        return rows


def assert_same_rows(
    table: str, actual: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]
) -> None:
    # Exact equality, floats included: each run resumes after the last committed batch, so
    # batches always span the same notifications (start 1, 1000 at a time) as in the clean
    # rebuild, and every sum is computed by the same operations in the same order.
    for index, (got, want) in enumerate(zip(actual, expected, strict=False)):
        assert got == want, f"{table}: row {index} differs after the crashes"
    assert len(actual) == len(expected), f"{table}: {len(actual)} rows, rebuild has {len(expected)}"


def test_a_projector_killed_repeatedly_during_catch_up_ends_with_the_views_of_a_clean_rebuild(
    components: Components, rebuild_schema: str, tmp_path: Path
) -> None:
    # A seeded generator so every run records the same history; nothing here is a secret.
    rng = random.Random(SEED)  # noqa: S311
    started = time.perf_counter()
    history = History(rng)
    history.plan(EVENTS)
    history.record(components.ledger)
    head = components.projector.head()
    written = time.perf_counter()
    assert head == history.events >= EVENTS

    # The clean rebuild reads the same log into views of its own schema, in this process,
    # while the projector processes are being killed (the two catch-ups take the same time).
    clean = CleanRebuild(components.settings, rebuild_schema)
    clean.start()
    try:
        kills = kill_repeatedly_until_caught_up(
            components.settings, components.projector, rng, tmp_path / "projector.log"
        )
    finally:
        clean.join()
    finished = time.perf_counter()
    print(
        f"\n{head} events written in {written - started:.1f} s; {len(kills.positions)} kills "
        f"({kills.interrupted_writes} inside a write) in {finished - written:.1f} s "
        f"(clean rebuild {clean.seconds:.1f} s) at {kills.positions}"
    )

    mid_catch_up = [p for p in kills.positions if 0 < p < head]
    assert len(mid_catch_up) >= MIN_KILLS_MID_CATCH_UP, kills
    assert kills.interrupted_writes >= MIN_INTERRUPTED_WRITES, kills
    assert components.projector.position() == head
    assert clean.error is None
    assert clean.applied == head

    database = components.settings.database
    after_crashes = table_rows(database.conninfo(), database.schema)
    rebuilt = table_rows(database.conninfo(), rebuild_schema)
    assert rebuilt.keys() >= VIEW_TABLES
    assert after_crashes.keys() >= rebuilt.keys()
    assert len(rebuilt["troth_promises"]) == history.promises
    for table in sorted(rebuilt):
        assert_same_rows(table, after_crashes[table], rebuilt[table])
