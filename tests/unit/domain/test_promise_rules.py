"""The Promise rules, exercised through the Ledger's use cases on in-memory persistence."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from domain.application import Ledger, TenantCredentials
from domain.errors import (
    InvalidInputError,
    PromiseAlreadySettledError,
    PromiseConflictError,
    PromiseNotFoundError,
    PromiseNotSettledError,
    PromiseNotYetLapsableError,
    RenegotiationTooLateError,
    TenantNotFoundError,
)
from domain.identity import promise_id
from domain.policy import ScoringPolicy
from domain.promise import PromiseStatus, PromiseTerms
from tests.clock import T0

DUE = T0 + timedelta(days=1)


def terms(tenant: TenantCredentials, key: str = "p1", **changes: Any) -> PromiseTerms:
    values: dict[str, Any] = {
        "tenant": tenant.tenant,
        "key": key,
        "promiser": "alex",
        "promisee": "sam",
        "title": "Call when I land",
        "made_at": T0,
        "due_at": DUE,
    }
    values.update(changes)
    return PromiseTerms(**values)


def test_a_promise_id_is_derived_from_tenant_and_client_key(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    written = ledger.make_promise(terms(tenant))
    assert written.aggregate_id == promise_id(tenant.tenant, "p1")
    assert promise_id(tenant.tenant, "p1") != promise_id("other-tenant", "p1")


def test_every_write_returns_the_position_of_its_event(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    made = ledger.make_promise(terms(tenant))
    kept = ledger.keep_promise(tenant.tenant, "p1", at=T0 + timedelta(hours=2))
    assert made.position == tenant.position + 1
    assert kept.position == made.position + 1
    assert ledger.head_position() == kept.position


def test_making_the_same_promise_again_is_already_recorded(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    first = ledger.make_promise(terms(tenant))
    again = ledger.make_promise(terms(tenant))
    assert first.is_new
    assert not again.is_new
    assert again.aggregate_id == first.aggregate_id
    assert again.position == first.position
    assert len(ledger.promise(tenant.tenant, "p1").history) == 1


def test_the_same_promise_again_after_renegotiation_is_still_already_recorded(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    ledger.make_promise(terms(tenant))
    ledger.renegotiate_promise(tenant.tenant, "p1", due_at=DUE + timedelta(days=1), at=T0)
    assert not ledger.make_promise(terms(tenant)).is_new


def test_reusing_a_promise_id_with_different_content_is_a_conflict(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    ledger.make_promise(terms(tenant))
    with pytest.raises(PromiseConflictError):
        ledger.make_promise(terms(tenant, title="Something else"))


def test_promises_need_a_registered_tenant(ledger: Ledger) -> None:
    with pytest.raises(TenantNotFoundError):
        ledger.make_promise(
            PromiseTerms(tenant="nobody", key="p1", promiser="a", title="x", made_at=T0)
        )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"key": "has space"}, "promise_id"),
        ({"key": "x" * 129}, "promise_id"),
        ({"promiser": ""}, "promiser"),
        ({"promisee": "alex"}, "promisee"),
        ({"title": " "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"due_at": T0 - timedelta(seconds=1)}, "due_at"),
        ({"due_at": DUE.replace(tzinfo=None)}, "due_at"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"reminders": (timedelta(0),)}, "reminders"),
        ({"reminders": (timedelta(hours=1),), "due_at": None}, "reminders"),
        ({"category": ""}, "category"),
    ],
)
def test_invalid_terms_name_the_offending_field(
    tenant: TenantCredentials, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInputError) as raised:
        terms(tenant, **changes)
    assert raised.value.field == field


def test_reminders_are_kept_once_each_longest_lead_first(tenant: TenantCredentials) -> None:
    made = terms(tenant, reminders=(timedelta(hours=1), timedelta(hours=24), timedelta(hours=1)))
    assert made.reminders == (timedelta(hours=24), timedelta(hours=1))


def test_keeping_on_time_and_late_is_decided_by_due_time_and_grace(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    ledger.change_scoring_policy(tenant.tenant, ScoringPolicy(grace=timedelta(minutes=30)))
    for key, at, late in [
        ("early", DUE - timedelta(hours=1), False),
        ("in-grace", DUE + timedelta(minutes=30), False),
        ("late", DUE + timedelta(minutes=31), True),
    ]:
        ledger.make_promise(terms(tenant, key))
        ledger.keep_promise(tenant.tenant, key, at=at)
        state = ledger.promise(tenant.tenant, key)
        assert (state.status, state.outcome_at, state.is_late) == (PromiseStatus.KEPT, at, late)


def test_a_promise_without_due_time_is_never_late(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    ledger.make_promise(terms(tenant, due_at=None))
    ledger.keep_promise(tenant.tenant, "p1", at=T0 + timedelta(days=400))
    assert not ledger.promise(tenant.tenant, "p1").is_late


@pytest.mark.parametrize("first", ["keep", "break", "release"])
@pytest.mark.parametrize("second", ["keep", "break", "release", "renegotiate"])
def test_a_settled_promise_cannot_be_settled_or_renegotiated_again(
    ledger: Ledger, tenant: TenantCredentials, first: str, second: str
) -> None:
    ledger.make_promise(terms(tenant))
    at = T0 + timedelta(hours=1)
    actions = {
        "keep": lambda: ledger.keep_promise(tenant.tenant, "p1", at=at),
        "break": lambda: ledger.break_promise(tenant.tenant, "p1", at=at),
        "release": lambda: ledger.release_promise(tenant.tenant, "p1", at=at),
        "renegotiate": lambda: ledger.renegotiate_promise(
            tenant.tenant, "p1", due_at=DUE + timedelta(days=1), at=at
        ),
    }
    actions[first]()
    before = ledger.promise(tenant.tenant, "p1")
    with pytest.raises(PromiseAlreadySettledError):
        actions[second]()
    assert ledger.promise(tenant.tenant, "p1") == before


def test_an_outcome_before_the_promise_was_made_is_rejected(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    ledger.make_promise(terms(tenant))
    with pytest.raises(InvalidInputError) as raised:
        ledger.keep_promise(tenant.tenant, "p1", at=T0 - timedelta(minutes=1))
    assert raised.value.field == "at"
    assert ledger.promise(tenant.tenant, "p1").status is PromiseStatus.OPEN


def test_an_outcome_for_an_unknown_promise_is_not_found(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    with pytest.raises(PromiseNotFoundError):
        ledger.keep_promise(tenant.tenant, "never-made", at=T0)


def test_renegotiation_moves_the_due_time_and_nothing_else(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    ledger.make_promise(terms(tenant))
    new_due = DUE + timedelta(days=2)
    ledger.renegotiate_promise(tenant.tenant, "p1", due_at=new_due, at=T0, reason="flight moved")
    state = ledger.promise(tenant.tenant, "p1")
    assert state.terms.due_at == new_due
    assert state.status is PromiseStatus.OPEN
    assert [h.event for h in state.history] == ["Made", "Renegotiated"]
    assert state.history[1].facts["reason"] == "flight moved"
    ledger.keep_promise(tenant.tenant, "p1", at=DUE + timedelta(days=1))
    assert not ledger.promise(tenant.tenant, "p1").is_late


def test_renegotiating_an_overdue_promise_is_rejected(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    ledger.make_promise(terms(tenant))
    with pytest.raises(RenegotiationTooLateError):
        ledger.renegotiate_promise(tenant.tenant, "p1", due_at=DUE + timedelta(days=1), at=DUE)


def test_renegotiating_to_a_time_already_past_is_invalid(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    ledger.make_promise(terms(tenant))
    with pytest.raises(InvalidInputError) as raised:
        ledger.renegotiate_promise(
            tenant.tenant, "p1", due_at=T0 + timedelta(minutes=5), at=T0 + timedelta(minutes=10)
        )
    assert raised.value.field == "due_at"


def test_a_release_closes_the_promise(ledger: Ledger, tenant: TenantCredentials) -> None:
    ledger.make_promise(terms(tenant))
    ledger.release_promise(tenant.tenant, "p1", at=T0 + timedelta(hours=3), reason="plans changed")
    state = ledger.promise(tenant.tenant, "p1")
    assert state.status is PromiseStatus.RELEASED
    assert state.history[-1].facts == {"at": T0 + timedelta(hours=3), "reason": "plans changed"}


def test_a_lapse_is_recorded_at_due_time_plus_lapse_after(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    ledger.make_promise(terms(tenant))
    with pytest.raises(PromiseNotYetLapsableError):
        ledger.lapse_promise(tenant.tenant, "p1", now=DUE + timedelta(hours=23))
    ledger.lapse_promise(tenant.tenant, "p1", now=DUE + timedelta(hours=30))
    state = ledger.promise(tenant.tenant, "p1")
    assert (state.status, state.outcome_at) == (PromiseStatus.LAPSED, DUE + timedelta(hours=24))


def test_a_promise_without_due_time_never_lapses(ledger: Ledger, tenant: TenantCredentials) -> None:
    ledger.make_promise(terms(tenant, due_at=None))
    with pytest.raises(PromiseNotYetLapsableError):
        ledger.lapse_promise(tenant.tenant, "p1", now=T0 + timedelta(days=365))


def test_an_outcome_reported_for_before_the_lapse_replaces_it(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    ledger.make_promise(terms(tenant))
    ledger.lapse_promise(tenant.tenant, "p1", now=DUE + timedelta(days=2))
    kept_at = DUE + timedelta(hours=2)
    ledger.keep_promise(tenant.tenant, "p1", at=kept_at)
    state = ledger.promise(tenant.tenant, "p1")
    assert (state.status, state.outcome_at, state.is_late) == (PromiseStatus.KEPT, kept_at, True)
    assert [h.event for h in state.history] == ["Made", "Lapsed", "OutcomeCorrected"]


def test_an_outcome_reported_for_after_the_lapse_is_rejected(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    ledger.make_promise(terms(tenant))
    ledger.lapse_promise(tenant.tenant, "p1", now=DUE + timedelta(days=2))
    with pytest.raises(PromiseAlreadySettledError):
        ledger.break_promise(tenant.tenant, "p1", at=DUE + timedelta(days=2))


def test_an_outcome_correction_replaces_the_outcome_and_keeps_both_in_history(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    ledger.make_promise(terms(tenant))
    ledger.break_promise(tenant.tenant, "p1", at=DUE, reason="did not call")
    ledger.correct_outcome(
        tenant.tenant,
        "p1",
        outcome=PromiseStatus.KEPT,
        at=DUE - timedelta(hours=1),
        reason="the call log shows the call",
    )
    state = ledger.promise(tenant.tenant, "p1")
    assert (state.status, state.outcome_at) == (PromiseStatus.KEPT, DUE - timedelta(hours=1))
    assert [h.event for h in state.history] == ["Made", "Broken", "OutcomeCorrected"]
    assert state.history[1].facts["reason"] == "did not call"


def test_a_correction_to_the_same_outcome_is_a_no_op(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    ledger.make_promise(terms(tenant))
    kept = ledger.keep_promise(tenant.tenant, "p1", at=DUE)
    again = ledger.correct_outcome(
        tenant.tenant, "p1", outcome=PromiseStatus.KEPT, at=DUE, reason="double check"
    )
    assert not again.is_new
    assert again.position == kept.position
    assert len(ledger.promise(tenant.tenant, "p1").history) == 2


def test_correcting_an_open_promise_is_rejected(ledger: Ledger, tenant: TenantCredentials) -> None:
    ledger.make_promise(terms(tenant))
    with pytest.raises(PromiseNotSettledError):
        ledger.correct_outcome(
            tenant.tenant, "p1", outcome=PromiseStatus.BROKEN, at=DUE, reason="x"
        )


def test_a_correction_needs_a_reason_and_a_real_outcome(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    ledger.make_promise(terms(tenant))
    ledger.keep_promise(tenant.tenant, "p1", at=DUE)
    with pytest.raises(InvalidInputError, match="reason"):
        ledger.correct_outcome(tenant.tenant, "p1", outcome=PromiseStatus.BROKEN, at=DUE, reason="")
    with pytest.raises(InvalidInputError) as raised:
        ledger.correct_outcome(tenant.tenant, "p1", outcome=PromiseStatus.OPEN, at=DUE, reason="x")
    assert raised.value.field == "outcome"


def test_tenants_cannot_reach_each_others_promises(ledger: Ledger) -> None:
    one = ledger.register_tenant("one", at=T0)
    two = ledger.register_tenant("two", at=T0)
    ledger.make_promise(terms(one))
    with pytest.raises(PromiseNotFoundError):
        ledger.promise(two.tenant, "p1")
    with pytest.raises(PromiseNotFoundError):
        ledger.keep_promise(two.tenant, "p1", at=DUE)
