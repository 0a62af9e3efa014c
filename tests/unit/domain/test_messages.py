"""Outgoing messages are recorded before any sending, once per tenant and message id."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.application import Ledger, TenantCredentials
from domain.errors import InvalidInputError, TenantNotFoundError
from domain.message import Message, message_aggregate_id
from tests.clock import T0


def test_a_queued_message_is_recorded_as_an_event(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    position = ledger.queue_message(
        tenant.tenant,
        message_id="reminder-p1-1",
        type="promise.reminder",
        at=T0,
        data={"promise": {"id": "p1"}, "lead": "PT1H"},
    )
    assert position == ledger.head_position()
    message: Message = ledger.repository.get(message_aggregate_id(tenant.tenant, "reminder-p1-1"))
    assert (message.type, message.at, message.data) == (
        "promise.reminder",
        T0,
        {"promise": {"id": "p1"}, "lead": "PT1H"},
    )


def test_queuing_the_same_message_again_records_nothing(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    first = ledger.queue_message(
        tenant.tenant, message_id="m1", type="promise.reminder", at=T0, data={"n": 1}
    )
    again = ledger.queue_message(
        tenant.tenant,
        message_id="m1",
        type="promise.reminder",
        at=T0 + timedelta(seconds=5),
        data={"n": 2},
    )
    assert again == first == ledger.head_position()
    message: Message = ledger.repository.get(message_aggregate_id(tenant.tenant, "m1"))
    assert message.data == {"n": 1}


def test_the_same_message_id_in_two_tenants_is_two_messages(ledger: Ledger) -> None:
    one = ledger.register_tenant("one", at=T0).tenant
    two = ledger.register_tenant("two", at=T0).tenant
    first = ledger.queue_message(one, message_id="m1", type="promise.due", at=T0, data={})
    second = ledger.queue_message(two, message_id="m1", type="promise.due", at=T0, data={})
    assert second > first


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"message_id": "has space"}, "message_id"),
        ({"type": "Promise Due"}, "type"),
        ({"data": {"when": T0}}, "data"),
        ({"at": T0.replace(tzinfo=None)}, "at"),
    ],
)
def test_a_malformed_message_is_rejected_naming_the_field(
    ledger: Ledger, tenant: TenantCredentials, changes: dict[str, object], field: str
) -> None:
    arguments: dict[str, object] = {
        "message_id": "m1",
        "type": "promise.due",
        "at": T0,
        "data": {},
    } | changes
    before = ledger.head_position()
    with pytest.raises(InvalidInputError) as raised:
        ledger.queue_message(tenant.tenant, **arguments)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert ledger.head_position() == before


def test_a_message_for_an_unknown_tenant_is_refused(ledger: Ledger) -> None:
    with pytest.raises(TenantNotFoundError):
        ledger.queue_message("nobody", message_id="m1", type="promise.due", at=T0, data={})
