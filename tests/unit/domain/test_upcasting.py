"""Stored events outlive code changes: an old `Made` shape still loads."""

from __future__ import annotations

from datetime import timedelta

from eventsourcing.persistence import StoredEvent

from domain.application import Ledger, TenantCredentials
from domain.identity import promise_id
from domain.promise import Promise, PromiseStatus, PromiseTerms
from tests.clock import T0


def store_version_1_made(ledger: Ledger, tenant: str, key: str) -> None:
    """Write a `Promise.Made` exactly as version 1 stored it: no category, no reminders."""
    state = {
        "timestamp": T0,
        "originator_topic": "troth:Promise",
        "tenant": tenant,
        "key": key,
        "promiser": "alex",
        "promisee": "sam",
        "title": "Walk the dog",
        "details": None,
        "due_at": T0 + timedelta(hours=5),
        "timezone": "Europe/Berlin",
        "made_at": T0,
    }
    ledger.recorder.insert_events(
        [
            StoredEvent(
                originator_id=promise_id(tenant, key),
                originator_version=1,
                topic=Promise.Made.TOPIC,
                state=ledger.mapper.transcoder.encode(state),
            )
        ]
    )


def test_a_version_1_made_event_loads_with_the_fields_added_since(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    store_version_1_made(ledger, tenant.tenant, "old")
    state = ledger.promise(tenant.tenant, "old")
    assert state.terms.title == "Walk the dog"
    assert state.terms.category is None
    assert state.terms.reminders == ()
    assert state.terms.timezone == "Europe/Berlin"


def test_an_upcast_promise_takes_new_events_as_usual(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    store_version_1_made(ledger, tenant.tenant, "old")
    ledger.keep_promise(tenant.tenant, "old", at=T0 + timedelta(hours=1))
    state = ledger.promise(tenant.tenant, "old")
    assert state.status is PromiseStatus.KEPT
    assert [h.event for h in state.history] == ["Made", "Kept"]


def test_new_made_events_are_stored_as_version_2(ledger: Ledger, tenant: TenantCredentials) -> None:
    ledger.make_promise(
        PromiseTerms(tenant=tenant.tenant, key="new", promiser="a", title="t", made_at=T0)
    )
    stored = ledger.recorder.select_notifications(start=1, limit=10, topics=[Promise.Made.TOPIC])
    assert b'"class_version":2' in stored[-1].state
