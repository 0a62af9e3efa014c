"""NDJSON batch ingestion: many envelopes, signed as a whole, recorded in large transactions."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from werkzeug.exceptions import RequestEntityTooLarge

from domain.errors import ConcurrentWriteError, TrothError
from domain.receipts import Receipt
from service.problems import describe
from service.webhooks.envelopes import Envelope, PayloadError, parse_envelope
from service.webhooks.inbound import (
    Ingestion,
    PromiseNotMadeYetError,
    ReceiptMismatchError,
    answer_from_receipt,
    apply_envelope,
    body_hash,
)

MAX_LINES: Final = 10_000
CHUNK: Final = 1_000
LINE_ERRORS: Final = (TrothError, PromiseNotMadeYetError, ReceiptMismatchError, PayloadError)


@dataclass(frozen=True)
class Line:
    """One parsed line: its number, idempotency key, fingerprint and envelope."""

    number: int
    key: str
    request_hash: str
    envelope: Envelope


class BatchIngestion:
    """Each line is all-or-nothing; lines are saved a thousand to a transaction."""

    def __init__(self, ingestion: Ingestion, chunk: int = CHUNK) -> None:
        self.ingestion = ingestion
        self.chunk = chunk

    def ingest(self, tenant: str, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        """Verify the batch's signature, then answer every line."""
        self.ingestion.authenticate(tenant, body, headers)
        raw_lines = [
            (number, raw) for number, raw in enumerate(body.split(b"\n"), 1) if raw.strip()
        ]
        if len(raw_lines) > MAX_LINES:
            raise RequestEntityTooLarge(f"A batch holds at most {MAX_LINES} lines.")
        results: dict[int, dict[str, Any]] = {}
        lines: list[Line] = []
        for number, raw in raw_lines:
            if number % self.chunk == 0:
                # A gevent worker switches requests only where one waits; parsing 10,000
                # lines waits for nothing, so let the worker's other requests run now and
                # then (under threads this only releases the GIL).
                time.sleep(0)
            try:
                envelope = parse_envelope(raw)
                if envelope.id is None:
                    raise PayloadError({"id": ["required on every batch line"]})
            except PayloadError as error:
                results[number] = self._failed(number, None, error)
                continue
            lines.append(Line(number, envelope.id, body_hash(raw.strip()), envelope))
        fresh = self._deduplicate(tenant, lines, results)
        for start in range(0, len(fresh), self.chunk):
            self._record_chunk(tenant, fresh[start : start + self.chunk], results)
        self._copy_in_batch_duplicates(lines, results)
        ordered = [results[number] for number, _ in raw_lines]
        return {"results": ordered, "summary": _summary(ordered)}

    def _deduplicate(
        self, tenant: str, lines: list[Line], results: dict[int, dict[str, Any]]
    ) -> list[Line]:
        known = self.ingestion.ledger.receipts(tenant, [line.key for line in lines])
        first: dict[str, Line] = {}
        fresh = []
        for line in lines:
            receipt = known.get(line.key)
            if receipt is not None:
                try:
                    answer = answer_from_receipt(receipt, line.request_hash)
                except ReceiptMismatchError as error:
                    results[line.number] = self._failed(line.number, line.key, error)
                    continue
                results[line.number] = {"line": line.number, "id": line.key, **answer.body}
                results[line.number]["status"] = answer.status
            elif line.key not in first:
                first[line.key] = line
                fresh.append(line)
        return fresh

    def _record_chunk(
        self, tenant: str, chunk: list[Line], results: dict[int, dict[str, Any]]
    ) -> None:
        uow = self.ingestion.ledger.unit_of_work()
        uow.prefetch_promises(
            tenant,
            {
                line.envelope.data["promise_id"]
                for line in chunk
                if "promise_id" in line.envelope.data
            },
        )
        applied = []
        for line in chunk:
            try:
                change, subject = apply_envelope(uow, tenant, line.envelope)
            except LINE_ERRORS as error:
                results[line.number] = self._failed(line.number, line.key, error)
                continue
            status = 202 if change.is_new else 200
            answer = {**subject, "event": line.envelope.type}
            uow.add_receipt(
                Receipt(
                    tenant=tenant,
                    key=line.key,
                    request_hash=line.request_hash,
                    status=status,
                    answer=answer,
                    recorded_at=self.ingestion.clock(),
                ),
                change,
            )
            applied.append((line, change, status, answer))
        try:
            written = uow.commit()
        except ConcurrentWriteError:
            # Someone wrote one of these promises (or webhook ids) meanwhile: fall back to
            # one transaction per line, so each line still gets its own right answer.
            for line, *_ in applied:
                self._record_alone(tenant, line, results)
            return
        for line, change, status, answer in applied:
            position = written(change).position
            results[line.number] = {
                "line": line.number,
                "id": line.key,
                "status": status,
                **answer,
                "position": position,
            }

    def _record_alone(self, tenant: str, line: Line, results: dict[int, dict[str, Any]]) -> None:
        try:
            answer = self.ingestion.record(tenant, line.key, line.request_hash, line.envelope)
        except LINE_ERRORS as error:
            results[line.number] = self._failed(line.number, line.key, error)
            return
        results[line.number] = {
            "line": line.number,
            "id": line.key,
            "status": answer.status,
            **answer.body,
        }

    def _copy_in_batch_duplicates(
        self, lines: list[Line], results: dict[int, dict[str, Any]]
    ) -> None:
        first: dict[str, Line] = {}
        for line in lines:
            original = first.setdefault(line.key, line)
            if original is line or line.number in results:
                continue
            if original.request_hash != line.request_hash:
                error = ReceiptMismatchError("this id was already used for a different line")
                results[line.number] = self._failed(line.number, line.key, error)
                continue
            copied = dict(results[original.number], line=line.number)
            if copied["status"] == 202:
                copied["status"] = 200
            results[line.number] = copied

    @staticmethod
    def _failed(number: int, key: str | None, error: Exception) -> dict[str, Any]:
        described = describe(error)
        return {"line": number, "id": key, "status": described.status, "problem": described.body}


def _summary(results: list[dict[str, Any]]) -> dict[str, int]:
    statuses = [r["status"] for r in results]
    return {
        "recorded": statuses.count(202),
        "already_recorded": statuses.count(200),
        "rejected": sum(1 for s in statuses if s >= 400),
    }
