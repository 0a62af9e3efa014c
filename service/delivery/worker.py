"""The delivery worker: claims due deliveries, signs and sends them concurrently, records
each attempt and schedules the next.

Delivery is at least once: a claim hides a delivery for a lease; a worker that dies before
recording the attempt lets the lease run out and the delivery is sent again, with the same
`webhook-id`, which receivers use to drop duplicates.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Final

from standardwebhooks.webhooks import Webhook

from domain.application import Ledger
from domain.errors import TrothError
from domain.timekeeping import utc_instant
from projections.deliveries import (
    AttemptOutcome,
    AttemptRecord,
    AttemptRow,
    Claim,
    DeliveryState,
    DeliveryStore,
)
from projections.delivery_projection import DeliveryProjector
from service.delivery.retries import next_attempt_at, retry_after
from service.delivery.sender import TOTAL_TIMEOUT, Answer, Sender
from service.metrics import Metrics

BATCH_SIZE: Final = 100
LEASE: Final = timedelta(seconds=TOTAL_TIMEOUT * 4)
DISABLE_AFTER: Final = timedelta(days=5)
GONE: Final = 410
logger = logging.getLogger(__name__)


def signature_headers(
    secrets: list[str], message_id: str, at: datetime, body: str
) -> dict[str, str]:
    """Standard Webhooks headers; one `v1` signature per valid secret (rotation overlap)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(Webhook(s).sign(message_id, at, body) for s in secrets),
    }


class DeliveryWorker:
    """Sends due webhook deliveries; run `deliver_due(now)` about once a second."""

    def __init__(
        self,
        ledger: Ledger,
        store: DeliveryStore,
        projector: DeliveryProjector,
        sender: Sender,
        *,
        jitter: Callable[[], float] = random.random,
        threads: int = 8,
        batch_size: int = BATCH_SIZE,
        metrics: Metrics | None = None,
    ) -> None:
        self.ledger = ledger
        self.metrics = metrics or Metrics()
        self.store = store
        self.projector = projector
        self.sender = sender
        self.jitter = jitter
        self.batch_size = batch_size
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="troth-delivery")

    def deliver_due(self, now: datetime) -> int:
        """Bring the deliveries view up to date, then send every delivery due at `now`;
        returns how many attempts were made."""
        now = utc_instant("now", now)
        self.projector.catch_up()
        made = 0
        while True:
            claims = self.store.claim(now, lease_until=now + LEASE, limit=self.batch_size)
            secrets = self._secrets(claims, now)
            sendable = [c for c in claims if c.subscription_id in secrets]
            answers = self._pool.map(
                self._send,
                sendable,
                [secrets[c.subscription_id] for c in sendable],
                [now] * len(sendable),
            )
            judged = [(c, self._judge(c, a, now)) for c, a in zip(sendable, answers, strict=True)]
            # One transaction per batch: a commit per attempt would bound the worker's rate.
            self.store.record([record for _, record in judged])
            disabled: set[str] = set()
            for claim, record in judged:
                self._report(claim, record, now, disabled)
                attempt = record.attempt
                self.metrics.observe_webhook_delivery(attempt.status, attempt.latency_ms / 1000)
            made += len(sendable)
            if len(claims) < self.batch_size:
                return made

    def close(self) -> None:
        """Finish attempts in flight, stop the threads and hang up kept connections."""
        self._pool.shutdown(wait=True)
        self.sender.close()

    def _secrets(self, claims: list[Claim], now: datetime) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for claim in claims:
            if claim.subscription_id in found:
                continue
            try:
                subscription = self.ledger.subscription(claim.tenant, claim.subscription_id)
            except TrothError:
                # Deleted meanwhile: the next catch-up marks it and nothing more is claimed.
                continue
            found[claim.subscription_id] = subscription.secrets_valid_at(now)
        return found

    def _send(self, claim: Claim, secrets: list[str], now: datetime) -> Answer:
        headers = signature_headers(secrets, claim.delivery.message_id, now, claim.body)
        try:
            return self.sender.send(claim.url, headers, claim.body.encode())
        except Exception as error:
            # One odd endpoint must not stop the batch; the attempt is recorded as failed.
            logger.exception("sending %s failed unexpectedly", claim.delivery.message_id)
            return Answer(None, 0, error=f"{type(error).__name__}: unexpected failure")

    def _judge(self, claim: Claim, answer: Answer, now: datetime) -> AttemptRecord:
        delivery = claim.delivery
        attempts = delivery.attempts + 1
        directive = answer.headers.get("webhook-delivery", "").strip().lower()
        state = DeliveryState.PENDING
        failing_since: datetime | None = None
        disable: str | None = None
        next_at = now
        if answer.status is not None and 200 <= answer.status < 300:
            outcome, state = AttemptOutcome.DELIVERED, DeliveryState.DELIVERED
        elif directive == "disable" or answer.status == GONE:
            outcome = AttemptOutcome.DISABLED
            disable = (
                "the endpoint answered 410 Gone"
                if answer.status == GONE
                else ("the endpoint asked to be disabled (webhook-delivery: disable)")
            )
        elif directive == "abort-message":
            outcome, state = AttemptOutcome.ABORTED, DeliveryState.ABORTED
        else:
            failing_since = claim.failing_since or now
            delay = None
            if answer.status in (429, 503):
                delay = retry_after(answer.headers.get("retry-after"), now)
            scheduled = next_attempt_at(attempts, now, self.jitter())
            if scheduled is None:
                outcome, state = AttemptOutcome.FAILED, DeliveryState.FAILED
            else:
                outcome, next_at = AttemptOutcome.RETRY, now + delay if delay else scheduled
            if now - failing_since >= DISABLE_AFTER:
                disable = "the endpoint failed for 5 days"
                outcome = AttemptOutcome.DISABLED
                # Kept pending: once the endpoint is enabled again the message is delivered.
                state, next_at = DeliveryState.PENDING, now
        attempt = AttemptRow(
            subscription=delivery.subscription,
            message_id=delivery.message_id,
            at=now,
            outcome=outcome,
            status=answer.status,
            latency_ms=answer.latency_ms,
            response_excerpt=answer.excerpt,
            error=answer.error,
        )
        return AttemptRecord(attempt, state, attempts, next_at, failing_since, disable)

    def _report(
        self, claim: Claim, record: AttemptRecord, now: datetime, disabled: set[str]
    ) -> None:
        attempt = record.attempt
        if attempt.outcome is not AttemptOutcome.DELIVERED:
            logger.info(
                "webhook %s to %s: %s (%s)",
                attempt.message_id,
                claim.subscription_id,
                attempt.outcome.value,
                attempt.status or attempt.error,
            )
        if record.disable_reason is not None and claim.subscription_id not in disabled:
            disabled.add(claim.subscription_id)
            self._disable(claim, record.disable_reason, now)

    def _disable(self, claim: Claim, reason: str, now: datetime) -> None:
        try:
            self.ledger.disable_subscription(
                claim.tenant, claim.subscription_id, reason=reason, at=now
            )
        except TrothError:
            logger.warning("could not record that %s was disabled", claim.subscription_id)
        logger.warning("webhook subscription %s disabled: %s", claim.subscription_id, reason)
