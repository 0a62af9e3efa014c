"""The deliveries projection: subscriptions and queued messages become pending deliveries.

Only the events it needs are read (by topic), and the tracking position moves to the log's
head even when a batch held none of them, so the log is scanned once. Handlers read only
the event and the view: a delivery is due from the instant its message was recorded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC
from typing import Any, Final
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Mapper

from domain.message import Message
from domain.subscription import Subscription
from projections.deliveries import (
    DeliveryChanges,
    DeliveryRow,
    DeliveryState,
    DeliveryStore,
    MessageRow,
    StateChange,
    SubscriptionRow,
    SubscriptionState,
)
from projections.topic_projector import TopicProjector

BATCH_SIZE: Final = 500
TOPICS: Final = (
    Message.Queued.TOPIC,
    Subscription.Created.TOPIC,
    Subscription.Disabled.TOPIC,
    Subscription.Enabled.TOPIC,
    Subscription.Deleted.TOPIC,
)


def message_body(event: Message.Queued) -> str:
    """The JSON body sent for a message: `{"type", "timestamp", "data"}`, compact."""
    timestamp = event.at.astimezone(UTC).isoformat(timespec="milliseconds")
    body = {"type": event.type, "timestamp": timestamp.replace("+00:00", "Z"), "data": event.data}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


class DeliveryProjection:
    """Turns a batch of events into `DeliveryChanges`."""

    def __init__(self, store: DeliveryStore) -> None:
        self.store = store

    def apply(self, events: Sequence[Any]) -> DeliveryChanges:
        """The changes `events` make (in log order)."""
        changes = DeliveryChanges()
        tenants: dict[str, dict[UUID, SubscriptionRow]] = {}

        def rows(tenant: str) -> dict[UUID, SubscriptionRow]:
            if tenant not in tenants:
                loaded = {r.id: r for r in self.store.subscriptions(tenant)}
                for row_id, change in changes.states.items():
                    if row_id in loaded:
                        loaded[row_id] = replace(loaded[row_id], state=change.state)
                tenants[tenant] = loaded
            return tenants[tenant]

        for event in events:
            if isinstance(event, Subscription.Created):
                row = SubscriptionRow(
                    id=event.originator_id,
                    tenant=event.tenant,
                    subscription_id=event.subscription_id,
                    url=event.url,
                    types=tuple(event.types),
                    description=event.description,
                    state=SubscriptionState.ACTIVE,
                    created_at=event.at,
                )
                changes.subscriptions[row.id] = row
                rows(event.tenant)[row.id] = row
            elif isinstance(
                event, Subscription.Disabled | Subscription.Enabled | Subscription.Deleted
            ):
                change = _state_change(event)
                changes.states[event.originator_id] = change
                for loaded in tenants.values():
                    if event.originator_id in loaded:
                        old = loaded[event.originator_id]
                        loaded[old.id] = replace(old, state=change.state)
            elif isinstance(event, Message.Queued):
                changes.messages.append(
                    MessageRow(
                        tenant=event.tenant,
                        message_id=event.message_id,
                        type=event.type,
                        at=event.at,
                        body=message_body(event),
                        recorded_at=event.timestamp,
                    )
                )
                for row in rows(event.tenant).values():
                    if row.state is SubscriptionState.DELETED or not row.wants(event.type):
                        continue
                    changes.deliveries.append(
                        DeliveryRow(
                            subscription=row.id,
                            message_id=event.message_id,
                            tenant=event.tenant,
                            state=DeliveryState.PENDING,
                            attempts=0,
                            next_attempt_at=event.at,
                            message_at=event.at,
                        )
                    )
        return changes


def _state_change(event: Any) -> StateChange:
    if isinstance(event, Subscription.Disabled):
        return StateChange(SubscriptionState.DISABLED, event.reason)
    if isinstance(event, Subscription.Enabled):
        return StateChange(SubscriptionState.ACTIVE)
    return StateChange(SubscriptionState.DELETED)


class DeliveryProjector(TopicProjector[DeliveryChanges]):
    """Applies new events to the deliveries view; safe to run in several processes."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        mapper: Mapper[Any],
        store: DeliveryStore,
        *,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        projection = DeliveryProjection(store)
        super().__init__(
            recorder,
            mapper,
            store,
            projection.apply,
            TOPICS,
            batch_size=batch_size,
            view="deliveries",
        )
