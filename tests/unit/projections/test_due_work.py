"""The due-work view: what is scheduled for a promise, and how outcomes and settings move it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.application import Ledger, TenantCredentials
from domain.person import QuietHours
from domain.promise import PromiseTerms
from projections.due_plan import DueItem, DueKind
from projections.due_work import DueWorkProjector
from projections.due_work_popo import POPODueWorkStore
from service.settings import Settings
from tests.clock import T0

H = timedelta(hours=1)


@pytest.fixture
def store() -> POPODueWorkStore:
    return POPODueWorkStore()


def catch_up(ledger: Ledger, store: POPODueWorkStore, batch_size: int = 1000) -> None:
    DueWorkProjector(ledger.recorder, ledger.mapper, store, batch_size=batch_size).catch_up()


def make(
    ledger: Ledger,
    tenant: str,
    key: str = "p1",
    *,
    due_in: timedelta = 48 * H,
    made_at: datetime = T0,
    reminders: tuple[timedelta, ...] = (),
) -> None:
    ledger.make_promise(
        PromiseTerms(
            tenant=tenant,
            key=key,
            promiser="alex",
            promisee="sam",
            title="Send the report",
            made_at=made_at,
            due_at=made_at + due_in,
            reminders=reminders,
        )
    )


def schedule(items: list[DueItem]) -> list[tuple[DueKind, datetime]]:
    return [(i.kind, i.fire_at) for i in items]


def test_a_promise_due_in_two_days_gets_two_reminders_a_follow_up_and_a_lapse(
    ledger: Ledger, tenant: TenantCredentials, store: POPODueWorkStore
) -> None:
    make(ledger, tenant.tenant)
    catch_up(ledger, store)
    due = T0 + 48 * H
    assert schedule(store.pending(tenant.tenant, "p1")) == [
        (DueKind.DUE_SOON, due - 24 * H),
        (DueKind.DUE_SOON, due - H),
        (DueKind.FOLLOW_UP, due + H),
        (DueKind.LAPSE, due + 24 * H),
    ]


def test_lead_times_already_past_when_the_promise_is_made_are_skipped(
    ledger: Ledger, tenant: TenantCredentials, store: POPODueWorkStore
) -> None:
    make(ledger, tenant.tenant, due_in=3 * H)
    catch_up(ledger, store)
    kinds = schedule(store.pending(tenant.tenant, "p1"))
    assert kinds[0] == (DueKind.DUE_SOON, T0 + 2 * H)
    assert [k for k, _ in kinds].count(DueKind.DUE_SOON) == 1


def test_the_promises_own_reminders_replace_the_tenant_defaults(
    ledger: Ledger, tenant: TenantCredentials, store: POPODueWorkStore
) -> None:
    make(ledger, tenant.tenant, reminders=(timedelta(minutes=15),))
    catch_up(ledger, store)
    reminders = [i for i in store.pending(tenant.tenant, "p1") if i.kind is DueKind.DUE_SOON]
    assert [i.fire_at for i in reminders] == [T0 + 48 * H - timedelta(minutes=15)]
    assert reminders[0].data["lead_seconds"] == 900


def test_keeping_a_promise_cancels_everything_pending(
    ledger: Ledger, tenant: TenantCredentials, store: POPODueWorkStore
) -> None:
    make(ledger, tenant.tenant)
    catch_up(ledger, store)
    ledger.keep_promise(tenant.tenant, "p1", at=T0 + H)
    catch_up(ledger, store)
    assert store.pending(tenant.tenant, "p1") == []


def test_renegotiating_moves_what_is_pending(
    ledger: Ledger, tenant: TenantCredentials, store: POPODueWorkStore
) -> None:
    make(ledger, tenant.tenant)
    ledger.renegotiate_promise(tenant.tenant, "p1", due_at=T0 + 72 * H, at=T0 + H)
    catch_up(ledger, store)
    lapse = [i for i in store.pending(tenant.tenant, "p1") if i.kind is DueKind.LAPSE]
    assert [i.fire_at for i in lapse] == [T0 + 96 * H]


def test_a_recorded_lapse_is_announced_and_a_report_from_before_it_withdraws_that(
    ledger: Ledger, tenant: TenantCredentials, store: POPODueWorkStore
) -> None:
    make(ledger, tenant.tenant)
    ledger.lapse_promise(tenant.tenant, "p1", now=T0 + 80 * H)
    catch_up(ledger, store)
    assert schedule(store.pending(tenant.tenant, "p1")) == [(DueKind.LAPSED, T0 + 72 * H)]
    ledger.keep_promise(tenant.tenant, "p1", at=T0 + 50 * H)
    catch_up(ledger, store)
    assert ledger.promise(tenant.tenant, "p1").status.value == "kept"
    assert store.pending(tenant.tenant, "p1") == []


def test_a_reminder_inside_quiet_hours_is_sent_when_they_end(
    ledger: Ledger, tenant: TenantCredentials, store: POPODueWorkStore
) -> None:
    # Due Wednesday 12:00 Berlin (11:00 UTC); the 24 h reminder would fall on 12:00 Tuesday.
    ledger.update_person(
        tenant.tenant,
        "alex",
        at=T0,
        timezone="Europe/Berlin",
        quiet_hours=QuietHours("11:00", "13:00"),
    )
    make(ledger, tenant.tenant, due_in=50 * H)
    catch_up(ledger, store)
    reminders = [i for i in store.pending(tenant.tenant, "p1") if i.kind is DueKind.DUE_SOON]
    # 24 h before: Tuesday 12:00 local, moved to 13:00 local (12:00 UTC).
    assert reminders[0].fire_at == T0 + 27 * H
    # 1 h before: 11:00 local on the due day; quiet until 13:00, after the due time, so it
    # goes just before the quiet hours began (10:59 local).
    assert reminders[1].fire_at == T0 + 49 * H - timedelta(minutes=1)


def test_quiet_hours_set_later_move_reminders_already_planned(
    ledger: Ledger, tenant: TenantCredentials, store: POPODueWorkStore
) -> None:
    make(ledger, tenant.tenant)  # due Wednesday 09:00 UTC; 1 h reminder at 08:00 UTC
    catch_up(ledger, store)
    ledger.update_person(tenant.tenant, "alex", at=T0, quiet_hours=QuietHours("22:00", "08:30"))
    catch_up(ledger, store)
    reminders = [i for i in store.pending(tenant.tenant, "p1") if i.kind is DueKind.DUE_SOON]
    assert reminders[1].fire_at == T0 + 47 * H + timedelta(minutes=30)  # 08:30, before 09:00


def test_quiet_hours_do_not_delay_a_lapse(
    ledger: Ledger, tenant: TenantCredentials, store: POPODueWorkStore
) -> None:
    ledger.update_person(tenant.tenant, "alex", at=T0, quiet_hours=QuietHours("00:00", "23:00"))
    make(ledger, tenant.tenant)
    catch_up(ledger, store)
    lapse = [i for i in store.pending(tenant.tenant, "p1") if i.kind is DueKind.LAPSE]
    assert lapse[0].fire_at == T0 + 72 * H


def test_message_ids_are_deterministic_so_a_re_fire_is_recognised() -> None:
    def planned() -> list[str]:
        ledger = Ledger(env=Settings(database_url="memory:").eventsourcing_env(Ledger.name))
        ledger.register_tenant("acme", at=T0)
        store = POPODueWorkStore()
        make(ledger, "acme")
        catch_up(ledger, store)
        return [i.message_id for i in store.pending("acme", "p1")]

    first = planned()
    assert first == planned()
    assert "reminder.due_soon:p1:86400:" in first[0]


ACTIONS = st.lists(
    st.sampled_from(["keep", "break", "release", "renegotiate", "lapse", "quiet", "policy"]),
    max_size=6,
)


@settings(max_examples=40, deadline=None)
@given(actions=ACTIONS, batch_size=st.integers(min_value=1, max_value=5))
def test_the_view_is_the_same_whatever_the_batch_size(actions: list[str], batch_size: int) -> None:
    from domain.policy import ScoringPolicy

    ledger = Ledger(env=Settings(database_url="memory:").eventsourcing_env(Ledger.name))
    ledger.register_tenant("acme", at=T0)
    make(ledger, "acme", "a")
    make(ledger, "acme", "b", due_in=5 * H)
    for n, action in enumerate(actions):
        at = T0 + (n + 1) * timedelta(minutes=5)
        try:
            if action == "keep":
                ledger.keep_promise("acme", "a", at=at)
            elif action == "break":
                ledger.break_promise("acme", "b", at=at)
            elif action == "release":
                ledger.release_promise("acme", "a", at=at)
            elif action == "renegotiate":
                ledger.renegotiate_promise("acme", "b", due_at=T0 + 30 * H, at=at)
            elif action == "lapse":
                ledger.lapse_promise("acme", "b", now=T0 + 90 * H)
            elif action == "quiet":
                ledger.update_person(
                    "acme", "alex", at=at, quiet_hours=QuietHours("07:00", "09:30")
                )
            else:
                ledger.change_scoring_policy("acme", ScoringPolicy(lapse_after=48 * H))
        except Exception:  # noqa: S112  (a refused command records nothing, which is the point)
            continue
    one_by_one, all_at_once = POPODueWorkStore(), POPODueWorkStore()
    catch_up(ledger, one_by_one, batch_size=batch_size)
    catch_up(ledger, all_at_once)
    for key in ("a", "b"):
        assert one_by_one.pending("acme", key) == all_at_once.pending("acme", key)


def test_an_occurrence_and_a_look_alike_client_id_get_distinct_message_ids(
    ledger: Ledger, tenant: TenantCredentials, store: POPODueWorkStore
) -> None:
    # `talk/2026-03-17` is a commitment's occurrence; `talk:2026-03-17` a client's own id.
    make(ledger, tenant.tenant, "talk/2026-03-17")
    make(ledger, tenant.tenant, "talk:2026-03-17")
    catch_up(ledger, store)
    items = store.due(T0 + 100 * H, limit=100)
    ids: dict[str, set[str]] = {}
    for item in items:
        ids.setdefault(item.promise, set()).add(item.message_id)
    assert set(ids) == {"talk/2026-03-17", "talk:2026-03-17"}
    assert not ids["talk/2026-03-17"] & ids["talk:2026-03-17"]
    # Message ids stay in a client id's alphabet (they are the receivers' webhook-id).
    assert all("/" not in m for m in ids["talk/2026-03-17"])
    assert len(ids["talk/2026-03-17"]) == len(ids["talk:2026-03-17"]) == 4
