"""Import an export (NDJSON envelopes) into a tenant, through the same use cases as webhooks.

Lines are applied in order, a chunk to a transaction, each with a receipt keyed by the
line's `id`: running the same import again, or resuming one that stopped, records nothing
twice. Business times come from the envelopes, so the reports come out the same; the
recording times are those of the import (`known_at` reports see the import's history).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import isodate
from marshmallow import ValidationError, fields, validate

from domain.application import Ledger
from domain.errors import TrothError
from domain.policy import ScoringPolicy
from domain.promise import MAX_TEXT, PromiseStatus
from domain.receipts import Receipt
from domain.unit_of_work import Change, UnitOfWork
from service.tenant_export import LAPSED, POLICY_CHANGED
from service.webhooks.envelopes import (
    PayloadError,
    StrictSchema,
    key_field,
    parse_envelope,
)
from service.webhooks.inbound import PromiseNotMadeYetError, apply_envelope, body_hash

CHUNK: Final = 500
RECEIPT_PREFIX: Final = "import:"


class ImportLineError(Exception):
    """A line of the import could not be applied; earlier lines are recorded."""

    def __init__(self, number: int, message: str) -> None:
        super().__init__(f"line {number}: {message}")
        self.number = number


class LineSchema(StrictSchema):
    """An export line: an envelope with its `id` and recording time."""

    id = key_field(required=True)
    type = fields.String(required=True)
    timestamp = fields.AwareDateTime(required=True)
    data = fields.Dict(required=True, keys=fields.String())
    recorded_at = fields.AwareDateTime()


class LapsedSchema(StrictSchema):
    """`promise.lapsed`: no outcome arrived by `at` (= due time + lapse_after)."""

    promise_id = key_field(required=True)
    at = fields.AwareDateTime(required=True)


class CorrectedSchema(StrictSchema):
    """`promise.outcome_corrected` as exported (a lapse can be superseded by a release)."""

    promise_id = key_field(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(["kept", "broken", "released"]))
    at = fields.AwareDateTime(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=MAX_TEXT))


class PolicySchema(StrictSchema):
    """`tenant.scoring_policy_changed`: every parameter of the scoring policy."""

    half_life = fields.String(required=True)
    broken_weight = fields.Float(required=True)
    late_credit = fields.Float(required=True)
    grace = fields.String(required=True)
    lapse_after = fields.String(required=True)
    prior_strength = fields.Float(required=True)
    prior_mean = fields.Float(required=True)


@dataclass(frozen=True)
class ImportSummary:
    """How many lines were recorded, and how many were already there."""

    recorded: int
    already_recorded: int


def import_envelopes(
    ledger: Ledger,
    tenant: str,
    lines: Iterable[bytes | str],
    *,
    clock: Callable[[], datetime],
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Apply export lines to `tenant` in order; ImportLineError names the first bad line."""
    ledger.tenant(tenant)  # TenantNotFoundError before anything is read
    recorded = already = 0
    chunk: list[tuple[int, str, dict[str, Any]]] = []
    touched: set[Any] = set()
    last: Any = None

    def flush() -> None:
        nonlocal recorded, already
        done, known = _apply_chunk(ledger, tenant, chunk, clock)
        recorded += done
        already += known
        if progress is not None:
            progress(len(chunk))
        chunk.clear()
        touched.clear()

    for number, raw in enumerate(lines, 1):
        text = raw.decode() if isinstance(raw, bytes) else raw
        if not text.strip():
            continue
        line = _parse(number, text)
        if line["type"] == POLICY_CHANGED:
            # A policy applies to the outcomes after it (lateness uses its grace): save
            # what came before, then change it on its own.
            flush()
            already_known = _change_policy(
                ledger, tenant, number=number, text=text, line=line, clock=clock
            )
            recorded, already = recorded + (not already_known), already + already_known
            if progress is not None:
                progress(1)
            continue
        subject = line["data"].get("promise_id") or ("person", line["data"].get("person"))
        if subject in touched and subject != last:
            # A unit of work saves each aggregate's events together, in the order it first
            # touched them: returning to an earlier one would reorder the log, so save first.
            flush()
        touched.add(subject)
        last = subject
        chunk.append((number, text.strip(), line))
        if len(chunk) >= CHUNK:
            flush()
    flush()
    return ImportSummary(recorded, already)


def _parse(number: int, text: str) -> dict[str, Any]:
    try:
        raw = json.loads(text)
        line: dict[str, Any] = LineSchema().load(raw)
    except ValueError as error:
        raise ImportLineError(number, f"not a JSON envelope ({error})") from None
    except ValidationError as error:
        raise ImportLineError(number, f"invalid envelope {error.messages}") from None
    return line


def _apply_chunk(
    ledger: Ledger,
    tenant: str,
    chunk: list[tuple[int, str, dict[str, Any]]],
    clock: Callable[[], datetime],
) -> tuple[int, int]:
    if not chunk:
        return 0, 0
    known = ledger.receipts(tenant, [RECEIPT_PREFIX + line["id"] for _, _, line in chunk])
    # No prefetch: it would register the aggregates in an arbitrary order (see above).
    uow = ledger.unit_of_work()
    recorded = 0
    for number, text, line in chunk:
        key = RECEIPT_PREFIX + line["id"]
        if key in known:
            continue
        try:
            change = _apply(uow, tenant, line, text)
        except (TrothError, PayloadError, PromiseNotMadeYetError, ValidationError) as error:
            raise ImportLineError(number, _describe(error)) from None
        uow.add_receipt(_receipt(tenant, key, text, line["type"], at=clock()), change)
        recorded += 1
    uow.commit()
    return recorded, len(chunk) - recorded


def _apply(uow: UnitOfWork, tenant: str, line: dict[str, Any], text: str) -> Change:
    kind, data = line["type"], line["data"]
    if kind == LAPSED:
        lapsed = LapsedSchema().load(data)
        return uow.lapse_promise(tenant, lapsed["promise_id"], now=lapsed["at"])
    if kind == "promise.outcome_corrected":
        corrected = CorrectedSchema().load(data)
        return uow.correct_outcome(
            tenant,
            corrected["promise_id"],
            outcome=PromiseStatus(corrected["outcome"]),
            at=corrected["at"],
            reason=corrected["reason"],
        )
    envelope = parse_envelope({k: v for k, v in json.loads(text).items() if k != "recorded_at"})
    change, _ = apply_envelope(uow, tenant, envelope)
    return change


def _change_policy(
    ledger: Ledger,
    tenant: str,
    *,
    number: int,
    text: str,
    line: dict[str, Any],
    clock: Callable[[], datetime],
) -> bool:
    key = RECEIPT_PREFIX + line["id"]
    if ledger.receipts(tenant, [key]):
        return True
    try:
        values = PolicySchema().load(line["data"])
        for name in ("half_life", "grace", "lapse_after"):
            values[name] = _duration(name, values[name])
        policy = ScoringPolicy(**values)
    except (ValidationError, TrothError) as error:
        raise ImportLineError(number, _describe(error)) from None
    written = ledger.change_scoring_policy(tenant, policy)
    ledger.receipt_recorder.insert_receipts(
        [_receipt(tenant, key, text, line["type"], at=clock(), position=written.position)]
    )
    return False


def _duration(name: str, value: str) -> timedelta:
    try:
        parsed = isodate.parse_duration(value)
    except (isodate.ISO8601Error, ValueError):
        parsed = None
    if not isinstance(parsed, timedelta):
        raise ValidationError("must be an ISO-8601 duration in days or less", field_name=name)
    return parsed


def _receipt(
    tenant: str, key: str, text: str, kind: str, *, at: datetime, position: int = 0
) -> Receipt:
    return Receipt(
        tenant=tenant,
        key=key,
        request_hash=body_hash(text.encode()),
        status=202,
        answer={"event": kind},
        recorded_at=at,
        position=position,
    )


def _describe(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return f"invalid data {error.messages}"
    if isinstance(error, PayloadError):
        return f"invalid fields {error.errors}"
    return str(error)
