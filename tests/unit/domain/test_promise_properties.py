"""Property: any sequence of commands leaves a Promise consistent with its stored events."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.application import Ledger
from domain.errors import TrothError
from domain.promise import Promise, PromiseStatus, PromiseTerms
from service.settings import Settings
from tests.clock import T0

DUE = T0 + timedelta(hours=24)
hours = st.integers(min_value=-5, max_value=120).map(lambda h: T0 + timedelta(hours=h))
commands = st.one_of(
    st.tuples(st.just("keep"), hours, st.sampled_from([timedelta(0), timedelta(hours=2)])),
    st.tuples(st.just("break"), hours),
    st.tuples(st.just("release"), hours),
    st.tuples(st.just("renegotiate"), hours, hours),
    st.tuples(st.just("lapse"), hours),
    st.tuples(
        st.just("correct"),
        hours,
        st.sampled_from([PromiseStatus.KEPT, PromiseStatus.BROKEN, PromiseStatus.RELEASED]),
    ),
)


def run(promise: Promise, command: tuple[Any, ...]) -> None:
    kind, at, *rest = command
    if kind == "keep":
        promise.keep(at=at, grace=rest[0])
    elif kind == "break":
        promise.break_(at=at)
    elif kind == "release":
        promise.release(at=at)
    elif kind == "renegotiate":
        promise.renegotiate(due_at=rest[0], at=at)
    elif kind == "lapse":
        promise.lapse(now=at, lapse_after=timedelta(hours=24))
    else:
        promise.correct_outcome(outcome=rest[0], at=at, reason="dispute", grace=timedelta(0))


def observable(promise: Promise) -> dict[str, Any]:
    return {k: v for k, v in vars(promise).items() if k != "_pending_events"}


@settings(max_examples=300, deadline=None)
@given(sequence=st.lists(commands, max_size=15), has_due=st.booleans())
def test_replaying_the_stored_events_reproduces_the_aggregate(
    sequence: list[tuple[Any, ...]], has_due: bool
) -> None:
    ledger = Ledger(env=Settings(database_url="memory:").eventsourcing_env(Ledger.name))
    due_at: datetime | None = DUE if has_due else None
    promise = Promise.make(
        PromiseTerms(tenant="t", key="p", promiser="a", title="x", made_at=T0, due_at=due_at)
    )
    for command in sequence:
        before = observable(promise)
        try:
            run(promise, command)
        except TrothError:
            # A command that breaks a rule records nothing and changes nothing.
            assert observable(promise) == before
        assert (promise.status is PromiseStatus.OPEN) == (promise.outcome_at is None)
        if promise.outcome_at is not None:
            assert promise.outcome_at >= T0
    ledger.save(promise)
    replayed: Promise = ledger.repository.get(promise.id)
    assert observable(replayed) == observable(promise)
