"""In-memory implementations: the Ledger's recorder with receipts (and, later, the views)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, IntegrityError, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder, POPOFactory

from domain.receipts import Receipt
from projections.receipt_rows import receipt_from_row, receipt_rows


class POPOLedgerRecorder(POPOApplicationRecorder):
    """The library's in-memory recorder, plus receipts stored atomically with events."""

    def __init__(self) -> None:
        super().__init__()
        self._receipts: dict[tuple[str, str], Receipt] = {}

    def _assert_uniqueness(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        super()._assert_uniqueness(stored_events, **kwargs)
        self._assert_new_receipts(kwargs.get("receipts", ()))

    def _update_table(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._update_table(stored_events, **kwargs) or []
        receipts: Sequence[Receipt] = kwargs.get("receipts", ())
        stored = [(s.originator_id, s.originator_version) for s in stored_events]
        for receipt, row in zip(receipts, receipt_rows(receipts, stored, ids), strict=True):
            self._receipts[(receipt.tenant, receipt.key)] = receipt_from_row(row)
        return ids

    def _assert_new_receipts(self, receipts: Sequence[Receipt]) -> None:
        keys = [(r.tenant, r.key) for r in receipts]
        if len(set(keys)) < len(keys) or any(k in self._receipts for k in keys):
            msg = "receipt key already used"
            raise IntegrityError(msg)

    def select_receipts(self, tenant: str, keys: Sequence[str]) -> dict[str, Receipt]:
        """The stored receipts among `keys`."""
        with self._database_lock:
            found = (self._receipts.get((tenant, k)) for k in keys)
            return {r.key: r for r in found if r is not None}

    def insert_receipts(self, receipts: Sequence[Receipt]) -> None:
        """Store receipts for answers that recorded no event."""
        with self._database_lock:
            self._assert_new_receipts(receipts)
            newest = self.max_notification_id() or 0
            for receipt in receipts:
                self._receipts[(receipt.tenant, receipt.key)] = replace(
                    receipt, position=newest, events=()
                )

    def select_event_streams(self, originator_ids: Sequence[UUID]) -> Sequence[StoredEvent]:
        """The stored events of many aggregates, by originator then version."""
        return [e for oid in originator_ids for e in self.select_events(oid)]

    def purge_receipts(self, before: datetime) -> int:
        """Delete receipts recorded before `before`."""
        with self._database_lock:
            old = [k for k, r in self._receipts.items() if r.recorded_at < before]
            for key in old:
                del self._receipts[key]
            return len(old)


class POPOLedgerFactory(POPOFactory):
    """The in-memory persistence module, with the Ledger's receipt-aware recorder."""

    def application_recorder(self) -> ApplicationRecorder:
        return POPOLedgerRecorder()
