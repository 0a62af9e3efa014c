"""Histories for benchmarks: use cases as steps, recorded fast through units of work."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.application import Ledger
from domain.promise import PromiseStatus, PromiseTerms
from domain.unit_of_work import Change, UnitOfWork

Command = Callable[[UnitOfWork], Change]


@dataclass(frozen=True)
class Step:
    """One use case to record: when it is reported, and the promise it needs loaded (if any)."""

    reported_at: datetime
    tenant: str
    promise: str | None
    command: Command


def make(terms: PromiseTerms) -> Step:
    """The promise is made when its terms say."""
    return Step(terms.made_at, terms.tenant, terms.key, lambda uow: uow.make_promise(terms))


def keep(tenant: str, key: str, at: datetime, *, reported_at: datetime | None = None) -> Step:
    """The promise is reported kept at `at` (by default reported then)."""
    return Step(reported_at or at, tenant, key, lambda uow: uow.keep_promise(tenant, key, at=at))


def break_(tenant: str, key: str, at: datetime) -> Step:
    """The promise is reported broken at `at`."""
    return Step(at, tenant, key, lambda uow: uow.break_promise(tenant, key, at=at))


def release(tenant: str, key: str, at: datetime) -> Step:
    """The promisee releases the promiser at `at`."""
    return Step(
        at, tenant, key, lambda uow: uow.release_promise(tenant, key, at=at, reason="not needed")
    )


def renegotiate(tenant: str, key: str, due_at: datetime, at: datetime) -> Step:
    """A new due time is agreed at `at`."""
    return Step(
        at, tenant, key, lambda uow: uow.renegotiate_promise(tenant, key, due_at=due_at, at=at)
    )


def lapse(tenant: str, key: str, now: datetime) -> Step:
    """The lapse job notices at `now` that no outcome came."""
    return Step(now, tenant, key, lambda uow: uow.lapse_promise(tenant, key, now=now))


def dispute(tenant: str, key: str, at: datetime, *, reported_at: datetime) -> Step:
    """A kept promise is corrected to broken at `at`, reported at `reported_at`."""
    outcome, reason = PromiseStatus.BROKEN, "the promisee disputes it"
    return Step(
        reported_at,
        tenant,
        key,
        lambda uow: uow.correct_outcome(tenant, key, outcome=outcome, at=at, reason=reason),
    )


def move(tenant: str, person: str, timezone: str, at: datetime) -> Step:
    """The person's time zone is set (registering them if new)."""
    return Step(
        at, tenant, None, lambda uow: uow.update_person(tenant, person, at=at, timezone=timezone)
    )


def record(ledger: Ledger, steps: Sequence[Step], per_commit: int = 500) -> None:
    """Run `steps` in report order, `per_commit` use cases per unit of work.

    This is the batch-ingestion path (promises prefetched in one query, one transaction per
    unit), so filling a store takes seconds where one transaction per use case takes minutes.
    """
    ordered = sorted(steps, key=lambda s: s.reported_at)
    for start in range(0, len(ordered), per_commit):
        chunk = ordered[start : start + per_commit]
        uow = ledger.unit_of_work()
        wanted: dict[str, set[str]] = {}
        for step in chunk:
            if step.promise is not None:
                wanted.setdefault(step.tenant, set()).add(step.promise)
        for tenant, keys in wanted.items():
            uow.prefetch_promises(tenant, keys)
        for step in chunk:
            step.command(uow)
        uow.commit()
