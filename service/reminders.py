"""The scheduler's job bodies as plain objects: fire due work, make commitment occurrences.

Firing is at-least-once and its effects are exactly-once: messages go to the outbox under
deterministic ids (queuing one twice records nothing) and lapses go through the Promise
aggregate (lapsing a lapsed promise is refused), so a crash between firing an item and
marking it done only makes the next run fire it again, harmlessly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from domain.application import Ledger, OutgoingMessage
from domain.errors import (
    CommitmentNotFoundError,
    ConcurrentWriteError,
    InvalidInputError,
    PromiseAlreadySettledError,
    PromiseConflictError,
    PromiseNotFoundError,
    PromiseNotYetLapsableError,
    TenantNotFoundError,
)
from projections.due_plan import DueItem, DueKind
from projections.due_work import DueWorkProjector, DueWorkStore
from service.metrics import Metrics

BATCH: Final = 500
logger = logging.getLogger(__name__)


class Dispatcher:
    """Fires every due item whose time has come, after bringing the due-work view up to date."""

    def __init__(
        self,
        ledger: Ledger,
        store: DueWorkStore,
        clock: Callable[[], datetime],
        *,
        batch_size: int = BATCH,
        lookahead: timedelta = timedelta(0),
        metrics: Metrics | None = None,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.clock = clock
        self.batch_size = batch_size
        self.lookahead = lookahead
        self.metrics = metrics or Metrics()
        self.projector = DueWorkProjector(ledger.recorder, ledger.mapper, store)

    def tick(self) -> int:
        """Catch the view up with the log, then fire what is due now; returns how many fired.

        Messages due within the next `lookahead` are queued already, stamped with their fire
        time: delivery holds each until then, so a reminder does not wait for the next tick
        of the dispatcher and of delivery in turn. Lapses never fire early.
        """
        # Catching up first means no item fires for a promise whose outcome is already in
        # the log: a follow-up or lapse is cancelled by an earlier report, never raced.
        self.projector.catch_up()
        now = self.clock()
        fired = 0
        while True:
            items = self.store.due(now + self.lookahead, self.batch_size)
            ready = [i for i in items if i.fire_at <= now or i.kind is not DueKind.LAPSE]
            self.metrics.set_reminders_due(len(ready))
            if not ready:
                break
            done = self._fire(ready, now)
            self.metrics.set_reminders_due(len(ready) - len(done))
            self.store.done(done)
            fired += len(done)
            if len(done) < len(ready):
                break  # some failed (a concurrent write): the next tick retries them
            if any(item.kind is DueKind.LAPSE for item in done):
                self.projector.catch_up()  # plans the `promise.lapsed` announcements
            elif len(items) < self.batch_size:
                break
        return fired

    def _fire(self, items: list[DueItem], now: datetime) -> list[DueItem]:
        done: list[DueItem] = []
        messages: list[DueItem] = []
        for item in items:
            if item.kind is DueKind.LAPSE:
                if self._lapse(item, now):
                    done.append(item)
            elif item.kind is DueKind.DUE_SOON and now >= _due_at(item):
                logger.info("dropping %s: the promise is already due", item.message_id)
                done.append(item)
            else:
                messages.append(item)
        try:
            self.ledger.queue_messages(
                [
                    OutgoingMessage(i.tenant, i.message_id, i.kind.value, i.fire_at, i.data)
                    for i in messages
                ]
            )
        except ConcurrentWriteError:
            self.metrics.reminder_retrying(len(messages))
            return done
        except (TenantNotFoundError, InvalidInputError) as error:
            # One bad message must not block the rest: queue them one by one.
            logger.warning("queuing one at a time: %s", error)
            for item in messages:
                try:
                    self.ledger.queue_message(
                        item.tenant,
                        message_id=item.message_id,
                        type=item.kind.value,
                        at=item.fire_at,
                        data=item.data,
                    )
                except (TenantNotFoundError, InvalidInputError):
                    self.metrics.reminder_failed()
                else:
                    self.metrics.reminder_sent()
        else:
            self.metrics.reminder_sent(len(messages))
        return done + messages

    def _lapse(self, item: DueItem, now: datetime) -> bool:
        try:
            self.ledger.lapse_promise(item.tenant, item.promise, now=now)
        except ConcurrentWriteError:
            return False
        except (PromiseAlreadySettledError, PromiseNotFoundError, PromiseNotYetLapsableError):
            pass  # settled meanwhile, or the tenant's lapse time grew (the view plans it again)
        except TenantNotFoundError:
            logger.warning("dropping %s: no such tenant", item.message_id)
        return True


def _due_at(item: DueItem) -> datetime:
    return datetime.fromisoformat(str(item.data["due_at"]))


class Occurrences:
    """Makes every active commitment's occurrences as promises `horizon` ahead of time."""

    def __init__(
        self,
        ledger: Ledger,
        store: DueWorkStore,
        clock: Callable[[], datetime],
        horizon: timedelta,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.clock = clock
        self.horizon = horizon

    def schedule(self) -> int:
        """Make the occurrences due within the horizon; returns how many were made."""
        made = 0
        now = self.clock()
        for tenant, key in self.store.active_commitments():
            try:
                made += self.ledger.schedule_occurrences(tenant, key, now=now, horizon=self.horizon)
            except (ConcurrentWriteError, CommitmentNotFoundError, PromiseConflictError) as error:
                logger.warning("occurrences of %s/%s not made this time: %s", tenant, key, error)
        return made
