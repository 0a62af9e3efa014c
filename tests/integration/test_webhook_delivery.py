"""Outgoing webhooks end to end: queued messages reach a real local HTTP receiver, signed
so the `standardwebhooks` library verifies them, retried on the schedule, on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from domain.application import Ledger
from projections.deliveries import AttemptOutcome, SubscriptionState
from service.bootstrap import Components, bootstrap
from service.delivery.retries import DELAYS
from service.delivery.worker import DeliveryWorker
from service.migration import migrate
from service.settings import Settings
from tests.receiver import Receiver, Reply, running_receiver
from tests.stores import unique_name
from tests.workers import steady_worker


def business_start() -> datetime:
    """The library checks timestamps against the wall clock (+-5 min): business time starts
    a little before now, so attempts up to 5 min 5 s later still verify."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=150)


@dataclass
class Harness:
    """A store, a tenant subscribed to a receiver, and a worker without jitter."""

    components: Components
    receiver: Receiver
    tenant: str
    subscription_id: str
    worker: DeliveryWorker
    start: datetime

    @property
    def ledger(self) -> Ledger:
        return self.components.ledger

    def queue(self, message_id: str, at: datetime | None = None) -> None:
        self.ledger.queue_message(
            self.tenant,
            message_id=message_id,
            type="promise.reminder",
            at=at or self.start,
            data={"promise": {"id": "p1", "title": "Send the report"}, "person": "alex"},
        )

    def outcomes(self) -> list[tuple[str, int | None]]:
        subscription = self.ledger.subscription(self.tenant, self.subscription_id)
        attempts = self.components.deliveries.attempts(subscription.id, limit=100)
        return [(a.outcome.value, a.status) for a in reversed(attempts)]

    def state(self) -> SubscriptionState:
        [row] = [
            r
            for r in self.components.deliveries.subscriptions(self.tenant)
            if r.subscription_id == self.subscription_id
        ]
        return row.state


def harness_for(settings: Settings, receiver: Receiver, *, allow_private: bool) -> Harness:
    components = bootstrap(settings)
    start = business_start()
    tenant = unique_name()
    components.ledger.register_tenant(tenant, at=start - timedelta(days=1))
    created = components.ledger.create_subscription(
        tenant, url=receiver.url, types=["*"], description="tests", at=start - timedelta(hours=1)
    )
    receiver.secret = created.secret
    worker = steady_worker(components, allow_private=allow_private)
    return Harness(components, receiver, tenant, created.subscription_id, worker, start)


@pytest.fixture
def isolated_settings(isolated_store_url: str) -> Settings:
    """A store of this test's own: the worker delivers every tenant's due messages."""
    settings = Settings(database_url=isolated_store_url)
    migrate(settings)
    return settings


@pytest.fixture
def harness(isolated_settings: Settings) -> Iterator[Harness]:
    settings = replace(isolated_settings, allow_private_targets=True)
    with running_receiver() as receiver:
        built = harness_for(settings, receiver, allow_private=True)
        yield built
        built.worker.close()
        built.components.close()


def test_a_message_is_retried_after_500s_with_the_same_id_until_delivered(
    harness: Harness,
) -> None:
    harness.receiver.script(Reply(500), Reply(500, body=b"still broken"))
    harness.queue("reminder-1")

    assert harness.worker.deliver_due(harness.start) == 1
    assert harness.worker.deliver_due(harness.start + timedelta(seconds=4)) == 0
    assert harness.worker.deliver_due(harness.start + timedelta(seconds=5)) == 1
    assert harness.worker.deliver_due(harness.start + timedelta(seconds=5 + 299)) == 0
    assert harness.worker.deliver_due(harness.start + timedelta(seconds=5 + 300)) == 1
    assert harness.worker.deliver_due(harness.start + timedelta(days=2)) == 0

    received = harness.receiver.received
    assert [r.headers["webhook-id"] for r in received] == ["reminder-1"] * 3
    assert all(r.is_verified for r in received)
    assert len({r.headers["webhook-timestamp"] for r in received}) == 3
    assert {r.body for r in received} == {received[0].body}
    assert received[0].path == "/hooks/troth?source=test"
    assert json.loads(received[0].body) == {
        "type": "promise.reminder",
        "timestamp": harness.start.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": {"promise": {"id": "p1", "title": "Send the report"}, "person": "alex"},
    }
    assert harness.outcomes() == [("retry", 500), ("retry", 500), ("delivered", 200)]


def test_messages_to_one_endpoint_reuse_a_kept_alive_connection(harness: Harness) -> None:
    for number in range(3):
        harness.queue(f"reminder-{number}")
        assert harness.worker.deliver_due(harness.start + timedelta(seconds=number)) == 1
    received = harness.receiver.received
    assert all(r.is_verified for r in received)
    assert len({r.client_port for r in received}) == 1


def test_a_long_answer_is_cut_to_its_excerpt_and_the_next_message_is_unaffected(
    harness: Harness,
) -> None:
    harness.receiver.script(Reply(500, body=b"x" * 5000))
    harness.queue("reminder-1")
    assert harness.worker.deliver_due(harness.start) == 1
    harness.queue("reminder-2", at=harness.start + timedelta(seconds=1))
    assert harness.worker.deliver_due(harness.start + timedelta(seconds=1)) == 1
    assert harness.worker.deliver_due(harness.start + timedelta(seconds=5)) == 1
    subscription = harness.ledger.subscription(harness.tenant, harness.subscription_id)
    attempts = harness.components.deliveries.attempts(subscription.id, limit=10)
    [cut] = [a for a in attempts if a.status == 500]
    assert cut.response_excerpt == "x" * 1024
    assert harness.outcomes() == [("retry", 500), ("delivered", 200), ("delivered", 200)]
    # The connection with the unread rest of the long answer was closed, not reused; the
    # next one was kept.
    long, after, retried = (r.client_port for r in harness.receiver.received)
    assert after != long
    assert retried == after


def test_410_disables_the_endpoint_and_keeps_its_messages_for_replay(harness: Harness) -> None:
    harness.receiver.script(Reply(410))
    harness.queue("m1")
    assert harness.worker.deliver_due(harness.start) == 1
    harness.queue("m2", at=harness.start + timedelta(seconds=1))
    assert harness.worker.deliver_due(harness.start + timedelta(hours=1)) == 0
    assert harness.state() is SubscriptionState.DISABLED
    subscription = harness.ledger.subscription(harness.tenant, harness.subscription_id)
    assert subscription.disabled_reason == "the endpoint answered 410 Gone"
    assert harness.outcomes() == [("disabled", 410)]

    harness.ledger.enable_subscription(
        harness.tenant, harness.subscription_id, at=harness.start + timedelta(hours=2)
    )
    assert harness.worker.deliver_due(harness.start + timedelta(hours=2)) == 2
    ids = [r.headers["webhook-id"] for r in harness.receiver.received]
    assert sorted(ids[1:]) == ["m1", "m2"]


def test_abort_message_stops_that_message_only(harness: Harness) -> None:
    harness.receiver.script(Reply(422, {"webhook-delivery": "abort-message"}))
    harness.queue("m1")
    assert harness.worker.deliver_due(harness.start) == 1
    assert harness.worker.deliver_due(harness.start + timedelta(days=3)) == 0
    harness.queue("m2", at=harness.start + timedelta(days=3))
    assert harness.worker.deliver_due(harness.start + timedelta(days=3)) == 1
    assert harness.outcomes() == [("aborted", 422), ("delivered", 200)]
    assert harness.state() is SubscriptionState.ACTIVE


def test_retry_after_on_429_and_503_is_honoured_instead_of_the_schedule(
    harness: Harness,
) -> None:
    harness.receiver.script(Reply(429, {"Retry-After": "120"}), Reply(503, {"Retry-After": "0"}))
    harness.queue("m1")
    assert harness.worker.deliver_due(harness.start) == 1
    assert harness.worker.deliver_due(harness.start + timedelta(seconds=119)) == 0
    assert harness.worker.deliver_due(harness.start + timedelta(seconds=120)) == 1
    # Retry-After: 0 is clamped to one second, not the schedule's five minutes.
    assert harness.worker.deliver_due(harness.start + timedelta(seconds=121)) == 1
    assert harness.outcomes() == [("retry", 429), ("retry", 503), ("delivered", 200)]


def test_a_redirect_is_a_failure_and_is_not_followed(harness: Harness) -> None:
    harness.receiver.script(Reply(307, {"Location": "http://169.254.169.254/latest/meta-data"}))
    harness.queue("m1")
    assert harness.worker.deliver_due(harness.start) == 1
    assert len(harness.receiver.received) == 1
    assert harness.outcomes() == [("retry", 307)]


def test_after_the_last_scheduled_attempt_the_delivery_fails_and_can_be_redelivered(
    harness: Harness,
) -> None:
    harness.receiver.script(*[Reply(500)] * 10)
    harness.queue("m1")
    now = harness.start
    assert harness.worker.deliver_due(now) == 1
    for delay in DELAYS:
        now += delay
        assert harness.worker.deliver_due(now) == 1
    assert harness.worker.deliver_due(now + timedelta(days=1)) == 0
    assert [o for o, _ in harness.outcomes()] == ["retry"] * 9 + ["failed"]

    subscription = harness.ledger.subscription(harness.tenant, harness.subscription_id)
    store = harness.components.deliveries
    assert store.redeliver_failed(subscription.id, since=harness.start, now=now) == 1
    assert harness.worker.deliver_due(now) == 1
    assert harness.outcomes()[-1] == ("delivered", 200)


def test_an_endpoint_failing_for_five_days_is_disabled(harness: Harness) -> None:
    harness.receiver.script(*[Reply(500)] * 100)
    for day in range(5):
        harness.queue(f"m{day}", at=harness.start + timedelta(days=day))
        harness.worker.deliver_due(harness.start + timedelta(days=day))
    assert harness.state() is SubscriptionState.ACTIVE
    harness.worker.deliver_due(harness.start + timedelta(days=5))
    assert harness.state() is SubscriptionState.DISABLED
    assert ("disabled", 500) in harness.outcomes()
    sent = len(harness.receiver.received)
    assert harness.worker.deliver_due(harness.start + timedelta(days=6)) == 0
    assert len(harness.receiver.received) == sent


def test_a_private_address_is_refused_at_send_without_the_development_flag(
    isolated_settings: Settings,
) -> None:
    with running_receiver() as receiver:
        built = harness_for(isolated_settings, receiver, allow_private=False)
        try:
            built.queue("m1")
            assert built.worker.deliver_due(built.start) == 1
            assert receiver.received == []
            subscription = built.ledger.subscription(built.tenant, built.subscription_id)
            [attempt] = built.components.deliveries.attempts(subscription.id)
            assert attempt.outcome is AttemptOutcome.RETRY
            assert attempt.status is None
            assert attempt.error is not None
            assert attempt.error.startswith("refused:")
        finally:
            built.worker.close()
            built.components.close()
