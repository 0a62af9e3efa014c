"""The projector wakes on PostgreSQL NOTIFY when events are written, and polls on SQLite."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from service.bootstrap import Components, bootstrap
from service.migration import migrate
from service.settings import Settings
from service.wakeups import event_waiter
from tests.clock import T0


@pytest.fixture
def components(isolated_store_url: str) -> Iterator[Components]:
    settings = Settings(database_url=isolated_store_url)
    migrate(settings)
    built = bootstrap(settings)
    yield built
    built.close()


def test_a_write_wakes_the_waiting_projector_on_postgresql(components: Components) -> None:
    wait = event_waiter(components.settings, components.ledger.recorder)
    wait(0.01)  # connects and LISTENs
    woken: list[bool] = []
    waiter = threading.Thread(target=lambda: woken.append(wait(60)))
    waiter.start()

    components.ledger.register_tenant("acme", at=T0)
    waiter.join(60)
    wait.close()

    # On PostgreSQL only a notification ends the wait with True; SQLite polls and says False.
    expected = components.settings.database.kind == "postgres"
    assert woken == [expected]
