"""The deliveries view contract on SQLite and PostgreSQL: fan-out, claims, leases, records."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from eventsourcing.persistence import IntegrityError

from domain.application import Ledger
from projections.deliveries import (
    AttemptOutcome,
    AttemptRecord,
    AttemptRow,
    DeliveryChanges,
    DeliveryState,
    DeliveryStore,
)
from projections.delivery_projection import DeliveryProjector
from service.bootstrap import build_delivery_store
from service.migration import migrate
from service.settings import Settings
from tests.clock import T0
from tests.stores import open_ledger

HOOK = "https://hooks.example.com/troth"
LEASE = timedelta(minutes=1)


@pytest.fixture
def settings(isolated_store_url: str) -> Settings:
    settings = Settings(database_url=isolated_store_url)
    migrate(settings)
    return settings


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    ledger = open_ledger(settings)
    yield ledger
    ledger.close()


@pytest.fixture
def store(settings: Settings) -> Iterator[DeliveryStore]:
    store = build_delivery_store(settings)
    yield store
    store.close()


def projector(ledger: Ledger, store: DeliveryStore, batch_size: int = 500) -> DeliveryProjector:
    return DeliveryProjector(ledger.recorder, ledger.mapper, store, batch_size=batch_size)


def subscribe(ledger: Ledger, tenant: str, types: list[str]) -> str:
    return ledger.create_subscription(
        tenant, url=HOOK, types=types, description=None, at=T0
    ).subscription_id


def test_messages_go_to_the_matching_subscriptions_of_their_tenant_only(
    ledger: Ledger, store: DeliveryStore
) -> None:
    ledger.register_tenant("one", at=T0)
    ledger.register_tenant("two", at=T0)
    everything = subscribe(ledger, "one", ["*"])
    reminders = subscribe(ledger, "one", ["promise.reminder"])
    subscribe(ledger, "one", ["promise.lapsed"])
    deleted = subscribe(ledger, "one", ["*"])
    disabled = subscribe(ledger, "one", ["*"])
    subscribe(ledger, "two", ["*"])
    ledger.delete_subscription("one", deleted, at=T0)
    ledger.disable_subscription("one", disabled, reason="410", at=T0)
    ledger.queue_message("one", message_id="m1", type="promise.reminder", at=T0, data={})
    projector(ledger, store, batch_size=2).catch_up()

    claims = store.claim(T0, lease_until=T0 + LEASE, limit=100)
    assert sorted((c.subscription_id, c.delivery.message_id) for c in claims) == sorted(
        [(everything, "m1"), (reminders, "m1")]
    )
    assert store.position() == ledger.head_position()
    listed = {r.subscription_id: r.state.value for r in store.subscriptions("one")}
    assert len(listed) == 4
    assert deleted not in listed
    assert listed[disabled] == "disabled"

    # The disabled subscription's message is kept and claimed once it is enabled.
    ledger.enable_subscription("one", disabled, at=T0)
    projector(ledger, store).catch_up()
    [kept] = store.claim(T0, lease_until=T0 + LEASE, limit=100)
    assert (kept.subscription_id, kept.delivery.message_id) == (disabled, "m1")


def test_a_stale_batch_writes_nothing(ledger: Ledger, store: DeliveryStore) -> None:
    ledger.register_tenant("one", at=T0)
    projector(ledger, store).catch_up()
    position = store.position()
    with pytest.raises(IntegrityError):
        store.write(DeliveryChanges(), position + 5, previous=position - 1)
    assert store.position() == position


def test_a_claim_hides_a_delivery_until_its_lease_ends_and_a_record_reschedules_it(
    ledger: Ledger, store: DeliveryStore
) -> None:
    ledger.register_tenant("one", at=T0)
    sub = subscribe(ledger, "one", ["*"])
    ledger.queue_message("one", message_id="m1", type="promise.due", at=T0, data={"x": 1})
    projector(ledger, store).catch_up()
    assert store.claim(T0 - timedelta(seconds=1), lease_until=T0, limit=10) == []
    [claim] = store.claim(T0, lease_until=T0 + LEASE, limit=10)
    assert (
        claim.body == '{"type":"promise.due","timestamp":"2026-03-02T09:00:00.000Z","data":{"x":1}}'
    )
    assert store.claim(T0 + timedelta(seconds=59), lease_until=T0 + 2 * LEASE, limit=10) == []
    [again] = store.claim(T0 + LEASE, lease_until=T0 + 2 * LEASE, limit=10)
    assert again.delivery.message_id == "m1"

    attempt = AttemptRow(
        subscription=claim.delivery.subscription,
        message_id="m1",
        at=T0 + LEASE,
        outcome=AttemptOutcome.RETRY,
        status=500,
        latency_ms=12,
        response_excerpt="no",
        error=None,
    )
    later = T0 + timedelta(hours=1)
    store.record([AttemptRecord(attempt, DeliveryState.PENDING, 1, later, T0 + LEASE)])
    assert store.claim(later - timedelta(seconds=1), lease_until=later, limit=10) == []
    [retry] = store.claim(later, lease_until=later + LEASE, limit=10)
    assert retry.delivery.attempts == 1
    assert retry.failing_since == T0 + LEASE
    [logged] = store.attempts(claim.delivery.subscription)
    assert (logged.status, logged.latency_ms, logged.message_type) == (500, 12, "promise.due")
    assert sub == retry.subscription_id


def test_redelivery_restarts_failed_deliveries_since_a_time(
    ledger: Ledger, store: DeliveryStore
) -> None:
    ledger.register_tenant("one", at=T0)
    subscribe(ledger, "one", ["*"])
    for n, at in enumerate([T0, T0 + timedelta(days=1)]):
        ledger.queue_message("one", message_id=f"m{n}", type="promise.due", at=at, data={})
    projector(ledger, store).catch_up()
    end = T0 + timedelta(days=4)
    for claim in store.claim(end, lease_until=end + LEASE, limit=10):
        attempt = AttemptRow(
            claim.delivery.subscription, claim.delivery.message_id, end,
            AttemptOutcome.FAILED, 500, 1, "", None,
        )  # fmt: skip
        store.record([AttemptRecord(attempt, DeliveryState.FAILED, 10, end, T0)])
    subscription = store.subscriptions("one")[0].id
    assert store.claim(end, lease_until=end + LEASE, limit=10) == []
    assert store.redeliver_failed(subscription, since=T0 + timedelta(hours=1), now=end) == 1
    [claim] = store.claim(end, lease_until=end + LEASE, limit=10)
    assert (claim.delivery.message_id, claim.delivery.attempts) == ("m1", 0)
    assert store.redeliver(subscription, "m0", now=end)
    assert not store.redeliver(subscription, "m9", now=end)


def test_concurrent_workers_claim_disjoint_deliveries_on_postgres(
    postgres_url: str, isolated_postgres_url: str
) -> None:
    settings = Settings(database_url=isolated_postgres_url)
    migrate(settings)
    ledger = open_ledger(settings)
    stores = [build_delivery_store(settings) for _ in range(4)]
    try:
        ledger.register_tenant("one", at=T0)
        subscribe(ledger, "one", ["*"])
        for n in range(200):
            ledger.queue_message("one", message_id=f"m{n}", type="promise.due", at=T0, data={})
        projector(ledger, stores[0]).catch_up()
        taken: list[list[str]] = [[] for _ in stores]

        def work(index: int) -> None:
            while claims := stores[index].claim(T0, lease_until=T0 + LEASE, limit=7):
                taken[index].extend(c.delivery.message_id for c in claims)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        every = [m for ids in taken for m in ids]
        assert sorted(every) == sorted(f"m{n}" for n in range(200))
    finally:
        for store in stores:
            store.close()
        ledger.close()
