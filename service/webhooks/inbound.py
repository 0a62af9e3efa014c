"""Ingestion of signed webhooks: verify, deduplicate by receipt, apply, answer."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from domain.application import Ledger
from domain.errors import (
    ConcurrentWriteError,
    PromiseNotFoundError,
    TenantNotFoundError,
    TrothError,
)
from domain.person import QuietHours
from domain.promise import PromiseStatus, PromiseTerms
from domain.receipts import Receipt
from domain.unit_of_work import UNCHANGED, Change, UnitOfWork
from service.webhooks.envelopes import Envelope, PayloadError, parse_envelope
from service.webhooks.signatures import SignatureError, verify

MAX_ATTEMPTS: Final = 3


class ReceiptMismatchError(Exception):
    """The webhook id was already used for a different body."""


class PromiseNotMadeYetError(Exception):
    """An outcome arrived for a promise whose `promise.made` has not arrived (yet)."""

    def __init__(self, promise_id: str) -> None:
        super().__init__(f"promise {promise_id!r} has not been made (yet)")
        self.promise_id = promise_id


# What a repeated delivery can run into when its receipt was not read first.
REPEAT_SYMPTOMS: Final = (PayloadError, TrothError, PromiseNotMadeYetError)


@dataclass(frozen=True)
class Answer:
    """The HTTP status and JSON body answering one envelope."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)


def body_hash(body: bytes) -> str:
    """The fingerprint a receipt keeps of a request body."""
    return hashlib.sha256(body).hexdigest()


def answer_from_receipt(receipt: Receipt, request_hash: str) -> Answer:
    """The first answer again for a repeated delivery; a different body is refused."""
    if receipt.request_hash != request_hash:
        raise ReceiptMismatchError("this webhook-id was already used for a different body")
    return Answer(200, {**receipt.answer, "position": receipt.position})


def apply_envelope(
    uow: UnitOfWork, tenant: str, envelope: Envelope
) -> tuple[Change, dict[str, Any]]:
    """Run the envelope's command in `uow`; returns the change and the answer's subject."""
    data, at = envelope.data, envelope.timestamp
    kind = envelope.type
    if kind == "person.updated":
        quiet = data.get("quiet_hours", UNCHANGED)
        change = uow.update_person(
            tenant,
            data["person"],
            at=at,
            timezone=data.get("timezone", UNCHANGED),
            quiet_hours=QuietHours(**quiet) if isinstance(quiet, dict) else quiet,
        )
        return change, {"person": data["person"]}
    key = data["promise_id"]
    subject = {"promise_id": key}
    if kind == "promise.made":
        terms = PromiseTerms(
            tenant=tenant,
            key=key,
            promiser=data["promiser"],
            promisee=data.get("promisee"),
            title=data["title"],
            details=data.get("details"),
            category=data.get("category"),
            due_at=data.get("due_at"),
            timezone=data.get("timezone"),
            reminders=tuple(data.get("reminders", ())),
            made_at=at,
        )
        return uow.make_promise(terms), subject
    try:
        return _outcome(uow, tenant, key, kind=kind, data=data, at=at), subject
    except PromiseNotFoundError:
        raise PromiseNotMadeYetError(key) from None


def _outcome(
    uow: UnitOfWork, tenant: str, key: str, *, kind: str, data: Mapping[str, Any], at: datetime
) -> Change:
    if kind == "promise.kept":
        return uow.keep_promise(
            tenant,
            key,
            at=data.get("at", at),
            note=data.get("note"),
            reported_by=data.get("reported_by"),
        )
    if kind == "promise.broken":
        return uow.break_promise(
            tenant,
            key,
            at=data.get("at", at),
            reason=data.get("reason"),
            reported_by=data.get("reported_by"),
        )
    if kind == "promise.renegotiated":
        return uow.renegotiate_promise(
            tenant, key, due_at=data["due_at"], at=at, reason=data.get("reason")
        )
    if kind == "promise.released":
        return uow.release_promise(tenant, key, at=data.get("at", at), reason=data.get("reason"))
    return uow.correct_outcome(
        tenant, key, outcome=PromiseStatus(data["outcome"]), at=data["at"], reason=data["reason"]
    )


class Ingestion:
    """The webhook use case: one signed envelope in, one answer out, recorded at most once."""

    def __init__(self, ledger: Ledger, clock: Callable[[], datetime]) -> None:
        self.ledger = ledger
        self.clock = clock

    def authenticate(self, tenant: str, body: bytes, headers: Mapping[str, str]) -> str:
        """Verify the signature with the tenant's current secrets; returns the webhook id."""
        now = self.clock()
        try:
            secrets = self.ledger.webhook_secrets(tenant, at=now)
        except TenantNotFoundError:
            raise SignatureError("unknown tenant") from None
        return verify(secrets, body, headers, now=now)

    def ingest(self, tenant: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        """Verify, deduplicate and record one webhook delivery."""
        webhook_id = self.authenticate(tenant, body, headers)
        request_hash = body_hash(body)
        # Most deliveries are new, so the receipt is not read up front: the receipt's key
        # is unique and stored in the events' transaction, so a repeat cannot be recorded
        # twice; it fails to commit (or breaks a rule) and is answered from its receipt
        # here, exactly as a lookup first would have answered it.
        try:
            return self.record(
                tenant, webhook_id, request_hash, parse_envelope(body), expect_new=True
            )
        except REPEAT_SYMPTOMS:
            known = self.ledger.receipts(tenant, [webhook_id]).get(webhook_id)
            if known is not None:
                return answer_from_receipt(known, request_hash)
            raise

    def record(
        self,
        tenant: str,
        key: str,
        request_hash: str,
        envelope: Envelope,
        *,
        expect_new: bool = False,
    ) -> Answer:
        """Apply one envelope in its own unit of work, with its receipt.

        With `expect_new`, the first attempt makes a promise without reading whether it
        exists (the store refuses a second one); the retry after such a refusal reads it.
        """
        for attempt in range(MAX_ATTEMPTS):
            uow = self.ledger.unit_of_work(expect_new_promises=expect_new and attempt == 0)
            change, subject = apply_envelope(uow, tenant, envelope)
            answer = {**subject, "event": envelope.type}
            status = 202 if change.is_new else 200
            uow.add_receipt(
                Receipt(
                    tenant=tenant,
                    key=key,
                    request_hash=request_hash,
                    status=status,
                    answer=answer,
                    recorded_at=self.clock(),
                ),
                change,
            )
            try:
                written = uow.commit()(change)
            except ConcurrentWriteError:
                # A concurrent delivery of the same webhook won: answer as it did.
                known = self.ledger.receipts(tenant, [key]).get(key)
                if known is not None:
                    return answer_from_receipt(known, request_hash)
                # Otherwise someone else changed the promise first: re-run against the
                # new state, which gives the right answer (often a conflict) next time.
                if attempt == MAX_ATTEMPTS - 1:
                    raise
                continue
            return Answer(status, {**answer, "position": written.position})
        raise ConcurrentWriteError("the record kept changing; retry")
