"""A unit of work: several commands, and their receipts, saved in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.commitment import Commitment, CommitmentTerms, occurrence_key
from domain.errors import (
    CommitmentConflictError,
    CommitmentNotFoundError,
    ConcurrentWriteError,
    InvalidInputError,
    PromiseAlreadySettledError,
    PromiseConflictError,
    PromiseNotFoundError,
)
from domain.identity import commitment_id, person_id, promise_id, validate_key, validate_promise_key
from domain.person import Person, QuietHours
from domain.policy import ScoringPolicy
from domain.promise import Promise, PromiseStatus, PromiseTerms
from domain.receipts import Receipt
from domain.tenant import Tenant
from domain.timekeeping import zone_name

if TYPE_CHECKING:
    from domain.application import Ledger

A = TypeVar("A", bound=Aggregate)


class Unchanged:
    """Marker for an optional field the caller did not mention (as opposed to clearing it)."""


UNCHANGED = Unchanged()


@dataclass(frozen=True)
class Written:
    """The answer to every write: what was written and where the log stands after it.

    `position` is the notification id of the last event written (or, when nothing new
    was recorded, the head of the log), so callers can wait for read models to reach it.
    """

    aggregate_id: UUID
    position: int
    is_new: bool


@dataclass(frozen=True)
class Change:
    """What one command did inside a unit of work: the versions of its new events."""

    aggregate_id: UUID
    events: tuple[tuple[UUID, int], ...]

    @property
    def is_new(self) -> bool:
        """Whether the command recorded anything."""
        return bool(self.events)


class UnitOfWork:
    """Runs commands against aggregates loaded once, then saves everything atomically.

    Commands that break a rule raise and leave their aggregate untouched (the aggregates'
    guarantee), so later commands in the same unit see a consistent state and the
    failed one contributes nothing: each command is all-or-nothing.
    """

    def __init__(self, ledger: Ledger, *, expect_new_promises: bool = False) -> None:
        self._ledger = ledger
        self._expect_new_promises = expect_new_promises
        self._aggregates: dict[UUID, Aggregate] = {}
        self._receipts: list[Receipt] = []
        self._policies: dict[str, ScoringPolicy] = {}
        self._absent: set[UUID] = set()

    def prefetch_promises(self, tenant: str, keys: Iterable[str]) -> None:
        """Load many promises in one query (batches), so each command needs none."""
        wanted = {promise_id(tenant, key) for key in keys} - self._aggregates.keys()
        if not wanted:
            return
        streams = self._ledger.event_streams(wanted)
        for aggregate_id in wanted:
            events = streams.get(aggregate_id)
            if not events:
                self._absent.add(aggregate_id)
                continue
            aggregate: Aggregate | None = None
            for event in events:
                aggregate = event.mutate(aggregate)
            if isinstance(aggregate, Promise):
                self._aggregates[aggregate_id] = aggregate

    # Commands

    def make_promise(self, terms: PromiseTerms) -> Change:
        """Make a promise; the same terms again change nothing, other terms conflict."""
        self._policy(terms.tenant)
        aggregate_id = promise_id(terms.tenant, terms.key)
        # Expecting it new, the read is skipped: the store keeps one version 1 per
        # aggregate, so a promise made before fails the commit rather than being doubled.
        existing = self._find(Promise, aggregate_id, read=not self._expect_new_promises)
        if existing is not None:
            if self._ledger.made_terms(existing) != terms:
                raise PromiseConflictError(
                    f"promise {terms.key!r} was already made with different content"
                )
            return Change(aggregate_id, ())
        promise = Promise.make(terms)
        self._aggregates[aggregate_id] = promise
        return Change(aggregate_id, _pending(promise, 0))

    def keep_promise(
        self,
        tenant: str,
        key: str,
        *,
        at: datetime,
        note: str | None = None,
        reported_by: str | None = None,
    ) -> Change:
        """Report a promise kept."""
        grace = self._policy(tenant).grace
        return self._on_promise(
            tenant, key, lambda p: p.keep(at=at, grace=grace, note=note, reported_by=reported_by)
        )

    def break_promise(
        self,
        tenant: str,
        key: str,
        *,
        at: datetime,
        reason: str | None = None,
        reported_by: str | None = None,
    ) -> Change:
        """Report a promise broken."""
        return self._on_promise(
            tenant, key, lambda p: p.break_(at=at, reason=reason, reported_by=reported_by)
        )

    def release_promise(
        self, tenant: str, key: str, *, at: datetime, reason: str | None = None
    ) -> Change:
        """The promisee releases the promiser."""
        return self._on_promise(tenant, key, lambda p: p.release(at=at, reason=reason))

    def renegotiate_promise(
        self, tenant: str, key: str, *, due_at: datetime, at: datetime, reason: str | None = None
    ) -> Change:
        """Agree a new due time before the current one."""
        return self._on_promise(
            tenant, key, lambda p: p.renegotiate(due_at=due_at, at=at, reason=reason)
        )

    def lapse_promise(self, tenant: str, key: str, *, now: datetime) -> Change:
        """Record that nobody reported an outcome by `due_at + lapse_after`."""
        lapse_after = self._policy(tenant).lapse_after
        return self._on_promise(tenant, key, lambda p: p.lapse(now=now, lapse_after=lapse_after))

    def correct_outcome(
        self, tenant: str, key: str, *, outcome: PromiseStatus, at: datetime, reason: str
    ) -> Change:
        """Replace a promise's current outcome (the history keeps both)."""
        grace = self._policy(tenant).grace
        return self._on_promise(
            tenant,
            key,
            lambda p: p.correct_outcome(outcome=outcome, at=at, reason=reason, grace=grace),
        )

    def update_person(
        self,
        tenant: str,
        key: str,
        *,
        at: datetime,
        timezone: str | Unchanged = UNCHANGED,
        quiet_hours: QuietHours | Unchanged | None = UNCHANGED,
    ) -> Change:
        """Record a person's time zone and/or quiet hours (registering them if new)."""
        self._policy(tenant)
        validate_key("person", key)
        if not isinstance(timezone, Unchanged):
            zone_name("timezone", timezone)
        aggregate_id = person_id(tenant, key)
        person = self._find(Person, aggregate_id)
        is_new = person is None
        if person is None:
            person = Person.register(tenant, key, at=at)
        before = person.version if not is_new else 0
        if not isinstance(timezone, Unchanged):
            person.change_timezone(timezone, at=at)
        if not isinstance(quiet_hours, Unchanged):
            person.change_quiet_hours(quiet_hours, at=at)
        self._aggregates[aggregate_id] = person
        return Change(aggregate_id, _pending(person, before))

    def create_commitment(self, terms: CommitmentTerms, *, at: datetime) -> Change:
        """Record a recurring commitment; the same terms again change nothing."""
        self._policy(terms.tenant)
        aggregate_id = commitment_id(terms.tenant, terms.key)
        existing = self._find(Commitment, aggregate_id)
        if existing is not None:
            if existing.terms != terms:
                raise CommitmentConflictError(
                    f"commitment {terms.key!r} was already made with different content"
                )
            return Change(aggregate_id, ())
        commitment = Commitment.create(terms, at=at)
        self._aggregates[aggregate_id] = commitment
        return Change(aggregate_id, _pending(commitment, 0))

    def commitment(self, tenant: str, key: str) -> Commitment:
        """The commitment, loaded into this unit (changes to it are saved by `commit`)."""
        self._policy(tenant)
        validate_key("commitment_id", key)
        commitment = self._find(Commitment, commitment_id(tenant, key))
        if commitment is None:
            raise CommitmentNotFoundError(f"no commitment {key!r}")
        return commitment

    def change_commitment(
        self,
        tenant: str,
        key: str,
        command: Callable[[Commitment], None],
        *,
        at: datetime,
        release_reason: str | None = None,
    ) -> Change:
        """Run `command` on a commitment; with `release_reason`, also release the occurrences
        already made that are due after `at` (a pause or an end), in the same transaction."""
        commitment = self.commitment(tenant, key)
        before = commitment.version
        command(commitment)
        if release_reason is not None and commitment.version > before:
            for occurrence in commitment.made_after(at):
                # Settled occurrences keep their outcome; one made after a backdated `at`
                # cannot be released before it was made and stays open.
                with suppress(PromiseNotFoundError, PromiseAlreadySettledError, InvalidInputError):
                    self.release_promise(
                        tenant,
                        occurrence_key(key, occurrence.local_date),
                        at=at,
                        reason=f"the commitment was {release_reason}",
                    )
        return Change(commitment.id, _pending(commitment, before))

    # Receipts and saving

    def add_receipt(self, receipt: Receipt, change: Change | None = None) -> None:
        """Store `receipt` with this unit; its position becomes that of `change`'s events."""
        events = change.events if change is not None else ()
        self._receipts.append(replace(receipt, events=events))

    def commit(self) -> Callable[[Change], Written]:
        """Save all new events and receipts in one transaction.

        Returns a function giving each change's `Written` (with its notification id).
        """
        events = [e for a in self._aggregates.values() for e in a.collect_events()]
        positions: dict[tuple[UUID, int], int] = {}
        try:
            if events:
                positions = self._ledger.committer.commit(events, self._receipts)
            elif self._receipts:
                self._ledger.receipt_recorder.insert_receipts(self._receipts)
        except IntegrityError:
            # Another writer stored the same version (or used the same receipt key) first:
            # nothing of this unit was stored, no update is lost, and the caller decides.
            raise ConcurrentWriteError("the record changed at the same moment; retry") from None
        head = max(positions.values(), default=0) or self._ledger.head_position()

        def written(change: Change) -> Written:
            if not change.events:
                return Written(change.aggregate_id, head, is_new=False)
            return Written(change.aggregate_id, positions[change.events[-1]], is_new=True)

        return written

    # Internals

    def _on_promise(self, tenant: str, key: str, command: Callable[[Promise], Any]) -> Change:
        self._policy(tenant)
        validate_promise_key("promise_id", key)
        aggregate_id = promise_id(tenant, key)
        promise = self._find(Promise, aggregate_id)
        if promise is None:
            raise PromiseNotFoundError(f"no promise {key!r}")
        before = promise.version
        command(promise)
        return Change(aggregate_id, _pending(promise, before))

    def _policy(self, tenant: str) -> ScoringPolicy:
        policy = self._policies.get(tenant)
        if policy is None:
            policy = self._policies[tenant] = self._ledger.scoring_policy(tenant)
        return policy

    def _find(self, kind: type[A], aggregate_id: UUID, *, read: bool = True) -> A | None:
        aggregate = self._aggregates.get(aggregate_id)
        if aggregate is None:
            if aggregate_id in self._absent or not read:
                return None
            try:
                aggregate = self._ledger.repository.get(aggregate_id)
            except AggregateNotFoundError:
                return None
            if not isinstance(aggregate, kind):
                return None
            if not isinstance(aggregate, Tenant):
                self._aggregates[aggregate_id] = aggregate
        return aggregate if isinstance(aggregate, kind) else None


def _pending(aggregate: Aggregate, after_version: int) -> tuple[tuple[UUID, int], ...]:
    return tuple(
        (aggregate.id, event.originator_version)
        for event in aggregate.pending_events
        if event.originator_version > after_version
    )
