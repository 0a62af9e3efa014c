"""Writes from many threads share transactions (group commit) and each keeps its own answer.

On SQLite and PostgreSQL, where a commit takes long enough for other threads to queue up
behind it (in memory every commit is over before the next thread arrives).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from functools import partial
from typing import TypeVar

import pytest
from eventsourcing.persistence import OperationalError

from domain.application import Ledger, TenantCredentials
from domain.errors import ConcurrentWriteError, PromiseAlreadySettledError
from domain.promise import PromiseStatus, PromiseTerms
from domain.unit_of_work import UnitOfWork
from service.migration import migrate
from service.settings import Database, Settings
from tests.clock import T0
from tests.proxy import SeverableProxy
from tests.stores import unique_name

THREADS = 16
CONNECT_TIMEOUT = 1
# The library tries a statement ten times, 0.2 s apart, each waiting for a connection.
ROUND_OF_ATTEMPTS = 10 * (CONNECT_TIMEOUT + 0.2)

T = TypeVar("T")


def at_once(calls: Sequence[Callable[[], T]]) -> list[T | Exception]:
    """Run `calls` on their own threads, released together; each one's result or error."""
    results: list[T | Exception] = [Exception("not run")] * len(calls)
    start = threading.Barrier(len(calls))

    def run(number: int) -> None:
        start.wait()
        try:
            results[number] = calls[number]()
        except Exception as error:
            results[number] = error

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.fixture
def ledger(isolated_store_url: str) -> Iterator[Ledger]:
    settings = Settings(database_url=isolated_store_url)
    migrate(settings)
    app = Ledger(env=settings.eventsourcing_env(Ledger.name))
    yield app
    app.close()


@pytest.fixture
def tenant(ledger: Ledger) -> TenantCredentials:
    return ledger.register_tenant(unique_name(), at=T0)


def terms(tenant: TenantCredentials, key: str) -> PromiseTerms:
    return PromiseTerms(
        tenant=tenant.tenant,
        key=key,
        promiser="alex",
        promisee="sam",
        title="Call when I land",
        made_at=T0,
        due_at=T0 + timedelta(days=1),
    )


def test_promises_made_at_the_same_moment_are_each_recorded_once_with_their_own_position(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    for _ in range(5):
        base = ledger.head_position()
        keys = [f"p-{base}-{n}" for n in range(THREADS)]
        answers = at_once([partial(ledger.make_promise, terms(tenant, key)) for key in keys])
        written = [answer for answer in answers if not isinstance(answer, Exception)]
        assert len(written) == THREADS, answers
        positions = [w.position for w in written]
        assert sorted(positions) == list(range(base + 1, base + THREADS + 1))
        for key, answer in zip(keys, written, strict=True):
            promise = ledger.promise(tenant.tenant, key)
            assert len(promise.history) == 1
            assert promise.aggregate_id == answer.aggregate_id


def test_one_of_many_simultaneous_outcomes_for_a_promise_wins_and_the_others_are_refused(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    ledger.make_promise(terms(tenant, "p1"))
    at = T0 + timedelta(hours=2)
    keep = partial(ledger.keep_promise, tenant.tenant, "p1", at=at)
    break_ = partial(ledger.break_promise, tenant.tenant, "p1", at=at)
    outcomes = at_once([keep if n % 2 else break_ for n in range(THREADS)])
    wins = [o for o in outcomes if not isinstance(o, Exception)]
    refusals = [o for o in outcomes if isinstance(o, Exception)]
    assert len(wins) == 1
    # Refused either as a conflicting write in the same instant or, read later, as settled.
    assert all(
        isinstance(o, ConcurrentWriteError | PromiseAlreadySettledError) for o in refusals
    ), refusals
    promise = ledger.promise(tenant.tenant, "p1")
    assert len(promise.history) == 2
    assert promise.status in (PromiseStatus.KEPT, PromiseStatus.BROKEN)
    assert ledger.head_position() == wins[0].position


def test_writes_queued_behind_one_that_finds_the_database_gone_are_refused_with_it(
    isolated_postgres_url: str,
) -> None:
    # Each would otherwise wait out its own ten connection attempts after the one ahead of
    # it: the last request of a queue would be answered 503 only after minutes.
    settings = Settings(database_url=isolated_postgres_url)
    migrate(settings)
    db = Database.from_url(isolated_postgres_url)
    proxy = SeverableProxy((db.host, db.port))
    proxied = Settings(
        database_url=f"postgresql://{db.user}@127.0.0.1:{proxy.port}/{db.dbname}?schema={db.schema}",
        db_connect_timeout=CONNECT_TIMEOUT,
    )
    ledger = Ledger(env=proxied.eventsourcing_env(Ledger.name))
    try:
        tenant = ledger.register_tenant(unique_name(), at=T0)
        # Webhooks for new promises, each ready to commit (they commit without reading).
        units: list[UnitOfWork] = []
        for number in range(8):
            uow = ledger.unit_of_work(expect_new_promises=True)
            uow.make_promise(terms(tenant, f"p{number}"))
            units.append(uow)
        proxy.sever()

        def timed(uow: UnitOfWork) -> tuple[Exception | None, float]:
            started = time.monotonic()
            try:
                uow.commit()
                return None, time.monotonic() - started
            except OperationalError as error:
                return error, time.monotonic() - started

        leader: list[tuple[Exception | None, float]] = []
        first = threading.Thread(target=lambda: leader.append(timed(units[0])))
        first.start()
        time.sleep(2)  # the first write is now trying to connect, again and again
        answers = at_once([partial(timed, uow) for uow in units[1:]])
        first.join()
        queued = [answer for answer in answers if not isinstance(answer, Exception)]
        assert len(queued) == len(units) - 1, answers
        assert all(isinstance(error, OperationalError) for error, _ in [*leader, *queued])
        # The queued writes are refused when the first one is (about a round less the two
        # seconds they came later), not after a round of attempts of their own.
        assert all(seconds < ROUND_OF_ATTEMPTS for _, seconds in queued), queued
        proxy.restore()
        assert ledger.make_promise(terms(tenant, "after")).position > tenant.position
    finally:
        ledger.close()
        proxy.close()
