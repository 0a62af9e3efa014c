"""The dispatcher: what fires when, through the outbox, exactly once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from domain.application import Ledger
from domain.message import Message, message_aggregate_id
from domain.promise import PromiseStatus, PromiseTerms
from projections.due_work_popo import POPODueWorkStore
from service.reminders import Dispatcher
from service.settings import Settings
from tests.clock import T0

H = timedelta(hours=1)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def setup() -> tuple[Ledger, Dispatcher, Clock]:
    ledger = Ledger(env=Settings(database_url="memory:").eventsourcing_env(Ledger.name))
    ledger.register_tenant("acme", at=T0)
    ledger.make_promise(
        PromiseTerms(
            tenant="acme", key="p1", promiser="alex", promisee="sam", title="Call back",
            made_at=T0, due_at=T0 + 48 * H,
        )
    )  # fmt: skip
    clock = Clock(T0)
    return ledger, Dispatcher(ledger, POPODueWorkStore(), clock), clock


def queued(ledger: Ledger) -> list[Message]:
    messages: list[Message] = []
    for notification in ledger.recorder.select_notifications(
        start=1, limit=1000, topics=[Message.Queued.TOPIC]
    ):
        event = cast(Message.Queued, ledger.mapper.to_domain_event(notification))
        messages.append(ledger.repository.get(message_aggregate_id("acme", event.message_id)))
    return messages


def test_nothing_fires_before_its_time_and_each_reminder_fires_once() -> None:
    ledger, dispatcher, clock = setup()
    assert dispatcher.tick() == 0
    clock.now = T0 + 24 * H
    assert dispatcher.tick() == 1
    assert dispatcher.tick() == 0
    [message] = queued(ledger)
    assert message.type == "reminder.due_soon"
    assert message.at == T0 + 24 * H
    assert message.data["promise_id"] == "p1"


def test_an_open_promise_gets_a_follow_up_then_lapses_and_the_lapse_is_announced() -> None:
    ledger, dispatcher, clock = setup()
    clock.now = T0 + 80 * H
    dispatcher.tick()
    assert ledger.promise("acme", "p1").status is PromiseStatus.LAPSED
    types = [m.type for m in queued(ledger)]
    # The reminders are dropped: the promise was already due when they were fired.
    assert types == ["promise.follow_up", "promise.lapsed"]


def test_a_kept_promise_gets_no_follow_up_even_when_the_report_came_just_now() -> None:
    ledger, dispatcher, clock = setup()
    clock.now = T0 + 50 * H
    ledger.keep_promise("acme", "p1", at=T0 + 47 * H)
    dispatcher.tick()
    assert [m.type for m in queued(ledger)] == []


def test_firing_again_after_a_crash_queues_nothing_twice() -> None:
    ledger, dispatcher, clock = setup()
    clock.now = T0 + 24 * H
    dispatcher.tick()
    # A restarted scheduler whose view lost the "done" mark fires the item again.
    restarted = Dispatcher(ledger, POPODueWorkStore(), clock)
    restarted.tick()
    assert len(queued(ledger)) == 1


def test_a_late_outcome_from_before_the_lapse_replaces_it() -> None:
    ledger, dispatcher, clock = setup()
    clock.now = T0 + 80 * H
    dispatcher.tick()
    ledger.keep_promise("acme", "p1", at=T0 + 47 * H)
    state = ledger.promise("acme", "p1")
    assert state.status is PromiseStatus.KEPT
    assert state.history[-1].event == "OutcomeCorrected"


def test_messages_are_queued_a_tick_ahead_with_their_fire_time_but_lapses_never_early() -> None:
    ledger, _, clock = setup()
    dispatcher = Dispatcher(ledger, POPODueWorkStore(), clock, lookahead=timedelta(seconds=1))
    clock.now = T0 + 24 * H - timedelta(milliseconds=500)
    dispatcher.tick()
    [message] = queued(ledger)
    assert message.at == T0 + 24 * H
    clock.now = T0 + 72 * H - timedelta(milliseconds=500)
    dispatcher.tick()
    assert ledger.promise("acme", "p1").status is PromiseStatus.OPEN
    clock.now = T0 + 72 * H
    dispatcher.tick()
    assert ledger.promise("acme", "p1").status is PromiseStatus.LAPSED
