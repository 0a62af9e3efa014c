"""The Message aggregate: an outgoing webhook message, recorded before anything is sent.

Recording the message as an event first (the outbox) means a crash between deciding to
send and sending loses nothing: delivery reads the queued messages from the event log.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.errors import InvalidInputError
from domain.identity import tenant_id, validate_key
from domain.timekeeping import utc_instant

MESSAGE_TYPE: Final = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")
MAX_TYPE: Final = 64
MAX_DATA_BYTES: Final = 64 * 1024
NOT_YET: Final = datetime.min.replace(tzinfo=UTC)


def message_aggregate_id(tenant: str, key: str) -> UUID:
    """The Message aggregate id: uuid5 of the tenant and the caller's message id."""
    return uuid5(uuid5(tenant_id(tenant), "message"), key)


class Message(Aggregate):
    """A message to a tenant's webhook subscribers, e.g. a reminder that a promise is due."""

    TOPIC = "troth:Message"

    def __init__(self) -> None:
        self.tenant: str = ""
        self.message_id: str = ""
        self.type: str = ""
        self.at: datetime = NOT_YET
        self.data: dict[str, Any] = {}

    class Event(Aggregate.Event):
        pass

    class Created(Event, Aggregate.Created):
        TOPIC = "troth:Message.Created"

    class Queued(Created):
        """A message was queued for delivery to the subscribers of its type."""

        TOPIC = "troth:Message.Queued"
        tenant: str
        message_id: str
        type: str
        at: datetime
        data: dict[str, Any]

        def apply(self, aggregate: Message) -> None:
            aggregate.tenant = self.tenant
            aggregate.message_id = self.message_id
            aggregate.type = self.type
            aggregate.at = self.at
            aggregate.data = dict(self.data)

    @classmethod
    def queue(
        cls, tenant: str, *, message_id: str, type: str, at: datetime, data: dict[str, Any]
    ) -> Message:
        """Queue a message; its id follows from tenant and `message_id`, so it is queued once."""
        validate_key("message_id", message_id)
        if len(type) > MAX_TYPE or MESSAGE_TYPE.fullmatch(type) is None:
            raise InvalidInputError("type", "must be dotted lower-case words like promise.due")
        if not isinstance(data, dict):
            raise InvalidInputError("data", "must be a JSON object")
        try:
            encoded = json.dumps(data, allow_nan=False)
        except (TypeError, ValueError):
            raise InvalidInputError("data", "must be JSON-serialisable") from None
        if len(encoded.encode()) > MAX_DATA_BYTES:
            raise InvalidInputError("data", f"must be at most {MAX_DATA_BYTES} bytes as JSON")
        return cls._create(
            cls.Queued,
            id=message_aggregate_id(tenant, message_id),
            tenant=tenant,
            message_id=message_id,
            type=type,
            at=utc_instant("at", at),
            data=json.loads(encoded),
        )
