"""The due-work store contract, run against every backend (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from eventsourcing.persistence import IntegrityError

from domain.application import Ledger
from domain.promise import PromiseTerms
from projections.due_plan import DueKind
from projections.due_work import DueChanges, DueWorkProjector, DueWorkStore
from service.bootstrap import build_due_work
from service.migration import migrate
from service.settings import Settings
from tests.clock import T0
from tests.stores import open_ledger

H = timedelta(hours=1)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Ledger, DueWorkStore]]:
    if request.param == "memory":
        settings = Settings(database_url="memory:")
    elif request.param == "sqlite":
        settings = Settings(database_url=f"sqlite:///{tmp_path}/troth.db")
    else:
        settings = Settings(database_url=request.getfixturevalue("isolated_postgres_url"))
    migrate(settings)
    ledger = open_ledger(settings)
    store = build_due_work(settings)
    yield ledger, store
    store.close()
    ledger.close()


def test_every_backend_keeps_the_same_due_work(backend: tuple[Ledger, DueWorkStore]) -> None:
    ledger, store = backend
    ledger.register_tenant("acme", at=T0)
    for key in ("a", "b"):
        ledger.make_promise(
            PromiseTerms(
                tenant="acme", key=key, promiser="alex", promisee=None, title="Water the plants",
                made_at=T0, due_at=T0 + 48 * H,
            )
        )  # fmt: skip
    projector = DueWorkProjector(ledger.recorder, ledger.mapper, store)
    projector.catch_up()
    assert store.position() == ledger.head_position()
    assert [i.kind for i in store.pending("acme", "a")] == [
        DueKind.DUE_SOON, DueKind.DUE_SOON, DueKind.FOLLOW_UP, DueKind.LAPSE,
    ]  # fmt: skip
    due = store.due(T0 + 24 * H, limit=10)
    assert [(i.promise, i.kind) for i in due] == [("a", DueKind.DUE_SOON), ("b", DueKind.DUE_SOON)]
    assert due[0].data["title"] == "Water the plants"

    store.done(due[:1])
    assert [i.promise for i in store.due(T0 + 24 * H, limit=10)] == ["b"]

    ledger.keep_promise("acme", "b", at=T0 + H)
    projector.catch_up()
    assert store.pending("acme", "b") == []
    assert store.open_promises("acme", "alex")[0].key == "a"


def test_a_batch_written_from_a_stale_position_is_refused(
    backend: tuple[Ledger, DueWorkStore],
) -> None:
    _, store = backend
    store.write(DueChanges(), 5, previous=0)
    with pytest.raises(IntegrityError):
        store.write(DueChanges(), 9, previous=3)
    assert store.position() == 5
