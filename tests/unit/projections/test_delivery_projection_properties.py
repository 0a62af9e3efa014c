"""Property: however the log is cut into batches, the deliveries view gets the same rows.

Subscriptions are created, disabled, enabled and deleted between messages; each message
must go to exactly the subscriptions that wanted it when it was queued.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.application import Ledger
from projections.delivery_projection import DeliveryProjector
from projections.delivery_sqlite import SQLiteDeliveryStore
from service.settings import Settings
from tests.clock import T0

TYPES = ("promise.due", "promise.reminder")
Step = tuple[str, int]


def replay(steps: list[Step], batch_size: int) -> set[tuple[int, str]]:
    """The (subscription's creation index, message) deliveries claimable after `steps`."""
    ledger = Ledger(env=Settings(database_url="memory:").eventsourcing_env(Ledger.name))
    store = SQLiteDeliveryStore(":memory:")
    store.create_tables()
    ledger.register_tenant("acme", at=T0)
    subscriptions: list[str] = []
    created: list[str] = []
    for n, (action, value) in enumerate(steps):
        target = subscriptions[value % len(subscriptions)] if subscriptions else None
        if action == "subscribe":
            types = ["*"] if value == 2 else [TYPES[value]]
            subscriptions.append(
                ledger.create_subscription(
                    "acme", url="https://h.example/", types=types, description=None, at=T0
                ).subscription_id
            )
            created.append(subscriptions[-1])
        elif action == "queue":
            ledger.queue_message("acme", message_id=f"m{n}", type=TYPES[value % 2], at=T0, data={})
        elif target is not None and action == "toggle":
            if ledger.subscription("acme", target).is_active:
                ledger.disable_subscription("acme", target, reason="test", at=T0)
            else:
                ledger.enable_subscription("acme", target, at=T0)
        elif target is not None and action == "delete":
            ledger.delete_subscription("acme", target, at=T0)
            subscriptions.remove(target)
    for target in subscriptions:
        ledger.enable_subscription("acme", target, at=T0)
    DeliveryProjector(ledger.recorder, ledger.mapper, store, batch_size=batch_size).catch_up()
    later = T0 + timedelta(days=1)
    claims = store.claim(later, lease_until=later, limit=10_000)
    store.close()
    ledger.close()
    return {(created.index(c.subscription_id), c.delivery.message_id) for c in claims}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["subscribe", "queue", "toggle", "delete"]), st.integers(0, 2)),
        max_size=25,
    ),
    st.integers(1, 7),
)
def test_batch_size_never_changes_the_deliveries(steps: list[Step], batch_size: int) -> None:
    assert replay(steps, batch_size) == replay(steps, 10_000)
