"""Receipts are stored atomically with the events they answer for, on every store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from domain.application import Ledger
from domain.errors import ConcurrentWriteError
from domain.promise import PromiseTerms
from domain.receipts import Receipt
from service.migration import migrate
from service.settings import Settings
from tests.clock import T0
from tests.stores import open_ledger, unique_name


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest) -> Iterator[Ledger]:
    if request.param == "memory":
        settings = Settings(database_url="memory:")
    else:
        settings = request.getfixturevalue("store_settings_" + request.param)
    app = open_ledger(settings)
    yield app
    app.close()


@pytest.fixture
def store_settings_sqlite(tmp_path: Path) -> Settings:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/r.db")
    migrate(settings)
    return settings


@pytest.fixture
def store_settings_postgres(postgres_url: str) -> Settings:
    settings = Settings(database_url=postgres_url)
    migrate(settings)
    return settings


def receipt(tenant: str, key: str, answer: dict[str, object] | None = None) -> Receipt:
    return Receipt(
        tenant=tenant,
        key=key,
        request_hash="h-" + key,
        status=202,
        answer=answer or {"promise_id": "p1"},
        recorded_at=T0,
    )


def terms(tenant: str, key: str) -> PromiseTerms:
    return PromiseTerms(tenant=tenant, key=key, promiser="a", title="t", made_at=T0)


def test_a_receipt_carries_the_position_of_the_event_it_answers_for(ledger: Ledger) -> None:
    tenant = unique_name()
    ledger.register_tenant(tenant, at=T0)
    uow = ledger.unit_of_work()
    first = uow.make_promise(terms(tenant, "p1"))
    second = uow.make_promise(terms(tenant, "p2"))
    uow.add_receipt(receipt(tenant, "msg-1"), first)
    uow.add_receipt(receipt(tenant, "msg-2"), second)
    written = uow.commit()
    stored = ledger.receipts(tenant, ["msg-1", "msg-2", "msg-unknown"])
    assert set(stored) == {"msg-1", "msg-2"}
    assert stored["msg-1"].position == written(first).position
    assert stored["msg-2"].position == written(second).position == written(first).position + 1
    assert stored["msg-1"].answer == {"promise_id": "p1"}
    assert stored["msg-1"].recorded_at == T0


def test_a_reused_receipt_key_stores_nothing_of_the_second_unit(ledger: Ledger) -> None:
    tenant = unique_name()
    ledger.register_tenant(tenant, at=T0)
    uow = ledger.unit_of_work()
    uow.add_receipt(receipt(tenant, "msg-1"), uow.make_promise(terms(tenant, "p1")))
    uow.commit()
    head = ledger.head_position()

    again = ledger.unit_of_work()
    again.add_receipt(receipt(tenant, "msg-1"), again.make_promise(terms(tenant, "p2")))
    with pytest.raises(ConcurrentWriteError):
        again.commit()
    assert ledger.head_position() == head
    assert ledger.receipts(tenant, ["msg-1"])["msg-1"].request_hash == "h-msg-1"


def test_receipts_for_answers_without_events_are_kept_too(ledger: Ledger) -> None:
    tenant = unique_name()
    ledger.register_tenant(tenant, at=T0)
    ledger.make_promise(terms(tenant, "p1"))
    uow = ledger.unit_of_work()
    change = uow.make_promise(terms(tenant, "p1"))
    assert not change.is_new
    uow.add_receipt(receipt(tenant, "msg-dup"), change)
    written = uow.commit()
    stored = ledger.receipts(tenant, ["msg-dup"])["msg-dup"]
    assert stored.position == written(change).position == ledger.head_position()


def test_receipts_are_per_tenant(ledger: Ledger) -> None:
    one, two = unique_name(), unique_name()
    for tenant in (one, two):
        ledger.register_tenant(tenant, at=T0)
        uow = ledger.unit_of_work()
        uow.add_receipt(receipt(tenant, "same-id"), uow.make_promise(terms(tenant, "p")))
        uow.commit()
    assert ledger.receipts(one, ["same-id"])["same-id"].tenant == one
    assert ledger.receipts(two, ["same-id"])["same-id"].tenant == two


def test_old_receipts_can_be_purged(ledger: Ledger) -> None:
    tenant = unique_name()
    ledger.register_tenant(tenant, at=T0)
    uow = ledger.unit_of_work()
    uow.add_receipt(receipt(tenant, "old"), uow.make_promise(terms(tenant, "p1")))
    uow.commit()
    assert ledger.receipt_recorder.purge_receipts(T0) == 0
    assert ledger.receipt_recorder.purge_receipts(T0 + timedelta(days=8)) >= 1
    assert ledger.receipts(tenant, ["old"]) == {}
