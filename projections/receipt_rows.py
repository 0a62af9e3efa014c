"""Receipts as table rows: the encoding every store shares."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.receipts import Receipt

ReceiptRow = tuple[str, str, str, int, str, int, str]


def receipt_rows(
    receipts: Sequence[Receipt],
    stored: Sequence[tuple[UUID | str, int]] = (),
    ids: Sequence[int] = (),
    *,
    newest: int | None = None,
) -> list[ReceiptRow]:
    """Rows for `receipts`, each with the notification id of the last event it answers for.

    `stored` and `ids` are the (originator id, version) pairs just inserted and their
    notification ids, in the same order; a receipt for no event gets `newest` (default:
    the newest of `ids`).
    """
    positions = {
        (UUID(str(oid)), version): nid for (oid, version), nid in zip(stored, ids, strict=True)
    }
    if newest is None:
        newest = max(ids, default=0)
    return [
        (
            r.tenant,
            r.key,
            r.request_hash,
            r.status,
            receipt_answer(r),
            positions[r.events[-1]] if r.events else newest,
            r.recorded_at.isoformat(),
        )
        for r in receipts
    ]


def receipt_answer(receipt: Receipt) -> str:
    """The stored form of a receipt's answer."""
    return json.dumps(receipt.answer, separators=(",", ":"), sort_keys=True)


def receipt_from_row(row: Sequence[Any]) -> Receipt:
    """A receipt from a (tenant, key, hash, status, answer, position, recorded_at) row."""
    tenant, key, request_hash, status, answer, position, recorded_at = row
    return Receipt(
        tenant=tenant,
        key=key,
        request_hash=request_hash,
        status=int(status),
        answer=json.loads(answer),
        recorded_at=recorded_at
        if isinstance(recorded_at, datetime)
        else datetime.fromisoformat(recorded_at),
        position=int(position),
    )
