"""The projector on SQLite and PostgreSQL: views follow the log once, even with two projectors."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from domain.application import Ledger
from domain.promise import PromiseStatus, PromiseTerms
from projections.projector import Projector
from projections.views import SubjectKey
from service.bootstrap import Components, bootstrap
from service.migration import migrate
from service.settings import Settings
from tests.clock import T0
from tests.reporting import World, as_shown, assert_same

NOW = T0 + timedelta(days=60)
DAY = timedelta(days=1)


@pytest.fixture
def components(isolated_store_url: str) -> Iterator[Components]:
    settings = Settings(database_url=isolated_store_url)
    migrate(settings)
    built = bootstrap(settings, clock=lambda: NOW)
    yield built
    built.close()


def write_history(ledger: Ledger, tenant: str) -> None:
    for i in range(30):
        at = T0 + i * DAY
        ledger.make_promise(
            PromiseTerms(
                tenant=tenant,
                key=f"p{i}",
                promiser=("ann", "ben")[i % 2],
                promisee=("sam", "kim", None)[i % 3],
                category=("calls", None)[i % 2],
                title=f"promise {i}",
                made_at=at,
                due_at=at + DAY,
            )
        )
        if i % 5 == 0:
            ledger.break_promise(tenant, f"p{i}", at=at + timedelta(hours=2))
        elif i % 7:
            ledger.keep_promise(tenant, f"p{i}", at=at + timedelta(hours=3 + i % 4 * 20))
    ledger.correct_outcome(tenant, "p5", outcome=PromiseStatus.KEPT, at=T0 + 5 * DAY, reason="x")
    ledger.update_person(tenant, "ann", at=T0, timezone="Australia/Sydney")


def test_the_views_on_a_real_store_match_the_in_memory_views(components: Components) -> None:
    tenant = components.ledger.register_tenant("acme", at=T0 - DAY).tenant
    write_history(components.ledger, tenant)
    reference = World.create()
    write_history(reference.ledger, reference.tenant)

    components.projector.catch_up()
    reference.projector.catch_up()

    assert components.projector.position() == components.ledger.head_position()
    assert_same_reports(components, reference, tenant)
    reference.close()


def test_two_projectors_racing_apply_every_event_exactly_once(components: Components) -> None:
    tenant = components.ledger.register_tenant("acme", at=T0 - DAY).tenant
    write_history(components.ledger, tenant)
    ledger = components.ledger
    projectors = [
        Projector(ledger.recorder, ledger.mapper, components.views, batch_size=size)
        for size in (3, 7)
    ]
    assert race(projectors, Projector.step, ledger.head_position()) == []
    ann = SubjectKey(tenant, "promiser", "ann")
    ben = SubjectKey(tenant, "promiser", "ben")
    reports = [components.reader.report(k, now=NOW) for k in (ann, ben)]
    assert [r.counts.made for r in reports if r] == [15, 15]
    for key, report in zip((ann, ben), reports, strict=True):
        assert report is not None
        assert_same(report, components.reader.report(key, now=NOW, as_of=NOW))


def test_pipelined_projectors_racing_end_with_the_views_of_one(
    components: Components,
) -> None:
    # Each writes a batch while applying the next over it; when the other moved the views
    # first, the write is refused and the batch applied over it must be dropped.
    tenant = components.ledger.register_tenant("acme", at=T0 - DAY).tenant
    write_history(components.ledger, tenant)
    reference = World.create()
    write_history(reference.ledger, reference.tenant)
    reference.projector.catch_up()
    ledger = components.ledger
    projectors = [
        Projector(ledger.recorder, ledger.mapper, components.views, batch_size=size, pipelined=True)
        for size in (3, 7)
    ]
    assert race(projectors, Projector.catch_up, ledger.head_position()) == []
    assert_same_reports(components, reference, tenant)
    reference.close()


def assert_same_reports(components: Components, reference: World, tenant: str) -> None:
    """Every subject of `tenant` has the same report in `components` as in `reference`."""
    keys = components.views.tenant_subjects(tenant)
    assert keys == reference.store.tenant_subjects(tenant)
    for key in keys:
        actual = components.reader.report(key, now=NOW)
        assert_same(as_shown(actual), as_shown(reference.reader.report(key, now=NOW)), str(key))


def race(
    projectors: list[Projector], advance: Callable[[Projector], object], head: int
) -> list[BaseException]:
    """Start the projectors at once, each advancing until the views reach `head`; the errors."""
    barrier = threading.Barrier(len(projectors))
    errors: list[BaseException] = []

    def run(projector: Projector) -> None:
        barrier.wait()
        try:
            while projector.position() < head:
                advance(projector)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(p,)) for p in projectors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors
